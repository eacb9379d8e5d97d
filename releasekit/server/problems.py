"""RFC 9457 problem details: every error the index answers is `application/problem+json`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

from starlette.responses import Response

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
