"""The `/simple/` pages, answered by the front (front.py) in pure ASGI.

`/simple/...` GETs are answered from ready `Page` bytes, without Starlette's routing,
request objects or any filesystem access: a dict lookup, content negotiation and one send.
The exceptions: a change logged by another worker is applied first (one stat tells), and a
project with files not indexed yet (just after a start on a directory the cache does not cover)
has those files, and only those, indexed in a worker thread first.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool

from releasekit.server.auth import AuthError
from releasekit.server.metadata import normalize
from releasekit.server.negotiation import negotiate
from releasekit.server.problems import raw_problem, send_auth_failure, send_raw
from releasekit.server.upstream_route import send_upstream_page

if TYPE_CHECKING:
    from starlette.types import Scope, Send

    from releasekit.server.state import IndexState, RequestInfo

_SAFE_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
_WANTED = {b"accept", b"authorization", b"if-none-match", b"x-forwarded-prefix", b"user-agent"}


def external_prefix(scope: Scope, forwarded: str | None) -> str:
    """The path prefix clients see: X-Forwarded-Prefix (if sane) + root path (incl. --url-prefix)."""
    prefix = scope.get("root_path", "")
    if forwarded and _SAFE_PREFIX.match(forwarded.rstrip("/")):
        prefix = forwarded.rstrip("/") + prefix
    return str(prefix)


async def send_simple(state: IndexState, scope: Scope, path: str, send: Send) -> None:
    """Answer a GET/HEAD under /simple from pre-rendered pages."""
    headers: dict[bytes, bytes] = {}
    for key, value in scope["headers"]:
        if key in _WANTED:
            headers[key] = value
    forwarded = headers.get(b"x-forwarded-prefix")
    prefix = external_prefix(scope, forwarded.decode("latin-1") if forwarded else None)
    query = scope.get("query_string", b"").decode("latin-1")
    parts = path.split("/")  # "/simple/<p>/" -> ["", "simple", "<p>", ""]
    if path == "/simple":
        await _redirect(send, f"{prefix}/simple/", query)
        return
    if len(parts) > 4 or (len(parts) == 4 and parts[3]) or parts[1] != "simple":
        await send_raw(send, 404, *raw_problem(404, f"no page at {path}", "not-found"))
        return
    project = normalize(parts[2]) if len(parts) > 2 and parts[2] else None
    if project is not None and (project != parts[2] or len(parts) == 3):
        await _redirect(send, f"{prefix}/simple/{quote(project)}/", query)
        return
    auth = headers.get(b"authorization")
    info: RequestInfo = scope["releasekit"]
    try:
        principal = await state.check(
            auth.decode("latin-1") if auth else None, "list", project, _client(scope)
        )
    except AuthError as exc:
        await send_auth_failure(send, exc)
        return
    info.user = principal.name
    accept = headers.get(b"accept")
    format_param = parse_qs(query).get("format", [None])[-1] if query else None
    if format_param is not None:
        # A literal '+' (v1+json) arrives as a space after form decoding: media types have none.
        format_param = format_param.replace(" ", "+")
    fmt = negotiate(accept.decode("latin-1") if accept else None, format_param)
    if fmt is None:
        detail = (
            "none of the offered types is acceptable: application/vnd.pypi.simple.v1+json, "
            "application/vnd.pypi.simple.v1+html, text/html"
        )
        await send_raw(
            send, 406, *raw_problem(406, detail, "not-acceptable", ((b"vary", b"Accept"),))
        )
        return
    for index in state.chain():
        if index.catalogue.log_moved():
            # Another worker logged a change (an upload it acknowledged): apply it first.
            await run_in_threadpool(index.sync)
    # A named index with bases answers a project it lacks from the first base that has it.
    source = state if project is None else state.source_of(project)
    if project is not None and project in source.catalogue.pending_projects:
        # Concurrent requests for it wait on the same per-project lock, not on new work.
        await run_in_threadpool(source.index_project, project)
    page_set = state.root_pages() if project is None else source.pages.project(project)
    if page_set is None:
        if project is not None and await send_upstream_page(state, scope, send, project, fmt):
            return  # not local: read through the index's upstream
        await _unknown_project(state, send, project or "", query)
        return
    page = page_set[fmt]
    if headers.get(b"if-none-match") in (page.etag, b"W/" + page.etag, b"*"):
        not_modified = tuple(h for h in page.headers if h[0] != b"content-length")
        await send_raw(send, 304, not_modified, b"")
        return
    body = b"" if scope["method"] == "HEAD" else page.body
    await send_raw(send, 200, page.headers, body)


async def _unknown_project(state: IndexState, send: Send, project: str, query: str) -> None:
    """404, or a redirect to --fallback-url when configured (never for a local project)."""
    fallback = state.settings.fallback_url
    if fallback:
        await _redirect(send, f"{fallback.rstrip('/')}/{quote(project)}/", "", status=303)
        return
    detail = f"project {project!r} is not on this index (there is no fallback to a public index)"
    await send_raw(send, 404, *raw_problem(404, detail, "unknown-project"))


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


async def _redirect(send: Send, location: str, query: str, status: int = 301) -> None:
    target = f"{location}?{query}" if query else location
    headers = (
        (b"location", target.encode("latin-1", "replace")),
        (b"content-length", b"0"),
        (b"vary", b"Accept"),
    )
    await send_raw(send, status, headers, b"")
