"""Per-project file records, kept as a rebuildable cache of the packages directory.

The cache (`.releasekit/catalogue.json`) lets a restart skip re-hashing: a file whose size and
mtime are unchanged keeps its record. Files it does not cover are pending until indexed (on
first request for their project, or by the server's background indexer). Yank state is not
derivable from the files, so it lives in its own file (`.releasekit/yanked.json`).
Processes sharing a store follow its change log (changes.py, following.py): stores, deletes,
indexing results, yanks and statuses arrive in log order, so every follower converges on the
same records without re-reading files another process has read. `applied` is the last entry
folded in; the cache records it, so a restart follows only the entries written since.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields, replace

from releasekit.errors import IndexServerError
from releasekit.server.changes import Entry, parse_change
from releasekit.server.following import BadChange, Work, apply_change, note_of
from releasekit.server.metadata import ArchiveError
from releasekit.server.records import (
    FileRecord,
    PendingFile,
    Progress,
    filename_project,
    hash_stored,
    hash_stream,
    index_file,
    make_record,
    metadata_state_name,
)
from releasekit.server.status import STATUS_NAME, ProjectStatus, read_statuses, write_statuses
from releasekit.server.storage import Storage, StoredFile

# Re-exported: the routes, uploads and admin commands import them from here.
__all__ = [
    "Catalogue",
    "FileRecord",
    "PendingFile",
    "Progress",
    "filename_project",
    "hash_stored",
    "hash_stream",
    "index_file",
    "make_record",
    "metadata_state_name",
]

CACHE_NAME = "catalogue.json"
YANKED_NAME = "yanked.json"
CACHE_FORMAT = 2
# Field names, read with getattr: dataclasses.asdict deep-copies and is 4x slower at 20k.
_RECORD_FIELDS = tuple(f.name for f in fields(FileRecord))
INDEX_BATCH = 500  # records per `index` log entry
logger = logging.getLogger("releasekit.server")
# Files indexed between two installs of the maps (each install copies them once).
GROUP_FILES = 64


def _by_filename(record: FileRecord) -> str:
    return record.filename


class Catalogue:
    """The records of every visible file, grouped by normalized project name.

    A file the cache does not cover is *pending*: known by name (hence by project) but not yet
    hashed or read, so no page lists it. `index_pending` turns pending files into records, one
    project at a time; a request and the background indexer never index the same project twice.
    Readers take `projects`, `files`, `pending` and `pending_projects` (replaced, never mutated)
    without locking; writers hold `_lock`.
    """

    def __init__(self, storage: Storage, *, debounce_saves: bool = False) -> None:
        self.storage = storage
        self.debounce_saves = debounce_saves  # the server flushes from its poll thread
        self.projects: dict[str, tuple[FileRecord, ...]] = {}
        self.files: dict[str, FileRecord] = {}
        self.pending: dict[str, PendingFile] = {}
        self.pending_projects: dict[str, tuple[str, ...]] = {}  # project -> pending filenames
        self.skipped: dict[str, str] = {}  # filename -> why it is not listed (retried on change)
        self._skipped_stat: dict[str, StoredFile] = {}
        self._yanked: dict[str, str] = {}
        self.statuses: dict[str, ProjectStatus] = {}  # PEP 792; absent means active
        self._lock = threading.RLock()
        self._project_locks: dict[str, threading.Lock] = {}
        self._project_locks_guard = threading.Lock()  # not _lock: a rescan may hold that
        self._save_lock = threading.Lock()
        self._dirty = False
        self._processed = 0  # pending files indexed or skipped so far
        self.stamp: tuple[int, ...] = ()
        self.changes = storage.changes()
        self.applied = -1  # the last change-log entry folded in
        self.writes_cache = True  # of several server processes, only the leader writes it
        self.on_indexed: Callable[[int], None] | None = None  # files read and hashed here
        self._log_version: object = None
        self._holes: set[int] = set()  # numbers found missing: applied if they turn up late

    def load(
        self,
        *,
        use_cache: bool = True,
        index: bool = True,
        progress: Callable[[Progress], None] | None = None,
    ) -> set[str]:
        """(Re)build from the storage, reusing cached records; returns projects unlike the cache.

        With `index=False` files the cache does not cover stay pending (a listing and filename
        parsing only, so a server starts at once); otherwise they are indexed here.
        """
        cached, applied = self._read_cache() if use_cache else ({}, -1)
        with self._lock:
            tail = self.changes.tail()
            # The log ends before the cache's number (lost or cleared): follow from its end.
            self.applied = min(applied, tail) if use_cache else tail
            self.files, self.projects = cached, {}
            self.pending, self.pending_projects = {}, {}
            changed = self.refresh(force=True)
            self._install(self.files, {r.project for r in self.files.values()})
            changed |= self.follow(full=True)
        if index:
            changed |= self.index_pending(progress=progress)
        return changed

    def refresh(self, *, force: bool = False) -> set[str]:
        """Pick up files added, replaced or removed behind our back; returns changed projects.

        New and changed files become pending (see `index_pending`); removed ones are dropped.
        """
        with self._lock:
            stamp = self.storage.stamp()
            if not force and stamp == self.stamp and not self._skipped_moved():
                return set()
            self.stamp = stamp
            self._yanked = self._read_yanked()
            statuses = read_statuses(self.storage)
            moved = {
                p
                for p in set(statuses) | set(self.statuses)
                if statuses.get(p) != self.statuses.get(p)
            }
            self.statuses = statuses
            current = {f.filename: f for f in self.storage.scan()}
            files: dict[str, FileRecord] = {}
            pending: dict[str, PendingFile] = {}
            changed: set[str] = set(moved)
            for name, stored in current.items():
                old = self.files.get(name)
                if old is not None and (old.size, old.mtime_ns) == (stored.size, stored.mtime_ns):
                    files[name] = old
                    continue
                if name in self.skipped and self._skipped_stat.get(name) == stored:
                    continue
                waiting = self.pending.get(name)
                if waiting is not None and waiting.stored == stored:
                    pending[name] = waiting
                    continue
                try:
                    project = filename_project(name)
                except ArchiveError as exc:
                    self._skip(name, stored, str(exc))
                    continue
                pending[name] = PendingFile(stored, project)
                changed.add(project)
            for name in set(self.skipped) - set(current):
                del self.skipped[name], self._skipped_stat[name]
            for name, waiting in self.pending.items():
                if name not in pending:
                    changed.add(waiting.project)
            for name, record in self.files.items():
                if name not in files:
                    changed.add(record.project)
                    if name not in current:
                        self.storage.delete_state(metadata_state_name(name))
            for name, record in files.items():
                yanked = self._yanked.get(name)
                if record.yanked != yanked:
                    files[name] = replace(record, yanked=yanked)
                    changed.add(record.project)
            self._install(files, changed, pending)
            return changed

    def log_moved(self) -> bool:
        """Whether another process logged a change we have not applied (one stat locally)."""
        if self.changes.moved(self.applied):
            return True
        return any(self.changes.objects.has_cheaply(n) for n in self._holes)

    def follow(self, *, full: bool = False) -> set[str]:
        """Apply change-log entries written since the last call; returns the changed projects.

        `full` lists the whole log (to find entries past a gap) if it moved since the last look;
        a gap or an entry we cannot read is logged and skipped, and the store rescanned.
        """
        with self._lock:
            version = self.changes.objects.version() if full else None
            listing = full and (version is None or version != self._log_version)
            entries, gaps = self.changes.read_after(self.applied, full=listing)
            if listing:
                self._log_version = version
            # A writer that had not seen an entry past a gap fills the gap later: apply it then.
            late = [Entry(n, parse_change(body)) for n in sorted(self._holes)
                    if (body := self.changes.objects.read(n)) is not None]  # fmt: skip
            self._holes = (self._holes - {e.number for e in late}) | set(gaps)
            entries = late + entries
            if not entries:
                return set()
            work = Work(dict(self.files), dict(self.pending), dict(self._yanked),
                        dict(self.statuses))  # fmt: skip
            for entry in entries:
                try:
                    if entry.change is None:
                        raise BadChange("not a JSON object with an op")
                    apply_change(entry.change, work, self.storage.stat)
                except BadChange as exc:
                    logger.warning("change log entry %d skipped: %s", entry.number, exc)
                self.applied = max(self.applied, entry.number)
            self._processed += work.indexed
            self._yanked, self.statuses = work.yanked, work.statuses
            self._install(work.files, work.changed, work.pending)
            self._dirty = True
            if gaps:
                logger.warning("change log entries %s are missing: rescanning the store", gaps[:10])
            if gaps or work.foreign:
                return work.changed | self.refresh(force=True)
            return work.changed

    def index_pending(
        self,
        projects: Iterable[str] | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        before_group: Callable[[], None] | None = None,
    ) -> set[str]:
        """Index the pending files of `projects` (default: all); returns the projects changed.

        Projects are indexed in groups of about GROUP_FILES files, each group under its
        projects' locks: a second caller waits for the first one's work instead of repeating
        it. A group is installed at once (one copy of the maps per group, not per project, so
        20k files stay linear). `before_group` runs before each group (the server lets waiting
        requests go first there); `progress` is called after each.
        """
        names = sorted(self.pending_projects) if projects is None else list(projects)
        changed: set[str] = set()
        for group in self._groups(names):
            if before_group is not None:
                before_group()
            with contextlib.ExitStack() as held:
                for project in sorted(group):  # one order everywhere: no deadlock
                    held.enter_context(self._project_lock(project))
                with self._lock:
                    todo = [
                        self.pending[n] for p in group for n in self.pending_projects.get(p, ())
                    ]
                if not todo:
                    continue
                # Archives are read outside `_lock`: uploads and other projects go on meanwhile.
                done = [self._index_one(entry) for entry in todo]
                with self._lock:
                    self._install_indexed(todo, done)
            self._publish_index(done)
            changed.update(entry.project for entry in todo)
            if progress is not None:
                progress(self.progress())
        return changed

    def _publish_index(self, done: list[tuple[StoredFile, FileRecord | str]]) -> None:
        """Log what was just indexed, so no other process reads these files again."""
        if self.on_indexed is not None:
            self.on_indexed(len(done))
        made = [r for _, r in done if isinstance(r, FileRecord)]
        for start in range(0, len(made), INDEX_BATCH):
            rows = [
                {"filename": r.filename, "size": r.size, "mtime_ns": r.mtime_ns, **note_of(r)}
                for r in made[start : start + INDEX_BATCH]
            ]
            try:
                self.changes.append({"op": "index", "records": rows}, after=self.applied)
            except OSError:
                # Only a saving for the others: they index these files themselves.
                logger.warning("could not log %d indexed files", len(rows), exc_info=True)

    def _groups(self, names: list[str]) -> Iterator[list[str]]:
        """`names` cut into runs of about GROUP_FILES pending files (whole projects)."""
        group: list[str] = []
        count = 0
        for name in dict.fromkeys(names):
            group.append(name)
            count += len(self.pending_projects.get(name, ()))
            if count >= GROUP_FILES:
                yield group
                group, count = [], 0
        if group:
            yield group

    def progress(self) -> Progress:
        """Pending files processed so far, out of those plus the ones still pending."""
        done = self._processed
        return Progress(done, done + len(self.pending))

    def project_names(self) -> list[str]:
        """Every project with a listed or a pending file, sorted (the root page)."""
        with self._lock:
            return sorted(self.projects.keys() | self.pending_projects.keys())

    def _project_lock(self, project: str) -> threading.Lock:
        with self._project_locks_guard:
            return self._project_locks.setdefault(project, threading.Lock())

    def _index_one(self, entry: PendingFile) -> tuple[StoredFile, FileRecord | str]:
        """Index one pending file as it is now: its record, or why it cannot be listed."""
        name = entry.stored.filename
        stored = self.storage.stat(name) or entry.stored
        try:
            return stored, index_file(self.storage, stored)
        except (IndexServerError, OSError) as exc:
            # Often a file still being copied in: retried when its size or mtime moves.
            return stored, str(exc)

    def _install_indexed(
        self, todo: list[PendingFile], done: list[tuple[StoredFile, FileRecord | str]]
    ) -> None:
        """Move indexed files from `pending` to the records (caller holds _lock).

        Only the projects of `todo` are regrouped, so indexing stays linear in the files.
        """
        files, pending = dict(self.files), dict(self.pending)
        touched = {entry.project for entry in todo}
        records = {p: {r.filename: r for r in self.projects.get(p, ())} for p in touched}
        for entry, (stored, outcome) in zip(todo, done, strict=True):
            name = entry.stored.filename
            if pending.get(name) is not entry:
                continue  # replaced or removed meanwhile: the rescan's view wins
            del pending[name]
            self._processed += 1
            if isinstance(outcome, str):
                self._skip(name, stored, outcome)
                continue
            self.skipped.pop(name, None)
            self._skipped_stat.pop(name, None)
            record = replace(outcome, yanked=self._yanked.get(name))
            files[name] = records[entry.project][name] = record
        projects = dict(self.projects)
        pending_projects = dict(self.pending_projects)
        for project in touched:
            if records[project]:
                projects[project] = tuple(sorted(records[project].values(), key=_by_filename))
            left = tuple(n for n in pending_projects.pop(project, ()) if n in pending)
            if left:
                pending_projects[project] = left
        # Records before the pending maps: a lock-free reader never finds a file in neither.
        self.files = files
        self.projects = projects
        self.pending = pending
        self.pending_projects = pending_projects

    def _skip(self, name: str, stored: StoredFile, reason: str) -> None:
        self.skipped[name] = reason
        self._skipped_stat[name] = stored

    def _skipped_moved(self) -> bool:
        """Whether a file we could not read (maybe still being copied) has changed since."""
        return any(self.storage.stat(n) != s for n, s in self._skipped_stat.items())

    def add(self, record: FileRecord) -> None:
        """Record a file this process just stored (no rescan needed)."""
        with self._lock:
            files, pending = dict(self.files), dict(self.pending)
            files[record.filename] = replace(record, yanked=self._yanked.get(record.filename))
            pending.pop(record.filename, None)
            self._install(files, {record.project}, pending)

    def remove(self, filenames: Iterable[str]) -> set[str]:
        """Forget files this process just deleted; returns the projects that changed."""
        with self._lock:
            files, pending = dict(self.files), dict(self.pending)
            changed = set()
            for name in filenames:
                if name in files:
                    changed.add(files.pop(name).project)
                if name in pending:
                    changed.add(pending.pop(name).project)
            self._install(files, changed, pending)
            return changed

    def set_yanked(self, filenames: Iterable[str], reason: str | None) -> set[str]:
        """Yank (reason is a string, maybe empty) or unyank (None) files; persisted, then logged.

        The snapshot is written before the entry: a follower that re-reads it never goes back.
        """
        filenames = list(filenames)
        with self.storage.lock(YANKED_NAME), self._lock:  # storage lock first, as uploads
            self._yanked = self._read_yanked()
            files = dict(self.files)
            changed = set()
            for name in filenames:
                if reason is None:
                    self._yanked.pop(name, None)
                else:
                    self._yanked[name] = reason
                if name in files:
                    files[name] = replace(files[name], yanked=reason)
                    changed.add(files[name].project)
            self.storage.write_state(YANKED_NAME, json.dumps(self._yanked, indent=1).encode())
            self._install(files, changed)
            change = {"op": "yank", "filenames": filenames, "reason": reason}
            self.changes.append(change, after=self.applied)
            return changed

    def set_status(self, project: str, status: ProjectStatus) -> None:
        """Set a project's PEP 792 status (active clears it): the snapshot, then the log entry."""
        with self.storage.lock(STATUS_NAME), self._lock:
            statuses = read_statuses(self.storage)
            statuses[project] = status
            write_statuses(self.storage, statuses)
            self.statuses = {k: v for k, v in statuses.items() if v.status != "active"}
            change = {"op": "status", "project": project, "status": status.status,
                      "reason": status.reason}  # fmt: skip
            self.changes.append(change, after=self.applied)

    def save(self) -> None:
        """Persist the cache: now, or at the next `flush` when saves are debounced (the server).

        The cache only saves re-hashing at the next start, so losing the last second of it
        in a crash costs a little indexing, never correctness.
        """
        self._dirty = True
        if not self.debounce_saves:
            self.flush()

    def flush(self) -> bool:
        """Write the cache if it changed since the last write; returns whether it wrote."""
        with self._save_lock:
            with self._lock:
                if not self._dirty or not self.writes_cache:
                    return False
                self._dirty = False
                records, applied = list(self.files.values()), self.applied
            # Rows as lists (not dicts): at 20k files the dicts alone were a 13 MiB peak that
            # stayed in the worker's RSS after every save.
            rows = [[getattr(r, name) for name in _RECORD_FIELDS] for r in records]
            data = {"format": CACHE_FORMAT, "applied": applied, "fields": _RECORD_FIELDS}
            data["files"] = rows
            self.storage.write_state(CACHE_NAME, json.dumps(data, separators=(",", ":")).encode())
            return True

    def _install(
        self,
        files: dict[str, FileRecord],
        changed: set[str],
        pending: dict[str, PendingFile] | None = None,
    ) -> None:
        projects = dict(self.projects)
        grouped: dict[str, list[FileRecord]] = {p: [] for p in changed}
        for record in files.values():
            if record.project in grouped:
                grouped[record.project].append(record)
        for project, records in grouped.items():
            if records:
                projects[project] = tuple(sorted(records, key=lambda r: r.filename))
            else:
                projects.pop(project, None)
        pending_projects = self.pending_projects
        if pending is not None:
            pending_projects = {p: n for p, n in self.pending_projects.items() if p not in changed}
            waiting: dict[str, list[str]] = {}
            for name, entry in pending.items():
                if entry.project in changed:
                    waiting.setdefault(entry.project, []).append(name)
            pending_projects.update((p, tuple(sorted(n))) for p, n in waiting.items())
        # Records before the pending maps: a lock-free reader never finds a file in neither.
        self.files = files
        self.projects = projects
        if pending is not None:
            self.pending = pending
        self.pending_projects = pending_projects

    def _read_cache(self) -> tuple[dict[str, FileRecord], int]:
        """The cached records and the last log entry they include (-1: follow the whole log)."""
        raw = self.storage.read_state(CACHE_NAME)
        if raw is None:
            return {}, -1
        try:
            data = json.loads(raw)
            if data.get("format") == 1:  # rows as dicts, written before format 2
                rows = [FileRecord(**f) for f in data["files"]]
            elif data.get("format") == CACHE_FORMAT and data["fields"] == list(_RECORD_FIELDS):
                rows = [FileRecord(*f) for f in data["files"]]
            else:
                return {}, -1
            applied = data.get("applied", -1)
            files = {r.filename: r.compact() for r in rows}
            return files, applied if type(applied) is int else -1
        except (ValueError, TypeError, KeyError, AttributeError):
            return {}, -1  # a damaged cache is rebuilt from the files, never trusted

    def _read_yanked(self) -> dict[str, str]:
        raw = self.storage.read_state(YANKED_NAME)
        if raw is None:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise IndexServerError(
                f"{YANKED_NAME} in the state directory is not valid JSON",
                hint="fix it by hand or remove it (that unyanks every file)",
            ) from None
        return {str(k): str(v) for k, v in data.items()}
