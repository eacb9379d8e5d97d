"""The front of the index: one pure-ASGI app that every request meets first.

It strips the URL prefix, writes the access log and the request metrics, and answers the hot
read paths itself: `/simple/...` from ready pages (simple.py) and every `/packages/...` GET or
HEAD (files.py). Everything else (uploads, health, readiness, metrics, bundles) goes on to the
Starlette router built in app.py.

A first path segment that names an index (`/staging/simple/`) selects that index's state: the
same read paths, and the router for its upload, welcome, find-links and provenance routes,
with the segment moved into `root_path`. Root routes always win over index names.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from releasekit.server.acl import IndexNotFound
from releasekit.server.files import SmallFileCache, send_package
from releasekit.server.problems import raw_problem, send_raw
from releasekit.server.simple import external_prefix, send_simple
from releasekit.server.state import RequestInfo
from releasekit.server.storage import StorageUnavailable

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from releasekit.server.state import IndexState

access_log = logging.getLogger("releasekit.server.access")
_ACCESS_FORMAT = 'client=%s method=%s path="%s" status=%d bytes=%d ms=%.2f user=%s route=%s'
_READS = ("GET", "HEAD")
# First segments the default index answers at the root; no index name can shadow them.
_ROOT_SEGMENTS = frozenset(
    {"", "simple", "packages", "legacy", "integrity", "bundles", "ready", "metrics", "-", "_"}
)
# What the router answers under /<index>/ (the read paths are the front's).
_INDEX_ROUTES = frozenset({"/", "/legacy", "/legacy/", "/packages", "/packages/"})


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
        self.root_segments = _ROOT_SEGMENTS | {health}

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
            first, slash, rest = path[1:].partition("/")
            if first not in self.root_segments and (slash or self._index(first) is not None):
                await self._named(first, "/" + rest if slash else "", scope, receive, send_wrapper)
                return
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

    def _index(self, name: str) -> IndexState | None:
        family = self.state.family
        return None if family is None else family.get(name)

    async def _named(
        self, name: str, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer `/<name><path>` from the index `name` (404 naming the known ones if none)."""
        info: RequestInfo = scope["releasekit"]
        state = self._index(name)
        if state is None:
            known = self.state.family.known() if self.state.family else []
            detail = str(IndexNotFound(name, known).detail)
            await send_raw(send, 404, *raw_problem(404, detail, "unknown-index"))
            return
        info.state = state
        info.route = route_of(path or "/", self.known_routes)
        root = scope.get("root_path", "") + "/" + name
        inner = {**scope, "path": path, "root_path": root}
        reads = scope["method"] in _READS
        if not path and reads:  # /staging -> /staging/, so relative links resolve
            forwarded = dict(scope["headers"]).get(b"x-forwarded-prefix")
            outer = external_prefix(inner, forwarded.decode("latin-1") if forwarded else None)
            location = (outer + "/").encode("latin-1", "replace")
            await send_raw(send, 301, ((b"location", location), (b"content-length", b"0")), b"")
        elif reads and path.startswith("/simple"):
            await send_simple(state, inner, path, send)
        elif reads and info.route in ("file", "metadata") and _plain_name(path[10:]):
            await send_package(state, self.files, inner, receive, send)
        elif (path or "/") in _INDEX_ROUTES or path.startswith("/integrity/"):
            # Starlette routes on `path` minus `root_path`: give it the whole path.
            await self.app({**inner, "path": root + (path or "/")}, receive, send)
        else:
            where = f"{root}{path}"
            where = where if len(where) <= 200 else where[:200] + "..."  # never echo it all
            detail = f"nothing at {where} (index {name!r} answers /simple/, /packages/, /legacy/)"
            await send_raw(send, 404, *raw_problem(404, detail, "not-found"))

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
