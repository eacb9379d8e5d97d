"""The one download path: `/packages/<file>` and `<file>.metadata`, answered by the front.

Every answer (200, 206, 304, HEAD) takes its headers from `file_headers`. Small indexed files
come from a bounded LRU of their bytes, keyed by (filename, sha256) so a file replaced behind
our back is never served stale. Larger files and Range requests go to sendfile (`FileResponse`)
when the storage has a local file for them (an optional capability), else they stream from the
storage with single-range support.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from email.utils import formatdate
from threading import Lock
from typing import TYPE_CHECKING

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import FileResponse, StreamingResponse

from releasekit.server.auth import AuthError
from releasekit.server.indexes import LOCAL_DIR, ROOT_INDEX
from releasekit.server.metadata import ArchiveError, parse_filename
from releasekit.server.problems import raw_problem, send_auth_failure, send_raw
from releasekit.server.records import sidecar_bytes
from releasekit.server.status_route import quarantine_problem

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from releasekit.server.state import IndexState
    from releasekit.server.storage import Storage

SMALL_FILE = 1024 * 1024
# Bytes of small files kept in memory per worker: part of the 100 MiB RSS budget per worker
# (local files beyond it go out by sendfile, which needs no copy in memory).
CACHE_BYTES = 8 * 1024 * 1024
OCTETS = "application/octet-stream"
_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")  # bounded: no huge-int parsing
_KEPT_304 = (b"etag", b"cache-control", b"last-modified")


class SmallFileCache:
    """Bytes of recently served small files, at most `limit` bytes in all (least recent out)."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple[str, str], data: bytes) -> None:
        with self._lock:
            if key in self._items or len(data) > self.limit:
                return
            self._items[key] = data
            self.size += len(data)
            while self.size > self.limit:
                _, evicted = self._items.popitem(last=False)
                self.size -= len(evicted)


@dataclass(frozen=True)
class Served:
    """What one download answers with: the stored name, its validator and its facts."""

    filename: str
    project: str | None  # a whole-file GET of it counts as a download of (project, version)
    version: str
    etag: str
    size: int
    mtime_ns: int
    media_type: str = OCTETS
    sha256: str | None = None  # cacheable in memory (the bytes are known by their hash)


def file_headers(served: Served, length: int | None, max_age: int) -> list[tuple[bytes, bytes]]:
    """The headers of every file answer; `length` None leaves Content-Length to the sender."""
    headers = [
        (b"content-type", served.media_type.encode()),
        (b"etag", served.etag.encode()),
        (b"cache-control", f"public, max-age={max_age}, immutable".encode()),
        (b"accept-ranges", b"bytes"),
        (b"last-modified", formatdate(served.mtime_ns / 1e9, usegmt=True).encode()),
    ]
    if length is not None:
        headers.insert(1, (b"content-length", str(length).encode()))
    return headers


