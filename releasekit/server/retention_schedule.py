"""The server applies each index's retention rules every `every`, once per period in total.

Each worker (and each replica) runs a `RetentionSchedule` thread. Before a run it takes the
index's lease: the state blob `retention-lease.json` of the index's own store, read and written
under `storage.lock`, which says who ran when and until when the period is taken. Of all workers
and replicas only the one that finds the lease expired runs; the others learn when to look again
and stay quiet until then. Between periods a check costs one registry read per index.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from releasekit.errors import IndexServerError
from releasekit.server.catalogue import Catalogue
from releasekit.server.indexes import read_registry
from releasekit.server.pages import PageSet
from releasekit.server.retention import parse_rules
from releasekit.server.retention_plan import iso
from releasekit.server.retention_run import Target, apply_plan, open_store, plan_store
from releasekit.server.storage import Storage

if TYPE_CHECKING:
    from releasekit.server.state import IndexState

logger = logging.getLogger("releasekit.server")
LEASE_NAME = "retention-lease.json"

# index name -> its store, and that store's catalogue and pages (the live ones when served)
StoreOpener = Callable[[str], Storage]
CatalogueOpener = Callable[[str, Storage], tuple[Catalogue, PageSet]]


@dataclass(frozen=True)
class Lease:
    """Who took an index's retention period, when, and until when nobody else may run."""

    owner: str
    taken: float
    until: float

    def held(self, now: float, every: float) -> bool:
        # A shortened --every applies at once: the lease ends at the earlier of the two.
        return min(self.until, self.taken + every) > now


def read_lease(storage: Storage) -> Lease | None:
    raw = storage.read_state(LEASE_NAME)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Lease(str(data["owner"]), float(data["taken"]), float(data["until"]))
    except (ValueError, TypeError, KeyError):
        return None  # a damaged lease is an expired one: the next check takes it over


def take_lease(storage: Storage, owner: str, now: float, every: float) -> tuple[bool, Lease]:
    """Take the index's lease for one period if nobody holds it: (taken, the lease in force)."""
    with storage.lock(LEASE_NAME):
        current = read_lease(storage)
        if current is not None and current.held(now, every):
            return False, current
        lease = Lease(owner, now, now + every)
        body = {"owner": lease.owner, "taken": lease.taken, "until": lease.until}
        storage.write_state(LEASE_NAME, json.dumps(body).encode())
        return True, lease


class RetentionSchedule:
    """Checks the registry every `interval` seconds and runs the rules that are due."""

    def __init__(
        self,
        root: Storage,
        open_store_of: StoreOpener,
        open_catalogue_of: CatalogueOpener,
        *,
        on_run: Callable[[str, int], None] | None = None,
        interval: float = 1.0,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ) -> None:
        self.root = root
        self.open_store_of = open_store_of
        self.open_catalogue_of = open_catalogue_of
        self.on_run = on_run  # (index, files deleted): the metrics
        self.interval = interval
        self.stop = stop or threading.Event()
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        # index -> (the rules object it was computed for, when to look again)
        self._next: dict[str, tuple[Mapping[str, Any], float]] = {}
        self._reported: dict[str, str] = {}

    def loop(self) -> None:
        """The thread's body: check now, then every interval, until `stop` is set."""
        while True:
            try:
                self.check()
            except OSError as exc:  # a store down or a full disk: said once, retried each time
                self._report("", f"retention is paused: {exc}")
            except Exception:  # the schedule must survive anything a run meets
                logger.exception("retention: checking the schedule failed")
            if self.stop.wait(self.interval):
                return

    def check(self) -> None:
        """Run every index whose rules are due and whose lease this process gets."""
        try:
            configs = read_registry(self.root)
        except IndexServerError as exc:
            self._report("", f"retention is paused: {exc.message}")
            return
        self._reported.pop("", None)
        for name, config in sorted(configs.items()):
            if self.stop.is_set():
                return
            raw = config.retention
            try:
                rules = parse_rules(raw, f"index {name!r}")
            except IndexServerError as exc:
                self._report(name, f"retention of index {name} is off: {exc.message}")
                continue
            self._reported.pop(name, None)
            if rules is None or raw is None or rules.every_seconds is None:
                self._next.pop(name, None)
                continue
            seen = self._next.get(name)
            now = self.clock()
            if seen is not None and seen[0] == raw and seen[1] > now:
                continue
            every = rules.every_seconds
            storage = self.open_store_of(name)
            taken, lease = take_lease(storage, self.owner, now, every)
            self._next[name] = (raw, min(lease.until, lease.taken + every))
            if not taken:
                logger.info(
                    "retention of index %s: not due, run by %s at %s; next run after %s",
                    name,
                    lease.owner,
                    iso(lease.taken),
                    iso(self._next[name][1]),
                )
                continue
            self.run(Target(name, rules, raw), storage, lease)

    def run(self, target: Target, storage: Storage, lease: Lease) -> None:
        catalogue, pages = self.open_catalogue_of(target.name, storage)
        plan = plan_store(catalogue, target.rules, lease.taken)
        outcome = apply_plan(self.root, target, storage, catalogue, pages, plan, stop=self.stop)
        if self.on_run is not None:
            self.on_run(target.name, len(outcome.deleted))
        logger.info(
            "retention of %s (%s) by %s; next run after %s",
            outcome.describe(target.name),
            target.rules.describe(),
            self.owner,
            iso(lease.until),
        )

    def _report(self, name: str, message: str) -> None:
        # Once per distinct problem, not once per check: a broken rule must not flood the log.
        if self._reported.get(name) != message:
            self._reported[name] = message
            logger.error("%s", message)


def default_catalogue(name: str, storage: Storage) -> tuple[Catalogue, PageSet]:
    """A store's catalogue loaded afresh (an index this process does not serve itself)."""
    return open_store(storage)


def start_schedule(state: IndexState) -> threading.Thread:
    """The app's schedule thread over the registry of its (root) store; stops with `state.stop`.

    Every index this app serves (the default one and the named ones) uses its live catalogue
    and pages, so its pages follow at once; an index not served yet is opened afresh.
    """
    from releasekit.server.indexes import ROOT_INDEX
    from releasekit.server.process import make_storage

    def served(name: str) -> IndexState | None:
        if state.family is not None:
            return state.family.get(name)
        return state if name == ROOT_INDEX else None

    def store_of(name: str) -> Storage:
        live = served(name)
        return live.storage if live is not None else make_storage(state.settings, name)

    def catalogue_of(name: str, storage: Storage) -> tuple[Catalogue, PageSet]:
        live = served(name)
        if live is not None and storage is live.storage:
            return live.catalogue, live.pages
        return default_catalogue(name, storage)

    def counted(name: str, deleted: int) -> None:
        state.metrics.retention_runs.labels(name).inc()
        state.metrics.retention_deleted.labels(name).inc(deleted)

    schedule = RetentionSchedule(
        state.storage,
        store_of,
        catalogue_of,
        on_run=counted,
        interval=max(state.settings.poll_interval, 1.0),
        stop=state.stop,
    )
    thread = threading.Thread(target=schedule.loop, name="releasekit-retention", daemon=True)
    thread.start()
    return thread
