"""One index's upstream at run time: its settings, its cached pages and its cached files.

Hung off the index's state (`IndexState.upstream`), one per index. The cache is a Storage of
its own (`<packages>/.upstream/<index>/` or `<prefix>/upstream/<index>`), apart from the
index's files: a cached upstream file never makes a project local, and `server remove`,
retention and promote never see it. In the cache store, files sit by filename, their verified
sha256 in `sha256/<file>`, pages in `pages/<project>.json`, PEP 658 metadata in
`metadata/<file>.metadata`. The settings (`read_settings`: the raw registry object) are re-read
at most every `reload_every` seconds, so `releasekit server index upstream` takes effect
without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool

from releasekit.errors import ReleaseError
from releasekit.server.catalogue import Catalogue, filename_project
from releasekit.server.indexes import ROOT_INDEX, config_for, read_registry
from releasekit.server.metadata import ArchiveError
from releasekit.server.metrics import Metrics
from releasekit.server.storage import Storage
from releasekit.server.upstream import UpstreamConfig, describe, parse_upstream
from releasekit.server.upstream_fetch import (
    PAGE_ACCEPT,
    NotCached,
    UpstreamError,
    fetch,
    outcome_label,
)
from releasekit.server.upstream_files import UpstreamFiles
from releasekit.server.upstream_listing import Listing, parse_page

logger = logging.getLogger("releasekit.server.upstream")
MEMORY_LISTINGS = 256
MEMORY_MISSING = 4096


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


def registry_reader(root: Storage, index: str = ROOT_INDEX) -> Callable[[], Any]:
    """Reads `index`'s raw upstream settings from the registry in the root store, each call."""
    return lambda: config_for(read_registry(root), index).upstream


class UpstreamState:
    """The upstream of one index: settings, page cache, file cache, metrics."""

    def __init__(
        self,
        *,
        read_settings: Callable[[], Mapping[str, Any] | None],
        index: str,
        cache: Storage,
        metrics: Metrics,
        is_local: Callable[[str], bool],
        reload_every: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.read_settings = read_settings
        self.index = index
        self.cache = cache
        self.metrics = metrics
        self.is_local = is_local
        self.reload_every = reload_every
        self.clock = clock
        self._config: UpstreamConfig | None = None
        self._checked = -math.inf
        self._listings: OrderedDict[str, Listing] = OrderedDict()
        # Names upstream answered 404 for, and when: asked again only after the ttl, so a
        # client cannot turn requests for made-up names into as many upstream requests.
        self._missing: OrderedDict[str, float] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._config_lock = asyncio.Lock()
        self._prepared = False
        self.files = UpstreamFiles(cache, self._count, self._prepare)
        try:  # read once now, so the start-up log says what the index reads through
            self._config = self._read_config()  # the first request reads again anyway
        except ReleaseError as exc:
            logger.error("upstream settings of index %s unreadable: %s", self.index, exc)
        if self._config is not None:
            logger.info("index %s: %s", self.index, describe(self._config))

    # -- settings ------------------------------------------------------------------------------
    async def config(self) -> UpstreamConfig | None:
        """The current settings (None: no upstream), re-read now and then from the registry."""
        if time.monotonic() - self._checked < self.reload_every:
            return self._config
        # Requests arriving while the settings are read wait for them (not for the old ones).
        async with self._config_lock:
            if time.monotonic() - self._checked >= self.reload_every:
                try:
                    config = await run_in_threadpool(self._read_config)
                except ReleaseError as exc:  # keep the last good settings; say why
                    logger.error("upstream settings of index %s unreadable: %s", self.index, exc)
                    config = self._config
                if config != self._config:
                    logger.info("index %s: %s", self.index, describe(config))
                self._config = config
                self._checked = time.monotonic()
        return self._config

    def _read_config(self) -> UpstreamConfig | None:
        return parse_upstream(self.read_settings())

    def _count(self, kind: str, outcome: str, started: float | None = None) -> None:
        self.metrics.upstream_fetches.labels(self.index, kind, outcome).inc()
        if started is not None:
            self.metrics.upstream_seconds.labels(self.index, kind).observe(
                time.monotonic() - started
            )

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- pages ---------------------------------------------------------------------------------
    def _read_cached(self, project: str) -> Listing | None:
        raw = self.cache.read_state(f"pages/{project}.json")
        return Listing.from_bytes(raw) if raw is not None else None

    async def _cached(self, project: str) -> Listing | None:
        """The listing in memory, else the one another worker or an earlier run stored."""
        listing = self._listings.get(project)
        if listing is None:
            listing = await run_in_threadpool(self._read_cached, project)
            if listing is not None:
                self._remember(listing)
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
        cached = await self._cached(project)
        if config.offline:
            if cached is None:
                self._count("page", "offline_miss")
                raise NotCached(project)
            return PageResult(cached)
        if cached is not None and self.clock() - cached.fetched < config.ttl:
            return PageResult(cached)
        missed = self._missing.get(project)
        if cached is None and missed is not None and self.clock() - missed < config.ttl:
            return PageResult(None)
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
            self._count("page", outcome_label(exc), started)
            raise
        if listing is None:
            self._missing[project] = self.clock()
            self._missing.move_to_end(project)
            while len(self._missing) > MEMORY_MISSING:
                self._missing.popitem(last=False)
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
        self._missing.pop(project, None)
        self._remember(listing)
        return listing

    def _store_page(self, listing: Listing) -> None:
        self._prepare()
        self.cache.write_state(f"pages/{listing.project}.json", listing.to_bytes(), durable=False)

    def _prepare(self) -> None:
        if not self._prepared:
            self.cache.prepare()
            self._prepared = True
