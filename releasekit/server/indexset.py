"""Every index one server serves: the default one and the named ones of the registry.

`IndexSet` owns a state per named index (catalogue, pages, poll thread), made at start and
whenever the registry (indexes.py) names a new index; every worker re-reads the registry blob
each poll interval, so `releasekit server index create|remove|acl` reach a running server
without a restart. A registry that stops parsing is logged and the last good one kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from releasekit.errors import IndexServerError
from releasekit.server.indexes import (
    REGISTRY_NAME,
    ROOT_INDEX,
    IndexConfig,
    parse_registry,
    resolution_order,
)
from releasekit.server.negotiation import Format
from releasekit.server.pages import Page, page_set, render_root_html, render_root_json
from releasekit.server.state import IndexState
from releasekit.server.storage import Storage, StorageUnavailable

logger = logging.getLogger("releasekit.server")

StateFactory = Callable[[str], IndexState]


class IndexSet:
    """The default index, the named ones, and their registry entries as last read."""

    def __init__(self, root: IndexState, root_storage: Storage, build: StateFactory) -> None:
        self.root = root
        self.root_storage = root_storage
        self.build = build
        self.states: dict[str, IndexState] = {}
        self.configs: dict[str, IndexConfig] = {}
        self._defaults: dict[str, IndexConfig] = {}
        self.stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._blob: bytes | None = None
        self._bad: bytes | None = None
        self._changing = threading.Lock()
        # name -> (the root page dicts it was made from, the union pages)
        self._unions: dict[str, tuple[tuple[object, ...], dict[Format, Page]]] = {}

    def config(self, name: str) -> IndexConfig:
        """The registry entry of `name` (the default index has defaults until configured)."""
        config = self.configs.get(name)
        if config is None:  # asked on every request of the default index: made once
            config = self._defaults.get(name) or self._defaults.setdefault(name, IndexConfig(name))
        return config

    def get(self, name: str) -> IndexState | None:
        """The state of the index `name`, or None when there is no such index."""
        return self.root if name == ROOT_INDEX else self.states.get(name)

    def known(self) -> list[str]:
        """Every index name, the default first."""
        return [ROOT_INDEX, *sorted(self.states)]

    def chain(self, name: str) -> list[IndexState]:
        """`name` and its bases, in the order a lookup tries them."""
        found = (self.get(n) for n in resolution_order(name, self.configs))
        return [state for state in found if state is not None]

    def owner(self, name: str, project: str) -> IndexState | None:
        """The first index in `name`'s chain that has `project` (indexed or pending)."""
        for state in self.chain(name):
            catalogue = state.catalogue
            if project in catalogue.projects or project in catalogue.pending_projects:
                return state
        return None

    def union_root(self, name: str) -> dict[Format, Page]:
        """The root pages of `name`: every project its chain answers for, rendered when one
        of the chain's own root pages changed since the last call."""
        chain = self.chain(name)
        key = tuple(state.pages.root for state in chain)
        cached = self._unions.get(name)
        if (
            cached is not None
            and len(cached[0]) == len(key)
            and all(a is b for a, b in zip(cached[0], key, strict=True))
        ):
            return cached[1]
        names = sorted({p for state in chain for p in state.catalogue.project_names()})
        pages = page_set(render_root_html(names), render_root_json(names))
        self._unions[name] = (key, pages)
        return pages

    def refresh(self) -> None:
        """Re-read the registry blob; apply it if it changed and parses, else keep the last."""
        try:
            blob = self.root_storage.read_state(REGISTRY_NAME)
        except OSError:
            logger.exception("reading the index registry failed; keeping the last one")
            return
        if blob == self._blob or (blob is not None and blob == self._bad):
            return
        try:
            configs = parse_registry(blob)
        except IndexServerError as exc:
            self._bad = blob
            logger.error(
                "the index registry (%s) is invalid, keeping the last good one (%s): %s%s",
                REGISTRY_NAME,
                ", ".join(self.known()),
                exc.message,
                f" ({exc.hint})" if exc.hint else "",
            )
            return
        if self._apply(configs):
            self._blob = blob
        self._bad = None

    def _apply(self, configs: dict[str, IndexConfig]) -> bool:
        """Serve what `configs` names; False if some index could not be opened (retried)."""
        complete = True
        with self._changing:
            wanted = set(configs) - {ROOT_INDEX}
            for name in sorted(set(self.states) - wanted):
                self._drop(name)
            for name in sorted(wanted - set(self.states)):
                try:
                    state = self.build(name)
                except Exception:  # one broken store must not take the others down
                    logger.exception(
                        "index %s could not be opened; retrying at the next poll", name
                    )
                    complete = False
                    continue
                self.states[name] = state
                self._start(name, state)
                logger.info("serving index %s at /%s/simple/", name, name)
            self.configs = configs
            self._unions.clear()
        return complete

    def _start(self, name: str, state: IndexState) -> None:
        thread = threading.Thread(target=state.poll, name=f"releasekit-poll-{name}", daemon=True)
        self._threads[name] = thread
        thread.start()

    def _drop(self, name: str) -> None:
        # Its files may be gone already (`index remove --delete-files`): stop, never flush.
        state = self.states.pop(name)
        state.stop.set()
        self._threads.pop(name, None)
        logger.info("index %s was removed; no longer serving /%s/", name, name)

    def poll(self, interval: float) -> None:
        """Background loop: re-read the registry every `interval` seconds until stopped."""
        while not self.stop.wait(interval):
            try:
                self.refresh()
            except Exception:  # the registry poller must outlive any one bad read
                logger.exception("refreshing the index registry failed")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the registry poll and every named index's poll; save their catalogues."""
        self.stop.set()
        for name, state in list(self.states.items()):
            state.stop.set()
            thread = self._threads.get(name)
            if thread is not None:
                thread.join(timeout)
            try:
                state.catalogue.flush()
            except StorageUnavailable as exc:  # a cache: the next start rebuilds it
                logger.error("index %s: the catalogue was not saved on the way out: %s", name, exc)
