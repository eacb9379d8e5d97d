"""Per-project file records, kept as a rebuildable cache of the packages directory.

The cache (`.releasekit/catalogue.json`) lets a restart skip re-hashing: a file whose size and
mtime are unchanged keeps its record. Yank state is not derivable from the files, so it lives in
its own file (`.releasekit/yanked.json`) that `reindex` keeps.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from releasekit.errors import IndexServerError
from releasekit.server.metadata import (
    CoreMetadata,
    DistFilename,
    parse_filename,
    read_metadata,
    serves_pep658,
)
from releasekit.server.storage import Storage, StoredFile

CACHE_NAME = "catalogue.json"
YANKED_NAME = "yanked.json"
CACHE_FORMAT = 1


@dataclass(frozen=True)
class FileRecord:
    """Everything the index pages say about one file."""

    filename: str
    project: str
    name: str
    version: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str
    blake2b: str
    requires_python: str | None
    metadata_sha256: str | None
    yanked: str | None = None  # None: not yanked; "" yanked without a reason

    @property
    def upload_time(self) -> float:
        """Seconds since the epoch: the file's mtime, set when it was stored."""
        return self.mtime_ns / 1e9


def metadata_state_name(filename: str) -> str:
    """The state-relative name of a file's PEP 658 sidecar."""
    return f"metadata/{filename}.metadata"


def hash_file(path: Path) -> tuple[str, str]:
    """sha256 and blake2b-256 hex digests of a file, read once."""
    sha, blake = hashlib.sha256(), hashlib.blake2b(digest_size=32)
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            sha.update(chunk)
            blake.update(chunk)
    return sha.hexdigest(), blake.hexdigest()


def index_file(storage: Storage, stored: StoredFile) -> FileRecord:
    """Read one stored file: parse its name and metadata, hash it, write its PEP 658 sidecar."""
    dist = parse_filename(stored.filename)
    path = storage.path(stored.filename)
    meta = read_metadata(path, dist)
    sha256, blake2b = hash_file(path)
    return make_record(storage, stored, dist, meta, sha256, blake2b)


def make_record(
    storage: Storage,
    stored: StoredFile,
    dist: DistFilename,
    meta: CoreMetadata,
    sha256: str,
    blake2b: str,
) -> FileRecord:
    """The record of a stored file whose metadata and digests are known; writes the sidecar."""
    metadata_sha256 = None
    if serves_pep658(dist, meta):
        storage.write_state(metadata_state_name(stored.filename), meta.raw)
        metadata_sha256 = hashlib.sha256(meta.raw).hexdigest()
    return FileRecord(
        filename=stored.filename,
        project=dist.project,
        name=meta.name,
        version=dist.version,
        kind=dist.kind,
        size=stored.size,
        mtime_ns=stored.mtime_ns,
        sha256=sha256,
        blake2b=blake2b,
        requires_python=meta.requires_python,
        metadata_sha256=metadata_sha256,
    )


class Catalogue:
    """The records of every visible file, grouped by normalized project name.

    Readers take `projects` (replaced, never mutated) without locking; writers hold `_lock`.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.projects: dict[str, tuple[FileRecord, ...]] = {}
        self.files: dict[str, FileRecord] = {}
        self.skipped: dict[str, str] = {}  # filename -> why it is not listed (retried on change)
        self._skipped_stat: dict[str, StoredFile] = {}
        self._yanked: dict[str, str] = {}
        self._lock = threading.RLock()
        self.stamp: tuple[int, ...] = ()

    def load(self, *, use_cache: bool = True) -> set[str]:
        """(Re)build from the storage, reusing cached records; returns projects unlike the cache."""
        cached: dict[str, FileRecord] = {}
        if use_cache:
            cached = self._read_cache()
        with self._lock:
            self.files, self.projects = cached, {}
            changed = self.refresh(force=True)
            self._install(self.files, {r.project for r in self.files.values()})
            return changed

    def refresh(self, *, force: bool = False) -> set[str]:
        """Pick up files added, replaced or removed behind our back; returns changed projects."""
        with self._lock:
            stamp = self.storage.stamp()
            if not force and stamp == self.stamp and not self._skipped_moved():
                return set()
            self.stamp = stamp
            self._yanked = self._read_yanked()
            current = {f.filename: f for f in self.storage.scan()}
            files: dict[str, FileRecord] = {}
            changed: set[str] = set()
            for name, stored in current.items():
                old = self.files.get(name)
                if old is not None and (old.size, old.mtime_ns) == (stored.size, stored.mtime_ns):
                    files[name] = old
                    continue
                if name in self.skipped and self._skipped_stat.get(name) == stored:
                    continue
                try:
                    record = index_file(self.storage, stored)
                except (IndexServerError, OSError) as exc:
                    # Often a file still being copied in: retried when its size or mtime moves.
                    self.skipped[name] = str(exc)
                    self._skipped_stat[name] = stored
                    continue
                self.skipped.pop(name, None)
                self._skipped_stat.pop(name, None)
                files[name] = record
                changed.add(record.project)
            for name in set(self.skipped) - set(current):
                del self.skipped[name], self._skipped_stat[name]
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
            self._install(files, changed)
            return changed

    def _skipped_moved(self) -> bool:
        """Whether a file we could not read (maybe still being copied) has changed since."""
        return any(self.storage.stat(n) != s for n, s in self._skipped_stat.items())

    def add(self, record: FileRecord) -> None:
        """Record a file this process just stored (no rescan needed)."""
        with self._lock:
            files = dict(self.files)
            files[record.filename] = replace(record, yanked=self._yanked.get(record.filename))
            self._install(files, {record.project})

    def remove(self, filenames: Iterable[str]) -> set[str]:
        """Forget files this process just deleted; returns the projects that changed."""
        with self._lock:
            files = dict(self.files)
            changed = {files.pop(n).project for n in filenames if n in files}
            self._install(files, changed)
            return changed

    def set_yanked(self, filenames: Iterable[str], reason: str | None) -> set[str]:
        """Yank (reason is a string, maybe empty) or unyank (None) files; persisted."""
        with self._lock:
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
            return changed

    def save(self) -> None:
        """Write the cache; it only saves re-hashing at the next start."""
        with self._lock:
            data = {
                "format": CACHE_FORMAT,
                "files": [asdict(r) for r in self.files.values()],
            }
        self.storage.write_state(CACHE_NAME, json.dumps(data, separators=(",", ":")).encode())

    def _install(self, files: dict[str, FileRecord], changed: set[str]) -> None:
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
        self.files = files
        self.projects = projects

    def _read_cache(self) -> dict[str, FileRecord]:
        raw = self.storage.read_state(CACHE_NAME)
        if raw is None:
            return {}
        try:
            data = json.loads(raw)
            if data.get("format") != CACHE_FORMAT:
                return {}
            return {f["filename"]: FileRecord(**f) for f in data["files"]}
        except (ValueError, TypeError, KeyError):
            return {}  # a damaged cache is rebuilt from the files, never trusted

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
