"""Storage faults at the HTTP edge: an unreachable store is a 503 problem, not a 500.

Outermost of the app's own middleware, so it covers the pure-ASGI front (simple pages, files)
and every route. Only before a response has started: a body already streaming just ends.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from releasekit.server.problems import raw_problem, send_raw
from releasekit.server.storage import ChangeLogRefused, StorageUnavailable

logger = logging.getLogger("releasekit.server")
RETRY_AFTER = b"5"


class StorageFaults:
    """Answer `StorageUnavailable` with `503 storage-unavailable` and `Retry-After`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except StorageUnavailable as exc:
            logger.error("storage unavailable: %s", exc)
            if started:
                raise
            detail = (
                exc.client_detail
                if isinstance(exc, ChangeLogRefused)
                else "the package storage is unavailable; try again shortly"
            )
            headers, body = raw_problem(
                503, detail, "storage-unavailable", ((b"retry-after", RETRY_AFTER),)
            )
            await send_raw(send, 503, headers, body)
