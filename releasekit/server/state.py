"""The per-index state (`IndexState`) and the authorization helpers every endpoint uses."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request

from releasekit.server.acl import check_access
from releasekit.server.auth import Action, Authenticator, Principal
from releasekit.server.catalogue import Catalogue
from releasekit.server.indexes import ROOT_INDEX, IndexConfig
from releasekit.server.metrics import Metrics
from releasekit.server.negotiation import Format
from releasekit.server.oidc import TrustedPublisher
from releasekit.server.pages import Page, PageSet
from releasekit.server.problems import auth_problem as auth_problem
from releasekit.server.records import FileRecord, PendingFile
from releasekit.server.settings import Settings
from releasekit.server.storage import Storage
from releasekit.server.upstream_state import UpstreamState

if TYPE_CHECKING:
    from releasekit.server.indexset import IndexSet

logger = logging.getLogger("releasekit.server")

# The catalogue cache is written at most this often (it is a cache: the files are the truth),
# and less often while a backlog is indexed, when each write is larger and soon stale.
SAVE_INTERVAL = 1.0
BACKLOG_SAVE_INTERVAL = 10.0
# Files indexed per background step: between steps the poller rescans and saves.
BATCH_FILES = 200
PROGRESS_EVERY = 1000


@dataclass
class RequestInfo:
    """Per-request facts the endpoints fill in for the access log (scope key `releasekit`)."""

    user: str | None = None
    route: str = "other"
    state: IndexState | None = None  # the named index asked (None: the default index)


@dataclass
class IndexState:
    """Everything one index owns (the default one, or a named one); nothing is module-level."""

    storage: Storage
    settings: Settings
    authorizer: Authenticator
    catalogue: Catalogue
    pages: PageSet
    metrics: Metrics
    publisher: TrustedPublisher | None = None  # trusted publishing, when configured
    upstream: UpstreamState | None = None  # read-through upstream (upstream_state.py)
    name: str = ROOT_INDEX
    family: IndexSet | None = None  # every index of the server: the ACL, the bases
    stop: threading.Event = field(default_factory=threading.Event)
    # Of the processes serving one store, the leader indexes the backlog and writes the
    # catalogue cache; the others follow the change log (the leader's results included).
    leading: bool = field(default=False, init=False)
    _logged: int = field(default=0, init=False, repr=False)
    _backlog_started: float | None = field(default=None, init=False, repr=False)
    # Requests indexing their project right now: the background indexer lets them go first.
    _urgent: int = field(default=0, init=False, repr=False)
    _urgent_done: threading.Condition = field(
        default_factory=threading.Condition, init=False, repr=False
    )

    @property
    def config(self) -> IndexConfig:
        """This index's registry entry, as of the last good registry read."""
        if self.family is None:
            return IndexConfig(self.name)
        return self.family.config(self.name)

    @property
    def overwrite(self) -> bool:
        """Whether uploads here may replace files: the index's own setting, else the server's."""
        own = self.config.overwrite
        return self.settings.overwrite if own is None else own

    async def check(
        self, authorization: str | None, action: Action, project: str | None, client: str = "-"
    ) -> Principal:
        """The principal allowed to take `action` here (acl.py), or AuthError."""
        return await check_access(
            self.authorizer, self.config, authorization, action, project, client
        )

    def chain(self) -> list[IndexState]:
        """This index, then the bases it reads through (just itself without bases)."""
        if self.family is None or not self.config.bases:
            return [self]
        return self.family.chain(self.name)

    def source_of(self, project: str) -> IndexState:
        """The index that answers for `project` here: this one if it has the project (a local
        name never falls through), else the first base that has it, else this one."""
        if self.family is None or not self.config.bases:
            return self
        return self.family.owner(self.name, project) or self

    def find_file(self, filename: str) -> tuple[IndexState, FileRecord | None, PendingFile | None]:
        """(the index serving `filename` here, its record, its pending entry): this index's
        own file, else a base's whose project this index answers from that base."""
        record = self.catalogue.files.get(filename)
        waiting = self.catalogue.pending.get(filename) if record is None else None
        if record is not None or waiting is not None or self.family is None:
            return self, record, waiting
        for base in self.family.chain(self.name)[1:]:
            found = base.catalogue.files.get(filename)
            pending = base.catalogue.pending.get(filename) if found is None else None
            project = found.project if found else pending.project if pending else None
            if project is not None:
                # Shadowed by a nearer index (this one included): not served from here.
                if self.family.owner(self.name, project) is base:
                    return base, found, pending
                break
        return self, None, None

    def root_pages(self) -> dict[Format, Page]:
        """The `/simple/` pages: this index's, or the union with its bases' names."""
        if self.family is None or not self.config.bases:
            return self.pages.root
        return self.family.union_root(self.name)

    def refresh(self) -> set[str]:
        """Pick up changes made behind our back; re-render and persist what changed."""
        changed = self.catalogue.follow(full=True) | self.catalogue.refresh()
        if changed:
            # Files stored behind our back (a promotion) may come with provenance.
            self.pages.provenance.reload()
            self.pages.rebuild(changed)
            self.catalogue.save()
        return changed

    def sync(self, also: set[str] | frozenset[str] = frozenset()) -> None:
        """Apply the change log up to its end and re-render what changed (and `also`).

        Called before a page or file answer when the log moved (one stat to know), and after
        an upload before it is acknowledged: every page then includes every acknowledged file.
        """
        changed = self.catalogue.follow() | set(also)
        if changed:
            self.pages.provenance.reload()  # another worker's upload may have brought some
            try:
                self.pages.rebuild(changed)
            except OSError:
                # The copies on disk are a cache: requests are answered from memory.
                logger.exception("writing the pages of %s failed", sorted(changed)[:5])
            self.catalogue.save()

    def try_lead(self) -> None:
        """Take the leader role if it is free (its holder stopped or died)."""
        if not self.leading and self.storage.lead():
            self.leading = self.catalogue.writes_cache = True
            logger.info("process %d indexes new files and writes the catalogue cache", os.getpid())

    def index_project(self, project: str) -> None:
        """Index a project's pending files now (a request waits for this) and render it."""
        with self._urgent_done:
            self._urgent += 1
        try:
            changed = self.catalogue.index_pending([project])
            if changed:
                try:
                    self.pages.rebuild(changed)
                except OSError:
                    # The copies on disk are a cache: the request is still answered from memory.
                    logger.exception("writing the pages of %s failed", project)
                self.catalogue.save()
        finally:
            with self._urgent_done:
                self._urgent -= 1
                self._urgent_done.notify_all()

    def index_step(self) -> bool:
        """Index about BATCH_FILES pending files, whole projects; True if some remain."""
        pending = self.catalogue.pending_projects
        if not pending:
            if self._backlog_started is not None:  # requests indexed the last ones
                self._log_progress()
            return False
        if self._backlog_started is None:
            self._backlog_started = time.monotonic()
        batch, count = [], 0
        for project in sorted(pending):
            batch.append(project)
            count += len(pending[project])
            if count >= BATCH_FILES:
                break
        changed = self.catalogue.index_pending(batch, before_group=self._let_requests_go)
        if changed:
            self.pages.rebuild(changed)
            self.catalogue.save()
        self._log_progress()
        return bool(self.catalogue.pending_projects)

    def _let_requests_go(self) -> None:
        # Two threads indexing share the GIL: a waiting request would take twice as long.
        with self._urgent_done:
            self._urgent_done.wait_for(lambda: self._urgent == 0, timeout=1.0)

    def _log_progress(self) -> None:
        progress = self.catalogue.progress()
        finished = progress.done == progress.total
        if progress.done // PROGRESS_EVERY > self._logged // PROGRESS_EVERY or finished:
            logger.info("indexed %d/%d files", progress.done, progress.total)
            self._logged = progress.done
        if finished and self._backlog_started is not None:
            seconds = time.monotonic() - self._backlog_started
            logger.info("indexing finished: %d files in %.1f s", progress.done, seconds)
            self._backlog_started = None

    def collect_temp(self) -> None:
        """Remove temp files of uploads whose process died (killed mid-upload)."""
        files, size = self.storage.collect_temp()
        if files:
            logger.info("removed %d temp files (%d bytes) left by dead uploads", files, size)

    def disk_problem(self) -> str | None:
        """Why the packages volume is too full to take uploads, or None."""
        free = self.storage.free_bytes()
        threshold = self.settings.min_free_space
        if free is None or free >= threshold:
            return None
        return (
            f"low disk: {free} bytes free on the packages volume, below the min_free_space "
            f"threshold of {threshold}"
        )

    def poll(self) -> None:
        """Background loop: index pending files a batch at a time, else a stat or two per
        interval (a scan only when something moved); save the cache every SAVE_INTERVAL;
        collect dead uploads' temp files every temp_sweep_interval."""
        self.pages.warm()
        saved = swept = time.monotonic()
        busy = True  # start indexing at once
        while not self.stop.wait(0 if busy else self.settings.poll_interval):
            try:
                self.try_lead()
                if time.monotonic() - swept >= self.settings.temp_sweep_interval:
                    swept = time.monotonic()
                    self.collect_temp()
                self.refresh()
                busy = self.index_step() if self.leading else False
                interval = BACKLOG_SAVE_INTERVAL if busy else SAVE_INTERVAL
                if time.monotonic() - saved >= interval:
                    self.catalogue.flush()
                    saved = time.monotonic()
            except Exception:  # the poller must survive a bad file or a full disk
                logger.exception("refreshing the catalogue failed")
                busy = False


