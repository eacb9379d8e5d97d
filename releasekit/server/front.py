"""The front of the index: one pure-ASGI app that every request meets first.

It strips the URL prefix, writes the access log and the request metrics, and answers the hot
read paths itself: `/simple/...` from ready pages (simple.py) and every `/packages/...` GET or
HEAD (files.py). Everything else (uploads, health, readiness, metrics, bundles) goes on to the
Starlette router built in app.py.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from releasekit.server.files import SmallFileCache, send_package
from releasekit.server.problems import raw_problem, send_raw
from releasekit.server.simple import send_simple
from releasekit.server.state import RequestInfo
from releasekit.server.storage import StorageUnavailable

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from releasekit.server.state import IndexState

access_log = logging.getLogger("releasekit.server.access")
_ACCESS_FORMAT = 'client=%s method=%s path="%s" status=%d bytes=%d ms=%.2f user=%s route=%s'
_READS = ("GET", "HEAD")


def route_of(path: str, known: frozenset[str] = frozenset()) -> str:
    """A low-cardinality route label for metrics and logs.

    Anything unknown is `other`: a label per made-up path would let any client grow the
    metrics without bound.
    """
    if path.startswith("/simple"):
        return "simple_root" if path in ("/simple", "/simple/") else "simple_project"
    if path in ("/packages", "/packages/"):
        return "find_links"
    if path.startswith("/packages/"):
        return "metadata" if path.endswith(".metadata") else "file"
    if path in ("/", "/legacy", "/legacy/"):
        return "root"
    first = path.strip("/").split("/")[0]
    return first if first in known else "other"


def _plain_name(name: str) -> bool:
    """A file name the download path answers (the listing and sub-paths go to the router)."""
    return bool(name) and "/" not in name


class IndexFront:
    """ASGI middleware in front of the Starlette router: the read paths here, the rest to `app`."""

    def __init__(self, app: ASGIApp, state: IndexState) -> None:
        self.app = app
        self.state = state
        self.prefix = state.settings.url_prefix
        self.files = SmallFileCache()
        health = state.settings.health_endpoint.strip("/").split("/")[0]
        self.known_routes = frozenset({health, "ready", "metrics", "-"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        info = RequestInfo()
        scope["releasekit"] = info
        sent = {"status": 500, "bytes": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"], sent["started"] = message["status"], 1
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            path = scope["path"]
            if self.prefix:
                if path != self.prefix and not path.startswith(self.prefix + "/"):
                    detail = f"this index is served under {self.prefix}/"
                    await send_raw(send_wrapper, 404, *raw_problem(404, detail, "not-found"))
                    return
                scope = {**scope, "path": path[len(self.prefix) :] or "/"}
                scope["root_path"] = scope.get("root_path", "") + self.prefix
                path = scope["path"]
            info.route = route_of(path, self.known_routes)
            if scope["method"] not in _READS:
                await self.app(scope, receive, send_wrapper)
            elif path.startswith("/simple"):
                await send_simple(self.state, scope, path, send_wrapper)
            elif info.route in ("file", "metadata") and _plain_name(path[len("/packages/") :]):
                await send_package(self.state, self.files, scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        except StorageUnavailable:
            if not sent.get("started"):
                sent["status"] = 503  # what StorageFaults, outside this middleware, answers
            raise
        finally:
            self._log(scope, info, sent, start)

    def _log(self, scope: Scope, info: RequestInfo, sent: dict[str, int], start: float) -> None:
        seconds = time.perf_counter() - start
        self.state.metrics.observe(info.route, scope["method"], sent["status"], seconds)
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client") or ("-", 0)
            args = (
                client[0],
                scope["method"],
                quote(scope.get("root_path", "") + scope["path"], safe="/"),
                sent["status"],
                sent["bytes"],
                seconds * 1000,
                info.user or "-",
                info.route,
            )
            # makeRecord + handle: a record per request without the caller lookup of .info().
            access_log.handle(
                access_log.makeRecord(
                    access_log.name, logging.INFO, __file__, 0, _ACCESS_FORMAT, args, None
                )
            )