async def send_package(
    state: IndexState, cache: SmallFileCache, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer a GET/HEAD of `/packages/<name>`: auth, 304, then the bytes.

    On a named index with bases the bytes may come from a base (`IndexState.find_file`);
    access is decided by the index asked.
    """
    name = scope["path"][len("/packages/") :]  # ASGI paths arrive percent-decoded
    found = await _lookup(state, scope, receive, name, send)
    if found is None:
        return
    served, source = found
    asked = dict(scope["headers"])
    max_age = state.settings.cache_control
    if asked.get(b"if-none-match") in (served.etag.encode(), b"W/" + served.etag.encode()):
        kept = [h for h in file_headers(served, None, max_age) if h[0] in _KEPT_304]
        await send_raw(send, 304, kept, b"")
        return
    ranged = b"range" in asked
    if scope["method"] == "GET" and served.project is not None and not ranged:
        state.metrics.downloads.labels(served.project, served.version).inc()
    local = source.storage.local_path(served.filename)
    if served.size >= 0 and local is not None and state.settings.accel_redirect:
        # Behind nginx (--accel-redirect): nginx sends the bytes (sendfile, Range, HEAD) from
        # its internal location over the same directory; we answered auth and counted it.
        under = "" if source.name == ROOT_INDEX else f"{LOCAL_DIR}/{source.name}/"
        target = state.settings.accel_redirect + under + served.filename
        extra = [(b"content-length", b"0"), (b"x-accel-redirect", target.encode())]
        await send_raw(send, 200, [*file_headers(served, None, max_age), *extra], b"")
        return
    # A sidecar is small and always sent whole (a server may ignore Range).
    data = None if ranged and served.size >= 0 else await _small_bytes(source, cache, served)
    if data is None and served.size < 0:
        await _not_found(send, name)
        return
    if data is not None:
        body = data if scope["method"] == "GET" else b""
        await send_raw(send, 200, file_headers(served, len(data), max_age), body)
        return
    if local is not None:
        try:
            stat_result = await run_in_threadpool(os.stat, local)
        except FileNotFoundError:  # removed by hand a moment ago: the poller will notice
            await _not_found(send, name)
            return
        response = FileResponse(
            local, headers=_str_headers(served, max_age), stat_result=stat_result
        )
        await response(scope, receive, send)
        return
    max_age = state.settings.cache_control
    await stream_stored(source.storage, max_age, served, asked.get(b"range"), scope, receive, send)


async def _lookup(
    state: IndexState, scope: Scope, receive: Receive, name: str, send: Send
) -> tuple[Served, IndexState] | None:
    """The record (or pending file) behind `name`, authorized, with the index holding it;
    None once an answer is sent (a refusal, or a file of the index's upstream)."""
    is_metadata = name.endswith(".metadata")
    filename = name.removesuffix(".metadata") if is_metadata else name
    for index in state.chain():
        if index.catalogue.log_moved():
            await run_in_threadpool(index.sync)  # a change another worker logged: apply it first
    source, record, waiting = state.find_file(filename)
    if record is None and waiting is None:
        # Stored a moment ago, maybe through another worker: look at the store now rather
        # than at the next poll (two stats when nothing changed).
        await run_in_threadpool(state.refresh)
        source, record, waiting = state.find_file(filename)
    project = record.project if record else waiting.project if waiting else None
    if project is None:
        # Not a file of this index: maybe one of its upstream (never for a local project).
        from releasekit.server.upstream_route import send_upstream_file

        if not await send_upstream_file(state, scope, receive, send, name):
            await _not_found(send, name)
        return None
    if not await may_download(state, scope, send, project):
        return None
    refusal = quarantine_problem(source.catalogue.statuses.get(project), project)
    if refusal is not None:  # PEP 792: every answer of a quarantined file, 304 included
        await send_raw(send, refusal.status_code, refusal.raw_headers, bytes(refusal.body))
        return None
    if waiting is not None:
        if not is_metadata:  # not indexed yet: no hash needed, the ETag is size and mtime
            stored = waiting.stored
            etag = f'"{stored.size:x}-{stored.mtime_ns:x}"'
            version = _version_of(filename)
            return Served(filename, project, version, etag, stored.size, stored.mtime_ns), source
        # Whether a sidecar exists is known once indexed: index the project, as its page would.
        await run_in_threadpool(source.index_project, project)
        record = source.catalogue.files.get(filename)
    if record is None or (is_metadata and record.metadata_sha256 is None):
        await _not_found(send, name)
        return None
    if is_metadata:
        etag = f'"{record.metadata_sha256}"'
        media = "text/plain; charset=utf-8"
        served = Served(
            name, None, record.version, etag, -1, record.mtime_ns, media, record.metadata_sha256
        )
        return served, source
    etag = f'"{record.sha256}"'
    served = Served(
        filename, project, record.version, etag, record.size, record.mtime_ns, OCTETS, record.sha256
    )
    return served, source


def _version_of(filename: str) -> str:
    try:
        return parse_filename(filename).version
    except ArchiveError:
        return "unknown"


async def _small_bytes(state: IndexState, cache: SmallFileCache, served: Served) -> bytes | None:
    """The bytes of a small indexed file (or a sidecar) when they are still the recorded ones."""
    if served.sha256 is None or served.size > SMALL_FILE:
        return None
    key = (served.filename, served.sha256)
    data = cache.get(key)
    if data is not None:
        return data
    if served.size < 0:  # a sidecar: a state blob, written at its first request
        record = state.catalogue.files.get(served.filename.removesuffix(".metadata"))
        if record is None or record.metadata_sha256 != served.sha256:
            return None
        data = await run_in_threadpool(sidecar_bytes, state.storage, record)
    else:
        try:
            data = await run_in_threadpool(_read_all, state, served.filename)
        except OSError:
            return None  # removed or unreadable: the regular path answers properly
        if len(data) != served.size:
            return None  # replaced by hand since it was indexed: the regular path stats it
    if data is not None:
        cache.put(key, data)
    return data


def _read_all(state: IndexState, filename: str) -> bytes:
    return b"".join(state.storage.read_range(filename))


def _str_headers(served: Served, max_age: int) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in file_headers(served, None, max_age)}


async def stream_stored(
    storage: Storage,
    max_age: int,
    served: Served,
    range_header: bytes | None,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Stream from the storage: the whole file, or one byte range (uv reads wheels by range)."""
    stored = await run_in_threadpool(storage.stat, served.filename)
    if stored is None:
        await _not_found(send, served.filename)
        return
    size, status, start, length = stored.size, 200, 0, stored.size
    headers = _str_headers(served, max_age)
    asked = range_header.decode("latin-1") if range_header else None
    wanted = parse_range(asked, size) if asked else None
    if wanted == "unsatisfiable":
        extra = ((b"content-range", f"bytes */{size}".encode()),)
        detail = f"the range {asked!r} starts past the end of the file ({size} bytes)"
        await send_raw(send, 416, *raw_problem(416, detail, "bad-range", extra))
        return
    if isinstance(wanted, tuple):
        start, end = wanted
        status, length = 206, end - start
        headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
    headers["content-length"] = str(length)
    if scope["method"] == "HEAD":
        await send_raw(send, status, [(k.encode(), v.encode()) for k, v in headers.items()], b"")
        return
    chunks = await run_in_threadpool(storage.read_range, served.filename, start, length)
    response = StreamingResponse(iterate_in_threadpool(chunks), status, headers)
    await response(scope, receive, send)


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One byte range as (start, end) with end exclusive; None to send the whole file (several
    ranges, or a header we do not read), `"unsatisfiable"` for a 416."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or not (match.group(1) or match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        return "unsatisfiable"
    return start, end


async def _not_found(send: Send, name: str) -> None:
    await send_raw(
        send, 404, *raw_problem(404, f"no file named {name!r} on this index", "not-found")
    )


async def may_download(state: IndexState, scope: Scope, send: Send, project: str) -> bool:
    """Whether the caller may download `project`'s files here (the index's ACL and token
    scopes); when not, the 401/403/429 answer has been sent."""
    auth = dict(scope["headers"]).get(b"authorization")
    client = scope.get("client")
    try:
        principal = await state.check(
            auth.decode("latin-1") if auth else None,
            "download",
            project,
            str(client[0]) if client else "-",
        )
    except AuthError as exc:
        await send_auth_failure(send, exc)
        return False
    scope["releasekit"].user = principal.name
    return True
