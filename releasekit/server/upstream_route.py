"""Answering from upstream: a project page or a file the index itself does not hold.

Called by the simple pages (simple.py) and the download path (files.py) only after they found
no local project; each function returns False when the index has no upstream for the request
(the caller then answers its usual 404). Order of the checks, each final:
local (here or in a base) -> reserved glob (404, upstream never asked) -> upstream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import FileResponse

from releasekit.server.catalogue import filename_project
from releasekit.server.files import OCTETS, Served, file_headers, may_download, stream_stored
from releasekit.server.metadata import ArchiveError
from releasekit.server.problems import raw_problem, send_raw
from releasekit.server.upstream import UpstreamConfig, reserved_by
from releasekit.server.upstream_fetch import NotCached, UpstreamError
from releasekit.server.upstream_listing import UpstreamFile, offered
from releasekit.server.upstream_pages import upstream_page
from releasekit.server.upstream_state import PageResult, UpstreamState

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from releasekit.server.negotiation import Format
    from releasekit.server.state import IndexState

Headers = tuple[tuple[bytes, bytes], ...]
MAX_NAME = 200


async def _active(state: IndexState, project: str) -> tuple[UpstreamState, UpstreamConfig] | None:
    upstream = state.upstream
    if upstream is None or len(project) > MAX_NAME:
        return None  # no upstream; or a name no index has, not worth an upstream request
    config = await upstream.config()
    if config is None or upstream.is_local(project):
        return None
    return upstream, config


async def _refuse_reserved(send: Send, project: str, config: UpstreamConfig, what: str) -> bool:
    pattern = reserved_by(project, config.reserve)
    if pattern is None:
        return False
    detail = (
        f"{what} is not on this index, and {project!r} matches the reserved name {pattern!r}: "
        "reserved names are never read from upstream (upload it here, or drop the reserve)"
    )
    await send_raw(send, 404, *raw_problem(404, detail, "reserved-name"))
    return True


async def _listing(
    upstream: UpstreamState, config: UpstreamConfig, project: str, send: Send
) -> PageResult | None:
    """The page result, or None once a 404 / 502 / 504 problem was sent."""
    try:
        return await upstream.page(project, config)
    except NotCached:
        detail = (
            f"project {project!r} is not on this index, and the upstream cache of this offline "
            "index does not hold it (offline: upstream is never contacted)"
        )
        hint = "install it while the index is online, or import it with `releasekit bundle`"
        await send_raw(send, 404, *raw_problem(404, f"{detail} ({hint})", "offline-not-cached"))
    except UpstreamError as exc:
        await send_raw(send, exc.status, *raw_problem(exc.status, exc.detail, exc.code))
    return None


def _notes(config: UpstreamConfig, result: PageResult, withheld: int) -> Headers:
    notes = [(b"x-releasekit-upstream", config.url.encode("latin-1", "replace"))]
    if withheld:
        text = (
            f"{withheld} files withheld: uploaded upstream less than {config.cooldown} s ago, "
            "or without an upload time"
        )
        notes.append((b"x-releasekit-withheld", text.encode()))
    if result.stale is not None:
        # Printable ASCII only: the reason may quote what upstream sent (a Location, say).
        reason = "".join(c if " " <= c <= "~" else "?" for c in result.stale)[:300].encode()
        notes.append((b"warning", b'110 releasekit "Response is Stale"'))
        notes.append((b"x-releasekit-stale", reason))
    return tuple(notes)


async def send_upstream_page(
    state: IndexState, scope: Scope, send: Send, project: str, fmt: Format
) -> bool:
    """Answer `/simple/<project>/` from upstream; False when upstream does not apply."""
    active = await _active(state, project)
    if active is None:
        return False
    upstream, config = active
    if await _refuse_reserved(send, project, config, f"project {project!r}"):
        upstream.metrics.upstream_fetches.labels(upstream.index, "page", "reserved").inc()
        return True
    result = await _listing(upstream, config, project, send)
    if result is None:
        return True
    if result.listing is None:
        detail = f"project {project!r} is neither on this index nor on its upstream {config.url}"
        await send_raw(send, 404, *raw_problem(404, detail, "unknown-project"))
        return True
    files, withheld = offered(result.listing, config.cooldown, upstream.clock())
    page = upstream_page(result.listing, files, fmt)
    headers = page.headers + _notes(config, result, withheld)
    asked = dict(scope["headers"]).get(b"if-none-match")
    if asked in (page.etag, b"W/" + page.etag):
        await send_raw(send, 304, tuple(h for h in headers if h[0] != b"content-length"), b"")
        return True
    await send_raw(send, 200, headers, b"" if scope["method"] == "HEAD" else page.body)
    return True


async def send_upstream_file(
    state: IndexState, scope: Scope, receive: Receive, send: Send, name: str
) -> bool:
    """Answer `/packages/<name>` (or its `.metadata`) from the upstream cache, fetching and
    verifying on first use; False when upstream does not apply."""
    is_metadata = name.endswith(".metadata")
    filename = name.removesuffix(".metadata")
    try:
        project = filename_project(filename)
    except ArchiveError:
        return False
    active = await _active(state, project)
    if active is None:
        return False
    upstream, config = active
    if not await may_download(state, scope, send, project):
        return True
    if await _refuse_reserved(send, project, config, f"file {filename!r}"):
        return True
    result = await _listing(upstream, config, project, send)
    if result is None:
        return True
    entry = _offered_entry(result, config, filename, upstream.clock())
    if entry is None or (is_metadata and entry.metadata_sha256 is None):
        return False
    try:
        if is_metadata:
            data = await upstream.files.metadata(entry, config)
            await _send_metadata(scope, send, entry, data, state.settings.cache_control)
            return True
        stored = await upstream.files.file(entry, config)
    except NotCached:
        detail = f"{name} is not in the upstream cache of this offline index"
        await send_raw(send, 404, *raw_problem(404, detail, "offline-not-cached"))
        return True
    except UpstreamError as exc:
        await send_raw(send, exc.status, *raw_problem(exc.status, exc.detail, exc.code))
        return True
    served = Served(
        filename, project, entry.version, f'"{entry.sha256}"', stored.size, stored.mtime_ns
    )
    await _send_file(state, upstream, served, scope, receive, send)
    return True


def _offered_entry(
    result: PageResult, config: UpstreamConfig, filename: str, now: float
) -> UpstreamFile | None:
    """The file if its page offers it now (a fresh upload is no more reachable by its name)."""
    if result.listing is None:
        return None
    files, _ = offered(result.listing, config.cooldown, now)
    return next((f for f in files if f.filename == filename), None)


async def _send_metadata(
    scope: Scope, send: Send, entry: UpstreamFile, data: bytes, max_age: int
) -> None:
    served = Served(
        entry.filename + ".metadata",
        None,
        entry.version,
        f'"{entry.metadata_sha256}"',
        len(data),
        int((entry.uploaded or 0) * 1e9),
        "text/plain; charset=utf-8",
    )
    body = b"" if scope["method"] == "HEAD" else data
    await send_raw(send, 200, file_headers(served, len(data), max_age), body)


async def _send_file(
    state: IndexState,
    upstream: UpstreamState,
    served: Served,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    max_age = state.settings.cache_control
    asked = dict(scope["headers"])
    if asked.get(b"if-none-match") in (served.etag.encode(), b"W/" + served.etag.encode()):
        kept = [h for h in file_headers(served, None, max_age) if h[0] != b"content-type"]
        await send_raw(send, 304, kept, b"")
        return
    if scope["method"] == "GET" and b"range" not in asked:
        state.metrics.downloads.labels(served.project or "-", served.version).inc()
    local = upstream.cache.local_path(served.filename)
    if local is not None:
        headers = {k.decode(): v.decode() for k, v in file_headers(served, None, max_age)}
        response = FileResponse(local, headers=headers, media_type=OCTETS)
        await response(scope, receive, send)
        return
    await stream_stored(upstream.cache, max_age, served, asked.get(b"range"), scope, receive, send)
