"""Copy an index's files between stores (a directory and a bucket, either way), verifying hashes.

Resumable by construction: a file already at the destination with the same SHA-256 is skipped,
so a run stopped half-way (or killed) is simply run again. Each copy streams through the
`Storage` interface: the source is hashed while it is read, the destination is read back and
hashed after its conditional create, and the two must agree. A destination file with other bytes
is a conflict: never overwritten, reported. The yank state is copied too; catalogue, sidecars
and pages are caches the destination rebuilds (`reindex` or its first start).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from releasekit.errors import IndexServerError
from releasekit.server.catalogue import YANKED_NAME
from releasekit.server.storage import Storage, StoredFile


@dataclass(frozen=True)
class MigrateStep:
    """Progress after one file: how many are done of how many, and what happened to it."""

    done: int
    total: int
    filename: str
    action: str  # "copied" or "present"


@dataclass(frozen=True)
class MigrateReport:
    """The outcome: files copied, files already there, bytes copied, conflicting filenames."""

    copied: int = 0
    present: int = 0
    bytes_copied: int = 0
    conflicts: tuple[str, ...] = field(default_factory=tuple)


def _digest(storage: Storage, filename: str) -> str:
    digest = hashlib.sha256()
    for chunk in storage.read_range(filename):
        digest.update(chunk)
    return digest.hexdigest()


def _copy(source: Storage, target: Storage, record: StoredFile) -> bool:
    """Stream one file; True if this call stored it, False if the name was taken meanwhile."""
    digest = hashlib.sha256()
    with target.new_upload() as upload:
        for chunk in source.read_range(record.filename):
            digest.update(chunk)
            upload.write(chunk)
        stored = upload.create(record.filename, mtime_ns=record.mtime_ns)
    if stored is None:
        return False
    if _digest(target, record.filename) != digest.hexdigest():
        target.delete(record.filename)  # ours, just made: never leave unverified bytes
        raise IndexServerError(
            f"{record.filename}: the copy in {target.describe()} does not hash like the source",
            hint="check the destination store's health and run the migration again",
        )
    return True


def migrate(
    source: Storage, target: Storage, progress: Callable[[MigrateStep], None] | None = None
) -> MigrateReport:
    """Copy every file of `source` missing from `target`; see the module docstring."""
    if not source.exists():
        raise IndexServerError(
            f"the source {source.describe()} does not exist", hint="check --from"
        )
    target.prepare()
    files = sorted(source.scan(), key=lambda f: f.filename)
    copied = present = size = 0
    conflicts: list[str] = []
    for done, record in enumerate(files, 1):
        action = "present"
        if target.stat(record.filename) is None and _copy(source, target, record):
            copied, size, action = copied + 1, size + record.size, "copied"
        elif _digest(target, record.filename) == _digest(source, record.filename):
            present += 1
        else:
            conflicts.append(record.filename)
            action = "conflict"
        if progress:
            progress(MigrateStep(done, len(files), record.filename, action))
    yanks, theirs = source.read_state(YANKED_NAME), target.read_state(YANKED_NAME)
    if yanks is not None and theirs is None:
        target.write_state(YANKED_NAME, yanks)
    elif yanks is not None and theirs != yanks:
        conflicts.append(YANKED_NAME)  # a destination in use keeps its own yanks: say so
    return MigrateReport(copied, present, size, tuple(conflicts))
