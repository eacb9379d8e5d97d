"""RFC 9457 problem details: every error the index answers is `application/problem+json`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING

from starlette.responses import Response

if TYPE_CHECKING:
    from starlette.types import Send

    from releasekit.server.auth import AuthError

CONTENT_TYPE = "application/problem+json"


def problem_body(status: int, detail: str, code: str, hint: str | None = None) -> bytes:
    """The JSON body: type/title/status/detail plus `code` (stable, for tools) and `hint`."""
    data: dict[str, object] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if hint:
        data["hint"] = hint
    return json.dumps(data).encode()


def problem(
    status: int,
    detail: str,
    code: str,
    hint: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A Starlette response carrying a problem body."""
    # The hint is repeated in `detail` because twine and pip print only the text they get.
    text = f"{detail} ({hint})" if hint else detail
    return Response(
        problem_body(status, text, code, hint),
        status_code=status,
        media_type=CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def raw_problem(
    status: int, detail: str, code: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[tuple[tuple[bytes, bytes], ...], bytes]:
    """Headers and body of a problem for the pure-ASGI fast path."""
    body = problem_body(status, detail, code)
    headers = (
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *extra,
    )
    return headers, body


async def send_raw(
    send: Send, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes
) -> None:
    """One whole response on the pure-ASGI path."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_auth_failure(send: Send, exc: AuthError) -> None:
    """The 401/403 problem of the pure-ASGI path, with the challenge header on 401."""
    extra = tuple((k.lower().encode(), v.encode()) for k, v in exc.headers.items())
    await send_raw(send, exc.status, *raw_problem(exc.status, exc.detail, exc.code, extra))


def auth_problem(exc: AuthError) -> Response:
    """The same refusal as a Starlette response, for the routed endpoints."""
    return problem(exc.status, exc.detail, exc.code, headers=exc.headers)
