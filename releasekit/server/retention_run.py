"""Running retention on a store: plan from its catalogue, then delete as `server remove` does.

Deletions go through `maintenance.remove_files` (files, sidecars, provenance, pages, catalogue),
so a running server's pages follow on its next poll of the store, as after `server remove`.
Before each release the registry is read again: if the index's rules changed (or the index
went away) meanwhile, the run stops there and says so, instead of applying stale rules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from releasekit.errors import IndexServerError
from releasekit.server.catalogue import Catalogue, filename_project
from releasekit.server.indexes import (
    REGISTRY_NAME,
    ROOT_INDEX,
    IndexConfig,
    config_for,
    read_registry,
    render_registry,
)
from releasekit.server.maintenance import remove_files
from releasekit.server.metadata import SDIST_SUFFIXES, ArchiveError
from releasekit.server.pages import PageSet
from releasekit.server.retention import RetentionRules, parse_rules
from releasekit.server.retention_plan import (
    RetentionFile,
    RetentionPlan,
    count,
    plan_retention,
)
from releasekit.server.storage import Storage


@dataclass(frozen=True)
class Target:
    """An index with rules, and the registry section they came from (to notice changes)."""

    name: str
    rules: RetentionRules
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class Step:
    """Progress of a run: one file handled (`gone`: it had disappeared before its delete)."""

    done: int
    total: int
    filename: str
    gone: bool


@dataclass(frozen=True)
class Outcome:
    """What a run did; `stopped` says why it ended before the plan's end."""

    plan: RetentionPlan
    deleted: tuple[str, ...]
    gone: tuple[str, ...]
    deleted_bytes: int
    stopped: str | None = None

    def describe(self, index: str) -> str:
        plan = self.plan
        done = (
            f"index {index}: deleted {len(self.deleted)} of {len(plan.files)} files "
            f"({self.deleted_bytes} of {plan.bytes} bytes) in {count(len(plan.deletions), 'release')}"
            f" of {count(plan.projects, 'project')}"
        )
        if self.gone:
            done += f"; {len(self.gone)} already gone"
        return done + (f"; stopped: {self.stopped}" if self.stopped else "")


def set_retention(root: Storage, name: str, rules: RetentionRules | None) -> IndexConfig:
    """Set (or with None, clear) an index's rules; the rest of its settings stay as they are.

    Read and written under the registry's lock, so a concurrent edit of another setting
    (an ACL, a base) is never lost.
    """
    with root.lock(REGISTRY_NAME):
        configs = read_registry(root)
        current = config_for(configs, name)  # an unknown index is an error naming the known
        configs[name] = replace(current, retention=None if rules is None else rules.to_json())
        root.write_state(REGISTRY_NAME, render_registry(configs.values()))
        return configs[name]


def targets(configs: Mapping[str, IndexConfig], index: str | None) -> list[Target]:
    """The indexes a run covers: `index`, or every index with rules (None)."""
    if index is not None:
        config = config_for(configs, index)  # an unknown index is an error naming the known
        rules = parse_rules(config.retention, f"index {index!r}")
        if rules is None or config.retention is None:
            raise IndexServerError(
                f"index {index!r} has no retention rules",
                hint=f"set them with `releasekit server index retention {index} --keep-dev N "
                f"--keep-pre M`, then preview them with `releasekit server retention --index "
                f"{index} --dry-run`",
            )
        return [Target(index, rules, config.retention)]
    found = []
    for name, config in sorted(configs.items()):
        rules = parse_rules(config.retention, f"index {name!r}")
        if rules is not None and config.retention is not None:
            found.append(Target(name, rules, config.retention))
    if not found:
        raise IndexServerError(
            "no index has retention rules",
            hint=f"set them with `releasekit server index retention {ROOT_INDEX} --keep-dev N "
            "--keep-pre M` (or another index name)",
        )
    return found


def open_store(storage: Storage) -> tuple[Catalogue, PageSet]:
    """The store's catalogue with every file indexed (saves batched: flush after the run)."""
    if not storage.exists():
        raise IndexServerError(
            f"the packages {storage.describe()} does not exist",
            hint="pass the directory the server runs on (-D), or create the index again",
        )
    catalogue = Catalogue(storage, debounce_saves=True)
    catalogue.load()
    return catalogue, PageSet(catalogue, storage)


def retention_files(catalogue: Catalogue) -> list[RetentionFile]:
    """Every listed file, and every unreadable one named like a distribution (never deleted)."""
    files = [
        RetentionFile(r.filename, r.project, r.version, r.size, r.mtime_ns)
        for r in catalogue.files.values()
    ]
    for filename, problem in sorted(catalogue.skipped.items()):
        version = _raw_version(filename)
        if version is not None:
            project = filename_project(filename)
            files.append(RetentionFile(filename, project, version, 0, 0, problem))
    return files


def _raw_version(filename: str) -> str | None:
    """The version part of a distribution filename, unchecked (None: not a distribution)."""
    try:
        filename_project(filename)
    except ArchiveError:
        return None
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return parts[1] if len(parts) >= 5 else None
    for suffix in SDIST_SUFFIXES:
        if filename.endswith(suffix):
            return filename.removesuffix(suffix).rpartition("-")[2] or None
    return None


def plan_store(catalogue: Catalogue, rules: RetentionRules, now: float) -> RetentionPlan:
    catalogue.index_pending()  # a release's files go together: none may be left pending
    return plan_retention(retention_files(catalogue), rules, now)


def apply_plan(
    root: Storage,
    target: Target,
    storage: Storage,
    catalogue: Catalogue,
    pages: PageSet,
    plan: RetentionPlan,
    progress: Callable[[Step], None] | None = None,
    stop: threading.Event | None = None,
) -> Outcome:
    """Delete the plan's releases one at a time; stop if the index's rules change meanwhile
    (or `stop` is set: the server is shutting down)."""
    total = len(plan.files)
    deleted: list[str] = []
    gone: list[str] = []
    size = 0
    stopped = None
    try:
        for deletion in plan.deletions:
            stopped = "the server is stopping" if stop and stop.is_set() else None
            stopped = stopped or _changed(root, target)
            if stopped is not None:
                break
            missing = set(
                remove_files(storage, catalogue, pages, [f.filename for f in deletion.files])
            )
            for file in deletion.files:
                if file.filename in missing:
                    gone.append(file.filename)
                else:
                    deleted.append(file.filename)
                    size += file.size
                if progress is not None:
                    progress(
                        Step(
                            len(deleted) + len(gone), total, file.filename, file.filename in missing
                        )
                    )
    finally:
        catalogue.flush()
    return Outcome(plan, tuple(deleted), tuple(gone), size, stopped)


def _changed(root: Storage, target: Target) -> str | None:
    """Why the plan no longer holds (the rules changed or the index went away), or None."""
    configs = read_registry(root)
    if target.name != ROOT_INDEX and target.name not in configs:
        return f"index {target.name!r} was removed during the run"
    current = config_for(configs, target.name).retention
    if current != target.raw:
        return f"the retention rules of index {target.name!r} changed during the run"
    return None
