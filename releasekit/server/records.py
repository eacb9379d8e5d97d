"""What the catalogue knows about one file: its record once indexed, or that it is pending.

`index_file` is the expensive step (read the METADATA, hash the bytes); `filename_project` is
the cheap one a start does for every file. PEP 658 sidecars are written at first need.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sys
from dataclasses import dataclass, replace
from typing import BinaryIO

from releasekit.errors import IndexServerError
from releasekit.server.metadata import (
    SDIST_SUFFIXES,
    CoreMetadata,
    DistFilename,
    normalize,
    parse_filename,
    read_metadata,
    serves_pep658,
)
from releasekit.server.storage import Storage, StoredFile

logger = logging.getLogger("releasekit.server")
# Files up to this size are read whole once (hash and archive from memory); larger ones stream.
IN_MEMORY = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileRecord:
    """Everything the index pages say about one file.

    A server holds one per file (20k and more): slots, and the strings files share (project,
    name, version, kind, requires-python) are interned by `compact`, about 40% less memory.
    """

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

    def compact(self) -> FileRecord:
        """The same record with its shared strings interned (one copy per distinct value)."""
        python = self.requires_python
        return replace(
            self,
            project=sys.intern(self.project),
            name=sys.intern(self.name),
            version=sys.intern(self.version),
            kind=sys.intern(self.kind),
            requires_python=None if python is None else sys.intern(python),
        )

    @property
    def upload_time(self) -> float:
        """Seconds since the epoch: the file's mtime, set when it was stored."""
        return self.mtime_ns / 1e9


@dataclass(frozen=True, slots=True)
class PendingFile:
    """A stored file known by its name only: not hashed or read yet, so listed nowhere."""

    stored: StoredFile
    project: str


@dataclass(frozen=True)
class Progress:
    """Indexing progress: pending files indexed (or skipped) out of all seen pending so far."""

    done: int
    total: int


def filename_project(filename: str) -> str:
    """The normalized project a distribution filename names, cheaply (a start lists 20k).

    The name part is split off exactly as `parse_filename` (packaging) splits it, so an
    indexed file lands in the same project; versions and tags are checked at indexing.
    Raises ArchiveError for a name that is not a distribution filename.
    """
    name = ""
    if filename.endswith(".whl"):
        name = filename.split("-", 1)[0] if "-" in filename else ""
    else:
        for suffix in SDIST_SUFFIXES:
            if filename.endswith(suffix):
                name = filename.removesuffix(suffix).rpartition("-")[0]
    if not name:
        return parse_filename(filename).project  # raises with the full explanation
    return normalize(name)


def metadata_state_name(filename: str) -> str:
    """The state-relative name of a file's PEP 658 sidecar."""
    return f"metadata/{filename}.metadata"


def hash_stream(handle: BinaryIO) -> tuple[str, str]:
    """sha256 and blake2b-256 hex digests of a reader's bytes from its start, read once."""
    sha, blake = hashlib.sha256(), hashlib.blake2b(digest_size=32)
    handle.seek(0)
    while chunk := handle.read(1024 * 1024):
        sha.update(chunk)
        blake.update(chunk)
    return sha.hexdigest(), blake.hexdigest()


def hash_stored(storage: Storage, filename: str) -> tuple[str, str]:
    """The digests of a stored file (FileNotFoundError when it is gone)."""
    with storage.open(filename) as handle:
        return hash_stream(handle)


def index_file(storage: Storage, stored: StoredFile) -> FileRecord:
    """Read one stored file: parse its name and metadata, hash it.

    The PEP 658 sidecar is not written here but at its first request (`sidecar_bytes`): a
    fresh 20k-file directory would otherwise create 20k files before it is indexed, and each
    create costs more than reading and hashing a small wheel.
    """
    dist = parse_filename(stored.filename)
    # One reader for the metadata and the hash: both describe the same bytes, even if the
    # name is replaced meanwhile. A small file is read whole, once, and parsed from memory.
    with storage.open(stored.filename) as handle:
        if stored.size <= IN_MEMORY:
            data = handle.read()
            meta = read_metadata(io.BytesIO(data), dist)
            sha256, blake2b = hashlib.sha256(data).hexdigest(), _blake2b(data)
        else:
            meta = read_metadata(handle, dist)
            sha256, blake2b = hash_stream(handle)
    return make_record(storage, stored, dist, meta, sha256, blake2b, sidecar=False)


def _blake2b(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def sidecar_bytes(storage: Storage, record: FileRecord) -> bytes | None:
    """The PEP 658 metadata of an indexed file, exactly the bytes its record hashed; None when
    the file has none or changed since. Written to the state at first need, and checked on
    every read, so a stale or damaged sidecar is never served."""
    if record.metadata_sha256 is None:
        return None
    name = metadata_state_name(record.filename)
    data = storage.read_state(name)
    if data is not None and hashlib.sha256(data).hexdigest() == record.metadata_sha256:
        return data
    try:
        dist = parse_filename(record.filename)
        with storage.open(record.filename) as handle:
            data = read_metadata(handle, dist).raw
    except (IndexServerError, OSError):
        return None  # removed or replaced behind our back: the poller catches up
    if hashlib.sha256(data).hexdigest() != record.metadata_sha256:
        return None
    try:
        storage.write_state(name, data, durable=False)
    except OSError:
        logger.warning("no metadata sidecar for %s", record.filename, exc_info=True)
    return data


def make_record(
    storage: Storage,
    stored: StoredFile,
    dist: DistFilename,
    meta: CoreMetadata,
    sha256: str,
    blake2b: str,
    *,
    sidecar: bool = True,
) -> FileRecord:
    """The record of a stored file whose metadata and digests are known; writes the sidecar
    (an upload does: its metadata is in memory now) unless `sidecar` is False."""
    metadata_sha256 = None
    if serves_pep658(dist, meta):
        metadata_sha256 = hashlib.sha256(meta.raw).hexdigest()
        if sidecar:
            try:
                storage.write_state(metadata_state_name(stored.filename), meta.raw, durable=False)
            except OSError:
                # The file itself is stored: its sidecar is written at its first request.
                logger.warning("no metadata sidecar for %s", stored.filename, exc_info=True)
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
    ).compact()


def store_sidecar(
    storage: Storage, filename: str, dist: DistFilename, meta: CoreMetadata
) -> str | None:
    """Write a file's PEP 658 sidecar; its sha256, or None when it has none (or it failed)."""
    if not serves_pep658(dist, meta):
        return None
    try:
        storage.write_state(metadata_state_name(filename), meta.raw, durable=False)
    except OSError:
        # The file itself is stored: list it without a PEP 658 sidecar (reindex adds it).
        logger.warning("no metadata sidecar for %s", filename, exc_info=True)
        return None
    return hashlib.sha256(meta.raw).hexdigest()


def record_note(
    dist: DistFilename, meta: CoreMetadata, sha256: str, blake2b: str, metadata_sha256: str | None
) -> dict[str, object]:
    """The record fields a `put` change-log entry carries (following.py), known before the store."""
    return {
        "project": dist.project,
        "name": meta.name,
        "version": dist.version,
        "kind": dist.kind,
        "sha256": sha256,
        "blake2b": blake2b,
        "requires_python": meta.requires_python,
        "metadata_sha256": metadata_sha256,
    }
