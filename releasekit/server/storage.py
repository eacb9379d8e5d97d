"""The storage seam: the only way the server reads or writes package files, sidecars and state.

Nothing here names a filesystem path. A backend stores distribution files by filename (flat),
and small "state" blobs by a relative name (catalogue, sidecars, pages, yanks). Reads stream
(`open` for archive checks, `read_range` for HTTP bodies and Range requests); writes stream into
an `Upload` that becomes visible only when stored. `Upload.create` is the conditional create
("store only if absent") every backend must make atomic: of racing creates exactly one wins, the
others learn they lost and compare bytes themselves. `LocalStorage` (localstore.py) is the
directory backend; tests/server/storage_contract.py is what any backend must pass.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from releasekit.server.changes import ChangeLog

CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One distribution file as the storage sees it (no archive content)."""

    filename: str
    size: int
    mtime_ns: int


class Upload(ABC):
    """An incoming file: written in chunks, invisible until `create` or `replace`, else aborted."""

    @abstractmethod
    def write(self, chunk: bytes) -> None:
        """Append bytes (OSError with ENOSPC/EDQUOT when the store is full)."""

    @abstractmethod
    def reader(self) -> BinaryIO:
        """A seekable reader over everything written so far (archive checks read it)."""

    @abstractmethod
    def create(
        self,
        filename: str,
        *,
        mtime_ns: int | None = None,
        note: Mapping[str, object] | None = None,
    ) -> StoredFile | None:
        """Store the bytes under `filename` only if that name is free; None when it was taken.

        The returned record describes the bytes just stored, whatever happens to the name later.
        `mtime_ns` sets the upload time the index reports (bundle imports keep upstream's).
        A stored file is appended to the change log as `put`, carrying `note` (the catalogue's
        record of it, so other processes list it without reading it).
        """

    @abstractmethod
    def replace(self, filename: str, *, note: Mapping[str, object] | None = None) -> StoredFile:
        """Store the bytes under `filename`, replacing what is there (callers hold `lock`)."""

    @abstractmethod
    def abort(self) -> None:
        """Drop the bytes; harmless after a store or a second abort."""

    def __enter__(self) -> Upload:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class Storage(ABC):
    """The operations the index needs from a file store."""

    # -- distribution files --------------------------------------------------------------------
    @abstractmethod
    def scan(self) -> list[StoredFile]:
        """Every visible distribution file (temp files and state are never listed)."""

    @abstractmethod
    def stamp(self) -> tuple[int, ...]:
        """A cheap value that changes whenever the listing, the yank or the status state may have
        changed."""

    @abstractmethod
    def stat(self, filename: str) -> StoredFile | None:
        """The file's size and mtime, or None when it is not stored."""

    @abstractmethod
    def open(self, filename: str) -> BinaryIO:
        """A seekable reader of the stored bytes (FileNotFoundError when absent).

        An open reader keeps reading the bytes it opened, even if the name is replaced.
        """

    @abstractmethod
    def read_range(
        self, filename: str, start: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        """The bytes `[start, start + length)` in chunks (FileNotFoundError when absent)."""

    @abstractmethod
    def new_upload(self) -> Upload:
        """Begin an incoming file (OSError when the store cannot take one)."""

    @abstractmethod
    def delete(self, filename: str) -> bool:
        """Remove a stored file; False when there was nothing to remove."""

    @abstractmethod
    def lock(self, filename: str) -> contextlib.AbstractContextManager[None]:
        """Serialize check-then-store of one filename across threads and processes."""

    # -- state blobs ---------------------------------------------------------------------------
    @abstractmethod
    def read_state(self, name: str) -> bytes | None:
        """Read a state blob (catalogue, sidecars, pages), None when absent."""

    @abstractmethod
    def write_state(self, name: str, data: bytes, *, durable: bool = True) -> None:
        """Atomically write a state blob (readers see the old or the new bytes, never a part).

        `durable=False` is for rebuildable caches (sidecars, pages): no flush of its own, but
        everything so written is durable before the next durable write returns.
        """

    @abstractmethod
    def delete_state(self, name: str) -> None:
        """Remove a state blob if it exists."""

    @abstractmethod
    def clear_state(self, prefix: str) -> None:
        """Remove every state blob under `prefix/` (a reindex drops rendered caches)."""

    # -- the store itself ----------------------------------------------------------------------
    @abstractmethod
    def exists(self) -> bool:
        """Whether the store itself is there (the directory, the bucket)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the files live, for messages (`directory /srv/packages`)."""

    @abstractmethod
    def prepare(self) -> None:
        """Create what a fresh store needs and collect temp files left by dead uploads."""

    @abstractmethod
    def collect_temp(self) -> tuple[int, int]:
        """Remove temp files no live upload owns; returns (files, bytes) removed."""

    @abstractmethod
    def free_bytes(self) -> int | None:
        """Space left for uploads, None when the backend cannot tell."""

    def writable(self) -> bool:
        """Whether an upload could be started right now (readiness)."""
        try:
            with self.new_upload() as upload:
                upload.write(b"")
        except OSError:
            return False
        return True

    # -- sharing the store between processes ---------------------------------------------------
    @abstractmethod
    def changes(self) -> ChangeLog:
        """The store's change log (changes.py): stores and deletes append to it themselves."""

    def lead(self) -> bool:
        """Try to become the one process doing store-wide background work (indexing the
        backlog, writing the catalogue cache); True once this process holds that role."""
        return True

    # -- optional capability -------------------------------------------------------------------
    def local_path(self, filename: str) -> str | None:
        """A local file the HTTP edge may hand to sendfile or nginx; None when there is none.

        Only the file-sending edge (files.py) asks; everything else streams through `open`
        and `read_range`, so a remote backend simply keeps this default.
        """
        return None


class StorageUnavailable(OSError):
    """The store itself cannot be reached or refuses us (a bucket down): a 503, never a 500."""


class ChangeLogRefused(StorageUnavailable):
    """The change log cannot take an entry (not writable): nothing was stored; a 503 whose
    client message says so without naming server paths (the log line has the details)."""

    client_detail = (
        "the index cannot record changes (its change log is not writable): nothing was "
        "stored; tell the index's admin"
    )
