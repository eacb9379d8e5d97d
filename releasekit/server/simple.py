"""The pure-ASGI front of the index: URL prefix, access log, metrics, and the `/simple/` fast path.

`/simple/...` GETs are answered here from ready `Page` bytes, without Starlette's routing,
request objects or any filesystem access: a dict lookup, content negotiation and one send.
The exception is a project with files not indexed yet (just after a start on a directory the
cache does not cover): those files, and only those, are indexed in a worker thread first.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote

from starlette.concurrency import run_in_threadpool

from releasekit.server.auth import AuthError
from releasekit.server.files import SMALL_FILE, SmallFileCache, file_headers, small_file_bytes
from releasekit.server.metadata import normalize
from releasekit.server.negotiation import negotiate
from releasekit.server.problems import raw_problem

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from releasekit.server.state import IndexState

access_log = logging.getLogger("releasekit.server.access")
_ACCESS_FORMAT = 'client=%s method=%s path="%s" status=%d bytes=%d ms=%.2f user=%s route=%s'
_SAFE_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
_WANTED = {b"accept", b"authorization", b"if-none-match", b"x-forwarded-prefix", b"user-agent"}


@dataclass
class RequestInfo:
    """Per-request facts the endpoints fill in for the access log (scope key `releasekit`)."""

    user: str | None = None
    route: str = "other"


def external_prefix(scope: Scope, forwarded: str | None) -> str:
    """The path prefix clients see: X-Forwarded-Prefix (if sane) + root path (incl. --url-prefix)."""
    prefix = scope.get("root_path", "")
    if forwarded and _SAFE_PREFIX.match(forwarded.rstrip("/")):
        prefix = forwarded.rstrip("/") + prefix
    return str(prefix)


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


class IndexFront:
    """ASGI middleware placed in front of the Starlette router."""

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
                sent["status"] = message["status"]
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            await send(message)

        path = scope["path"]
        if self.prefix:
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                await _send(
                    send_wrapper, 404, *raw_problem(404, _not_here(self.prefix), "not-found")
                )
                self._log(scope, info, sent, start)
                return
            scope = {**scope, "path": path[len(self.prefix) :] or "/"}
            scope["root_path"] = scope.get("root_path", "") + self.prefix
            path = scope["path"]
        info.route = route_of(path, self.known_routes)
        try:
            if path.startswith("/simple") and scope["method"] in ("GET", "HEAD"):
                await self.simple(scope, path, send_wrapper)
            elif not (
                info.route == "file"
                and scope["method"] in ("GET", "HEAD")
                and await self.package(scope, path, send_wrapper)
            ):
                await self.app(scope, receive, send_wrapper)
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

    async def simple(self, scope: Scope, path: str, send: Send) -> None:
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
            await _send(send, 404, *raw_problem(404, f"no page at {path}", "not-found"))
            return
        project = normalize(parts[2]) if len(parts) > 2 and parts[2] else None
        if project is not None and (project != parts[2] or len(parts) == 3):
            await _redirect(send, f"{prefix}/simple/{quote(project)}/", query)
            return
        auth = headers.get(b"authorization")
        info: RequestInfo = scope["releasekit"]
        try:
            principal = await self.state.authorizer.authorize(
                auth.decode("latin-1") if auth else None, "list", project, _client(scope)
            )
        except AuthError as exc:
            await _auth_failure(send, exc)
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
            await _send(
                send, 406, *raw_problem(406, detail, "not-acceptable", ((b"vary", b"Accept"),))
            )
            return
        if project is not None and project in self.state.catalogue.pending_projects:
            # Concurrent requests for it wait on the same per-project lock, not on new work.
            await run_in_threadpool(self.state.index_project, project)
        pages = self.state.pages
        page_set = pages.root if project is None else pages.project(project)
        if page_set is None:
            await self.unknown_project(send, project or "", query)
            return
        page = page_set[fmt]
        if headers.get(b"if-none-match") in (page.etag, b"W/" + page.etag, b"*"):
            not_modified = tuple(h for h in page.headers if h[0] != b"content-length")
            await _send(send, 304, not_modified, b"")
            return
        body = b"" if scope["method"] == "HEAD" else page.body
        await _send(send, 200, page.headers, body)

    async def package(self, scope: Scope, path: str, send: Send) -> bool:
        """Answer a whole-file GET/HEAD of a small indexed file; False leaves it to the router."""
        if self.state.settings.accel_redirect:
            return False  # nginx sends the bytes: the router answers with X-Accel-Redirect
        record = self.state.catalogue.files.get(unquote(path[len("/packages/") :]))
        if record is None or record.size > SMALL_FILE:
            return False
        if record.project in self.state.catalogue.statuses:  # PEP 792: the router decides
            return False
        headers = dict(scope["headers"])
        if b"range" in headers:
            return False
        auth = headers.get(b"authorization")
        try:
            principal = await self.state.authorizer.authorize(
                auth.decode("latin-1") if auth else None, "download", record.project, _client(scope)
            )
        except AuthError as exc:
            await _auth_failure(send, exc)
            return True
        scope["releasekit"].user = principal.name
        max_age = self.state.settings.cache_control
        if headers.get(b"if-none-match") in (
            f'"{record.sha256}"'.encode(),
            f'W/"{record.sha256}"'.encode(),
        ):
            not_modified = tuple(h for h in file_headers(record, 0, max_age) if h[0] in _KEPT_304)
            await _send(send, 304, not_modified, b"")
            return True
        data = await small_file_bytes(self.files, record, self.state.storage.path(record.filename))
        if data is None:
            return False
        if scope["method"] == "GET":
            self.state.metrics.downloads.labels(record.project, record.version).inc()
        body = data if scope["method"] == "GET" else b""
        await _send(send, 200, file_headers(record, len(data), max_age), body)
        return True

    async def unknown_project(self, send: Send, project: str, query: str) -> None:
        """404, or a redirect to --fallback-url when configured (never for a local project)."""
        fallback = self.state.settings.fallback_url
        if fallback:
            await _redirect(send, f"{fallback.rstrip('/')}/{quote(project)}/", "", status=303)
            return
        detail = (
            f"project {project!r} is not on this index (there is no fallback to a public index)"
        )
        await _send(send, 404, *raw_problem(404, detail, "unknown-project"))


_KEPT_304 = (b"etag", b"cache-control", b"last-modified")


async def _auth_failure(send: Send, exc: AuthError) -> None:
    extra = tuple((k.lower().encode(), v.encode()) for k, v in exc.headers.items())
    await _send(send, exc.status, *raw_problem(exc.status, exc.detail, exc.code, extra))


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _not_here(prefix: str) -> str:
    return f"this index is served under {prefix}/"


async def _send(
    send: Send, status: int, headers: tuple[tuple[bytes, bytes], ...] | Any, body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str, query: str, status: int = 301) -> None:
    target = f"{location}?{query}" if query else location
    headers = (
        (b"location", target.encode("latin-1", "replace")),
        (b"content-length", b"0"),
        (b"vary", b"Accept"),
    )
    await _send(send, status, headers, b"")
