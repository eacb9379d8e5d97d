"""`POST /_/promote`: promote a release between this server's indexes (CI, with a token).

Body: `{"project": ..., "version": ..., "from": INDEX, "to": INDEX}` (optional
`"include_yanked": true`), at most MAX_BODY bytes. Answer 200 with every file, its sha256 and
`copied` or `present`; a problem+json otherwise: 400 malformed, 401/403 credentials (`promote`
on the target, `read` on the source), 404 unknown index/project/version, 409 other bytes in the
target or a yanked file, 413 too large. The rules are those of promote.py.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from releasekit.errors import IndexServerError
from releasekit.server.acl import authorize_index, index_state
from releasekit.server.auth import AuthError
from releasekit.server.indexes import check_name
from releasekit.server.problems import auth_problem, problem
from releasekit.server.promote import PromoteRefused, Promotion, promote_between

if TYPE_CHECKING:
    from releasekit.server.state import IndexState
    from releasekit.server.storage import Storage

logger = logging.getLogger("releasekit.server")
MAX_BODY = 4096
_FIELDS = {"project": str, "version": str, "from": str, "to": str, "include_yanked": bool}
_PROJECT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9.+!_-]{1,128}")
_EXAMPLE = '{"project": "my-lib", "version": "1.2.3", "from": "staging", "to": "prod"}'


@dataclass(frozen=True)
class PromoteRequest:
    """A checked request body."""

    project: str
    version: str
    source: str
    target: str
    include_yanked: bool


def _bad(detail: str, code: str = "bad-request") -> Response:
    return problem(400, detail, code, hint=f"send a JSON object such as {_EXAMPLE}")


async def _body(request: Request) -> bytes | Response:
    """The body, read no further than MAX_BODY bytes."""
    declared = request.headers.get("content-length", "")
    too_large = problem(413, f"the request is larger than {MAX_BODY} bytes", "too-large")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        return too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return too_large
    return bytes(body)


def parse_request(body: bytes) -> PromoteRequest | Response:
    """The fields of a promotion, or the 400 problem naming what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _bad("the body is not JSON")
    if not isinstance(data, dict):
        return _bad("the body is not a JSON object")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        return _bad(f"unknown fields: {', '.join(map(repr, unknown))}")
    for key, kind in _FIELDS.items():
        if key == "include_yanked" and key not in data:
            continue
        if not isinstance(data.get(key), kind):
            what = "true or false" if kind is bool else "a string"
            return _bad(f"the field {key!r} is missing or not {what}")
    if not _PROJECT.fullmatch(data["project"]):
        return _bad(f"{data['project'][:80]!r} is not a project name")
    if not _VERSION.fullmatch(data["version"]):
        return _bad(f"{data['version'][:80]!r} is not a version")
    for key in ("from", "to"):
        try:
            check_name(data[key], allow_root=True)
        except IndexServerError as exc:
            return problem(400, exc.message, "bad-index", exc.hint)
    return PromoteRequest(
        data["project"],
        data["version"],
        data["from"],
        data["to"],
        data.get("include_yanked", False),
    )


async def promote_endpoint(request: Request) -> Response:
    """Check the body, authorize (promote on the target, read on the source), then promote."""
    body = await _body(request)
    if isinstance(body, Response):
        return body
    asked = parse_request(body)
    if isinstance(asked, Response):
        return asked
    try:
        await authorize_index(request, asked.target, "promote", asked.project)
        await _may_read(request, asked.source, asked.project)
    except AuthError as exc:
        return auth_problem(exc)
    state: IndexState = request.app.state.index
    served = {name: _served(request, name) for name in (asked.source, asked.target)}
    try:
        promotion = await run_in_threadpool(_promote, state, served, asked)
    except PromoteRefused as exc:
        return problem(exc.status, exc.message, exc.code, exc.hint)
    except IndexServerError as exc:  # a damaged registry: the admin's to fix, not the client's
        logger.error("promotion failed: %s", exc)
        return problem(500, exc.message, "server-error", exc.hint)
    copied = [f.filename for f in promotion.files if f.action == "copied"]
    logger.info(
        "promoted %s %s from %s to %s: copied %s",
        promotion.project,
        promotion.version,
        promotion.source,
        promotion.target,
        ", ".join(copied) or "nothing (all present)",
    )
    return JSONResponse(promotion.to_json())


async def _may_read(request: Request, index: str, project: str) -> None:
    """`read` on the source, or `promote` there: a token scoped to promoting is enough for CI."""
    try:
        await authorize_index(request, index, "read", project)
    except AuthError as exc:
        if exc.status != 403:
            raise
        try:
            await authorize_index(request, index, "promote", project)
        except AuthError:
            raise exc from None


def _served(request: Request, name: str) -> IndexState | None:
    """The state this app serves `name` with, or None (an index not picked up yet)."""
    try:
        return index_state(request, name)
    except HTTPException:
        return None


def _promote(
    state: IndexState, served: dict[str, IndexState | None], asked: PromoteRequest
) -> Promotion:
    from releasekit.server.process import make_storage

    def storage_of(name: str) -> Storage:
        live = served.get(name)
        store: Storage = live.storage if live is not None else make_storage(state.settings, name)
        return store

    promotion = promote_between(
        state.storage,
        storage_of,
        asked.project,
        asked.version,
        asked.source,
        asked.target,
        include_yanked=asked.include_yanked,
    )
    target = served.get(asked.target)
    if target is not None and any(f.action == "copied" for f in promotion.files):
        # Read-your-write for the caller: the target lists the files before we answer (other
        # workers and replicas see them at their next poll, as they see an upload).
        target.refresh()
        target.index_project(promotion.project)
    return promotion
