"""The upload handle of `LocalStorage` (localstore.py): a locked temp file in the packages directory.

A `.part` file is owned by the upload writing it through an flock on it, taken before the file
gets its `.part` name: an unlocked `.part` belongs to a dead process (`unowned_removed`). The
conditional create is `link()`; the record comes from `fstat` of the written inode; a store is
appended to the change log before `create` returns (or undone when it cannot be).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from releasekit.atomic import SERVED, fsync_directory
from releasekit.server.storage import StoredFile, Upload

if TYPE_CHECKING:
    from releasekit.server.localstore import LocalStorage

TEMP_PREFIX = ".releasekit-upload-"


class LocalUpload(Upload):
    """A locked `.part` temp file in the packages directory."""

    def __init__(self, storage: LocalStorage) -> None:
        self._storage = storage
        self._root = root = storage.root
        fd, new = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".new", dir=root)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the handle closes or the process dies
            self._temp = Path(new).with_suffix(".part")
            Path(new).rename(self._temp)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                Path(new).unlink()
            raise
        self._handle = os.fdopen(fd, "w+b")
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)

    def reader(self) -> BinaryIO:
        self._handle.flush()
        return self._temp.open("rb")

    def _sealed(self, mtime_ns: int | None) -> os.stat_result:
        self._handle.flush()
        fd = self._handle.fileno()
        os.fchmod(fd, SERVED)  # private while written, world-readable once stored
        if mtime_ns is not None:
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        os.fsync(fd)
        return os.fstat(fd)  # the record describes this inode, whatever lands at the name later

    def create(
        self,
        filename: str,
        *,
        mtime_ns: int | None = None,
        note: Mapping[str, object] | None = None,
    ) -> StoredFile | None:
        st = self._sealed(mtime_ns)
        self._storage.check_log()  # refuse before the commit point, not after it
        target = self._root / filename
        try:
            os.link(self._temp, target)  # only if the name is free: one winner
        except FileExistsError:
            return None
        fsync_directory(self._root)
        self.abort()
        stored = StoredFile(filename, st.st_size, st.st_mtime_ns)
        self._storage.logged("put", stored, note, undo=(target, st.st_ino))
        return stored

    def replace(self, filename: str, *, note: Mapping[str, object] | None = None) -> StoredFile:
        st = self._sealed(None)
        self._storage.check_log()
        self._temp.replace(self._root / filename)
        fsync_directory(self._root)
        self._done = True
        self.abort()
        stored = StoredFile(filename, st.st_size, st.st_mtime_ns)
        self._storage.logged("put", stored, note)
        return stored

    def abort(self) -> None:
        if not self._done:
            self._done = True
            with contextlib.suppress(FileNotFoundError):
                self._temp.unlink()
        # Closed last: that releases the lock the temp collector respects. A flush error of a
        # write that already failed (a full disk) must not replace the error being raised.
        with contextlib.suppress(OSError):
            self._handle.close()


def unowned_removed(path: str) -> bool:
    """Remove a `.part` file if no process holds its lock; True if it was removed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live upload is writing it
        Path(path).unlink()
        return True
    finally:
        os.close(fd)
