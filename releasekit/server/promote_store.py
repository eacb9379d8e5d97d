"""Copying one file of a promotion into the target store, verified, with its provenance and
yank; and the values a promotion reports (see promote.py for the rules)."""

from __future__ import annotations

import errno
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from releasekit.errors import IndexServerError
from releasekit.server.attestations import INDEX_NAME as PROVENANCE_INDEX
from releasekit.server.catalogue import YANKED_NAME
from releasekit.server.metadata import CoreMetadata, DistFilename
from releasekit.server.records import FileRecord, hash_stream, make_record
from releasekit.server.storage import Storage, StorageUnavailable, StoredFile

FileAction = Literal["copied", "present"]


class PromoteRefused(IndexServerError):
    """A promotion refused or stopped; `status`/`code` for the HTTP problem, `in_target` the
    files of the release already in the target when it stopped half-way."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        hint: str | None = None,
        in_target: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code
        self.in_target = in_target


@dataclass(frozen=True)
class PromotedFile:
    """One file of the release in the target: copied by this call, or present already."""

    filename: str
    sha256: str
    size: int
    action: FileAction
    record: FileRecord | None = field(default=None, compare=False)  # when this call stored it


@dataclass(frozen=True)
class PromoteStep:
    """Progress after one file."""

    done: int
    total: int
    file: PromotedFile


@dataclass(frozen=True)
class Promotion:
    """The outcome: every file of the release, each in the target now."""

    project: str
    version: str
    source: str
    target: str
    files: tuple[PromotedFile, ...]

    def to_json(self) -> dict[str, Any]:
        """The answer of `POST /_/promote` (and `releasekit promote --json`)."""
        return {
            "project": self.project,
            "version": self.version,
            "from": self.source,
            "to": self.target,
            "files": [
                {"filename": f.filename, "sha256": f.sha256, "size": f.size, "action": f.action}
                for f in self.files
            ],
        }


@dataclass(frozen=True)
class Planned:
    """A source file, read and hashed, and whether the target holds it already."""

    stored: StoredFile
    dist: DistFilename
    meta: CoreMetadata
    sha256: str
    blake2b: str
    present: bool


def target_sha256(target: Storage, filename: str) -> str | None:
    try:
        with target.open(filename) as handle:
            return hash_stream(handle)[0]
    except FileNotFoundError:
        return None


def _conflict(filename: str, ours: str, theirs: str) -> PromoteRefused:
    return PromoteRefused(
        409,
        "file-exists",
        f"{filename} was stored in the target with other bytes meanwhile (target {theirs}, "
        f"source {ours})",
        hint="files are immutable: release a new version, or remove the target's copy first",
    )


def read_json(storage: Storage, name: str) -> dict[str, str]:
    try:
        data = json.loads(storage.read_state(name) or b"{}")
    except ValueError:
        raise PromoteRefused(
            500,
            "damaged-state",
            f"{name} of {storage.describe()} is not valid JSON",
            hint="fix it by hand, or run `releasekit server reindex`",
        ) from None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def store_file(
    source: Storage,
    target: Storage,
    entry: Planned,
    provenance: Mapping[str, bytes],
    yanks: Mapping[str, str],
) -> PromotedFile:
    """Copy one planned file (verified three ways); `present` when the same bytes are there."""
    filename, sha256 = entry.stored.filename, entry.sha256
    if entry.present:
        return PromotedFile(filename, sha256, entry.stored.size, "present")
    wrote: list[str] = []
    try:
        with target.new_upload() as upload:
            digest = hashlib.sha256()
            for chunk in source.read_range(filename):
                digest.update(chunk)
                upload.write(chunk)
            if digest.hexdigest() != sha256:
                raise PromoteRefused(
                    409,
                    "changed",
                    f"{filename} changed on the source index during the promotion",
                    hint="promote again once the source index is settled",
                )
            # Provenance and yank first, so the file never shows without them; each under its
            # own lock, never nested (a directory store's locks are striped: nesting could
            # block itself).
            if target.stat(filename) is None:
                if filename in provenance:
                    _add_provenance(target, filename, sha256, provenance[filename])
                    wrote.append(PROVENANCE_INDEX)
                if filename in yanks and _set_yank(target, filename, yanks[filename]):
                    wrote.append(YANKED_NAME)
            with target.lock(filename):
                stored = upload.create(filename, mtime_ns=entry.stored.mtime_ns)
        if stored is None:  # another promotion, an upload or a copy by hand was first
            theirs = target_sha256(target, filename)
            if theirs == sha256:
                return PromotedFile(filename, sha256, entry.stored.size, "present")
            raise _conflict(filename, sha256, theirs or "removed again")
        if target_sha256(target, filename) != sha256:
            target.delete(filename)  # ours, just made: never leave unverified bytes
            raise PromoteRefused(
                500,
                "copy-mismatch",
                f"{filename}: the copy in {target.describe()} does not hash like the source",
                hint="check the target store's health and promote again",
            )
    except BaseException:
        _undo(target, filename, sha256, wrote)
        raise
    record = make_record(target, stored, entry.dist, entry.meta, sha256, entry.blake2b)
    return PromotedFile(filename, sha256, stored.size, "copied", record)


def _undo(target: Storage, filename: str, sha256: str, wrote: list[str]) -> None:
    """Take back the provenance and yank written for a file this call did not store."""
    if PROVENANCE_INDEX in wrote:
        with target.lock(PROVENANCE_INDEX):
            index = read_json(target, PROVENANCE_INDEX)
            if index.get(filename) == sha256:  # still ours: the winner's would name its bytes
                del index[filename]
                target.write_state(PROVENANCE_INDEX, json.dumps(index).encode())
                target.delete_state(f"provenance/{filename}.json")
    if YANKED_NAME in wrote:
        with target.lock(YANKED_NAME):
            yanked = read_json(target, YANKED_NAME)
            yanked.pop(filename, None)
            target.write_state(YANKED_NAME, json.dumps(yanked, indent=1).encode())


def _add_provenance(target: Storage, filename: str, sha256: str, record: bytes) -> None:
    target.write_state(f"provenance/{filename}.json", record)
    with target.lock(PROVENANCE_INDEX):
        index = read_json(target, PROVENANCE_INDEX)
        index[filename] = sha256
        target.write_state(PROVENANCE_INDEX, json.dumps(index).encode())


def _set_yank(target: Storage, filename: str, reason: str) -> bool:
    """Yank `filename` in the target with the source's reason; False if it was already."""
    with target.lock(YANKED_NAME):
        yanked = read_json(target, YANKED_NAME)
        if filename in yanked:
            return False
        yanked[filename] = reason
        target.write_state(YANKED_NAME, json.dumps(yanked, indent=1).encode())
        return True


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def store_fault(exc: OSError, filename: str) -> PromoteRefused:
    """A store's OSError as the refusal the caller reports (with what is in the target)."""
    if isinstance(exc, StorageUnavailable):
        return PromoteRefused(
            503,
            "storage-unavailable",
            f"the target store cannot be reached: {filename} was not stored ({exc})",
            hint="retry once the store is back",
        )
    if exc.errno in _DISK_FULL:
        return PromoteRefused(
            507,
            "insufficient-storage",
            f"the target index is full: {filename} was not stored",
            hint="free space on the target, then promote again",
        )
    return PromoteRefused(
        500,
        "store-failed",
        f"storing {filename} in the target failed: {exc.strerror or exc}",
        hint="check the target store, then promote again",
    )
