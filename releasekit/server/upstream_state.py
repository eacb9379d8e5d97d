"""One index's upstream at run time: its settings, its cached pages and its cached files.

Hung off the index's state (`IndexState.upstream`), one per index. The cache is a Storage of
its own (`<packages>/.upstream/<index>/` or `<prefix>/upstream/<index>`), apart from the
index's files: a cached upstream file never makes a project local, and `server remove`,
retention and promote never see it. In the cache store, files sit by filename, their verified
sha256 in `sha256/<file>`, pages in `pages/<project>.json`, PEP 658 metadata in
`metadata/<file>.metadata`. The settings are re-read from the registry at most every
`reload_every` seconds, so `releasekit server index upstream` takes effect without a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool

from releasekit.errors import ReleaseError
from releasekit.server.catalogue import Catalogue, filename_project, hash_stored
from releasekit.server.indexes import config_for, read_registry
from releasekit.server.metadata import ArchiveError
from releasekit.server.metrics import Metrics
from releasekit.server.storage import Storage, StoredFile
from releasekit.server.upstream import UpstreamConfig, parse_upstream
from releasekit.server.upstream_fetch import PAGE_ACCEPT, HashMismatch, UpstreamError, fetch
from releasekit.server.upstream_listing import Listing, UpstreamFile, parse_page

logger = logging.getLogger("releasekit.server.upstream")
MEMORY_LISTINGS = 256
MAX_METADATA = 16 * 1024 * 1024


class NotCached(Exception):
    """Offline, and the page or file asked for was never cached."""


@dataclass(frozen=True)
class PageResult:
    """A listing to serve (None: upstream does not have the project) and how fresh it is."""

    listing: Listing | None
    stale: str | None = None  # why a cached page is served past its ttl (upstream failed)


def local_project(catalogue: Catalogue, project: str) -> bool:
    """Whether the index holds `project` in any form: files listed, pending or unreadable, or
    a PEP 792 status (a quarantined project must not fall through to upstream)."""
    if project in catalogue.projects or project in catalogue.pending_projects:
        return True
    if project in catalogue.statuses:
        return True
    for filename in list(catalogue.skipped):
        try:
            if filename_project(filename) == project:
                return True
        except ArchiveError:
            continue
    return False


def cache_storage(settings: Any, index: str) -> Storage:
    """The store of `index`'s upstream cache, beside (never inside) the index's own files."""
    if settings.storage:
        from releasekit.server.s3 import parse_s3_url
        from releasekit.server.s3store import S3Storage

        return S3Storage(parse_s3_url(f"{settings.storage.rstrip('/')}/upstream/{index}"))
    from releasekit.server.localstore import LocalStorage

    return LocalStorage(settings.packages_dir / ".upstream" / index)


class UpstreamState:
    """The upstream of one index: settings, page cache, file cache, metrics."""

    def __init__(
        self,
        *,
        registry: Storage,
        index: str,
        cache: Storage,
        metrics: Metrics,
        is_local: Callable[[str], bool],
        reload_every: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.index = index
        self.cache = cache
        self.metrics = metrics
        self.is_local = is_local
        self.reload_every = reload_every
        self.clock = clock
        self._config: UpstreamConfig | None = None
        self._checked = -math.inf
        self._listings: OrderedDict[str, Listing] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._prepared = False

    # -- settings ------------------------------------------------------------------------------
    async def config(self) -> UpstreamConfig | None:
        """The current settings (None: no upstream), re-read now and then from the registry."""
        if time.monotonic() - self._checked >= self.reload_every:
            self._checked = time.monotonic()
            try:
                self._config = await run_in_threadpool(self._read_config)
            except ReleaseError as exc:  # keep the last good settings; say why once per read
                logger.error("upstream settings of index %s unreadable: %s", self.index, exc)
        return self._config

    def _read_config(self) -> UpstreamConfig | None:
        entry = config_for(read_registry(self.registry), self.index)
        return parse_upstream(entry.upstream)

    def _count(self, kind: str, outcome: str, started: float | None = None) -> None:
        self.metrics.upstream_fetches.labels(self.index, kind, outcome).inc()
        if started is not None:
            self.metrics.upstream_seconds.labels(self.index, kind).observe(
                time.monotonic() - started
            )

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- pages ---------------------------------------------------------------------------------
    def _cached(self, project: str) -> Listing | None:
        listing = self._listings.get(project)
        if listing is None:
            raw = self.cache.read_state(f"pages/{project}.json")
            listing = Listing.from_bytes(raw) if raw is not None else None
        return listing

    def _remember(self, listing: Listing) -> None:
        self._listings[listing.project] = listing
        self._listings.move_to_end(listing.project)
        while len(self._listings) > MEMORY_LISTINGS:
            self._listings.popitem(last=False)

    async def page(self, project: str, config: UpstreamConfig) -> PageResult:
        """The listing to serve: cached while fresh (or offline), else fetched; a cached one,
        marked stale, when upstream fails. Raises UpstreamError with nothing cached, and
        NotCached offline with nothing cached."""
        cached = await run_in_threadpool(self._cached, project)
        if config.offline:
            if cached is None:
                self._count("page", "offline_miss")
                raise NotCached(project)
            return PageResult(cached)
        if cached is not None and self.clock() - cached.fetched < config.ttl:
            return PageResult(cached)
        lock = self._lock(f"page:{project}")
        async with lock:
            latest = self._listings.get(project)
            if latest is not None and self.clock() - latest.fetched < config.ttl:
                return PageResult(latest)  # fetched while we waited
            try:
                listing = await self._fetch_page(project, config)
            except UpstreamError as exc:
                if cached is None:
                    raise
                logger.warning("upstream failed, serving the cached page of %s: %s", project, exc)
                self._count("page", "stale")
                return PageResult(cached, stale=exc.detail)
            finally:
                self._locks.pop(f"page:{project}", None)
        return PageResult(listing)

    async def _fetch_page(self, project: str, config: UpstreamConfig) -> Listing | None:
        url = f"{config.url}{quote(project)}/"
        started = time.monotonic()
        try:
            fetched = await fetch(
                url,
                config,
                accept=PAGE_ACCEPT,
                limit=config.max_page_size,
                deadline=config.timeout,
            )
            listing = (
                None if fetched is None else parse_page(project, fetched, config, self.clock())
            )
        except UpstreamError as exc:
            self._count("page", exc.code.removeprefix("upstream-"), started)
            raise
        if listing is None:
            self._count("page", "not_found", started)
            logger.info("upstream %s has no project %s", config.url, project)
            return None
        self._count("page", "ok", started)
        logger.info(
            "upstream page %s: %d files kept, %d dropped (%s, %.0f ms)",
            url,
            len(listing.files),
            listing.dropped,
            listing.source,
            (time.monotonic() - started) * 1000,
        )
        await run_in_threadpool(self._store_page, listing)
        self._remember(listing)
        return listing

    def _store_page(self, listing: Listing) -> None:
        self._prepare()
        self.cache.write_state(f"pages/{listing.project}.json", listing.to_bytes(), durable=False)

    def _prepare(self) -> None:
        if not self._prepared:
            self.cache.prepare()
            self._prepared = True

    # -- files ---------------------------------------------------------------------------------
    def _cached_file(self, entry: UpstreamFile) -> StoredFile | None:
        """The cached copy when it holds the bytes upstream lists; HashMismatch when upstream
        now lists other bytes under the same name."""
        stored = self.cache.stat(entry.filename)
        if stored is None:
            return None
        raw = self.cache.read_state(f"sha256/{entry.filename}")
        if raw is None:  # stored, then the process died before anything else: hash it now
            raw = hash_stored(self.cache, entry.filename)[0].encode()
            self.cache.write_state(f"sha256/{entry.filename}", raw)
        if raw.decode() != entry.sha256:
            raise HashMismatch(
                f"upstream now lists sha256 {entry.sha256} for {entry.filename}, but the copy "
                f"cached earlier has {raw.decode()}: a file never changes its bytes on an honest "
                "index; remove the cached copy if upstream really replaced it"
            )
        return stored

    async def file(self, entry: UpstreamFile, config: UpstreamConfig) -> StoredFile:
        """The cached copy of `entry`, fetched and verified first when missing."""
        stored = await run_in_threadpool(self._cached_file, entry)
        if stored is not None:
            self._count("file", "cached")
            return stored
        if config.offline:
            self._count("file", "offline_miss")
            raise NotCached(entry.filename)
        async with self._lock(f"file:{entry.filename}"):
            stored = await run_in_threadpool(self._cached_file, entry)
            if stored is not None:
                return stored
            started = time.monotonic()
            try:
                stored = await self._download(entry, config)
            except UpstreamError as exc:
                self._count("file", exc.code.removeprefix("upstream-"), started)
                logger.warning("upstream file %s refused: %s", entry.url, exc)
                raise
            finally:
                self._locks.pop(f"file:{entry.filename}", None)
            self._count("file", "ok", started)
            logger.info("cached upstream file %s (%d bytes)", entry.url, stored.size)
            return stored

    async def _download(self, entry: UpstreamFile, config: UpstreamConfig) -> StoredFile:
        await run_in_threadpool(self._prepare)
        upload = await run_in_threadpool(self.cache.new_upload)
        try:
            limit = config.max_file_size if entry.size is None else entry.size
            fetched = await fetch(
                entry.url,
                config,
                accept="*/*",
                limit=min(limit, config.max_file_size),
                deadline=config.timeout * 10,
                sink=upload.write,
            )
            if fetched is None:
                raise UpstreamError(f"upstream no longer has {entry.url} (404)")
            if fetched.sha256 != entry.sha256:
                raise HashMismatch(
                    f"upstream sent {entry.filename} with sha256 {fetched.sha256}, but its page "
                    f"lists {entry.sha256}: nothing was cached; try again later or ask the "
                    "upstream's admin"
                )
            mtime_ns = None if entry.uploaded is None else int(entry.uploaded * 1e9)
            return await run_in_threadpool(self._keep, upload, entry, mtime_ns)
        finally:
            await run_in_threadpool(upload.abort)

    def _keep(self, upload: Any, entry: UpstreamFile, mtime_ns: int | None) -> StoredFile:
        # The verified hash first: a copy is never without it (both racers verified the same).
        self.cache.write_state(f"sha256/{entry.filename}", entry.sha256.encode())
        stored: StoredFile | None = upload.create(entry.filename, mtime_ns=mtime_ns)
        return stored or self.cache.stat(entry.filename) or StoredFile(entry.filename, 0, 0)

    async def metadata(self, entry: UpstreamFile, config: UpstreamConfig) -> bytes:
        """The PEP 658 metadata of `entry`, verified against the hash upstream listed."""
        name = f"metadata/{entry.filename}.metadata"
        data = await run_in_threadpool(self.cache.read_state, name)
        if data is not None and hashlib.sha256(data).hexdigest() == entry.metadata_sha256:
            return data
        if config.offline:
            self._count("metadata", "offline_miss")
            raise NotCached(entry.filename + ".metadata")
        started = time.monotonic()
        fetched = await fetch(
            entry.url + ".metadata",
            config,
            accept="*/*",
            limit=MAX_METADATA,
            deadline=config.timeout,
        )
        if fetched is None or fetched.sha256 != entry.metadata_sha256:
            self._count("metadata", "hash_mismatch", started)
            raise HashMismatch(
                f"upstream's metadata of {entry.filename} is missing or does not match the "
                "sha256 its page lists: nothing was cached"
            )
        self._count("metadata", "ok", started)
        await run_in_threadpool(self._prepare)
        await run_in_threadpool(self.cache.write_state, name, fetched.body, durable=False)
        return fetched.body