class PendingCollector(Collector):
    """`releasekit_files_pending`: files known by name, not indexed (so not listed) yet."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "releasekit_files_pending", "Files found in the directory and not indexed yet"
        )
        gauge.add_metric([], len(self.catalogue.pending))
        yield gauge


class DiskCollector(Collector):
    """`releasekit_disk_free_bytes`: free space on the packages volume, read at scrape time."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def collect(self) -> Iterator[GaugeMetricFamily]:
        free = self.storage.free_bytes()
        if free is not None:
            gauge = GaugeMetricFamily(
                "releasekit_disk_free_bytes", "Free bytes on the packages volume for uploads"
            )
            gauge.add_metric([], free)
            yield gauge


def state_of(request: Request) -> IndexState:
    """The state of the index a request is for: the named one the front chose, else root."""
    info: RequestInfo | None = request.scope.get("releasekit")
    if info is not None and info.state is not None:
        return info.state
    state: IndexState = request.app.state.index
    return state


async def authorize(request: Request, action: Action, project: str | None) -> Principal:
    """Ask the request's index (acl.py); record who it was for the access log. Raises AuthError."""
    state = state_of(request)
    client = request.client.host if request.client else "-"
    principal = await state.check(request.headers.get("authorization"), action, project, client)
    info: RequestInfo | None = request.scope.get("releasekit")
    if info is not None:
        info.user = principal.name
    return principal
