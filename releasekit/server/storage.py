"""Where distribution files live. The packages directory is the truth; the rest is a cache.

`Storage` is the small interface the routes and the catalogue use, so an S3-compatible backend can
be added later without touching them. `LocalStorage` keeps files flat in one directory and writes
them atomically: a dot-named temp file in the same directory, fsync, then link/rename.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from releasekit.atomic import SERVED, write_atomic
from releasekit.errors import IndexServerError

TEMP_PREFIX = ".releasekit-upload-"
# Temp files older than this belong to a dead upload (a live one writes continuously).
STALE_TEMP_SECONDS = 3600


class FileExistsConflict(IndexServerError):
    """A file with that name is already stored and overwriting is not allowed."""


@dataclass(frozen=True)
class StoredFile:
    """One distribution file as the storage sees it (no archive content)."""

    filename: str
    size: int
    mtime_ns: int


class Storage(ABC):
    """The operations the index needs from a file store."""

    @abstractmethod
    def scan(self) -> list[StoredFile]:
        """Every visible distribution file (dot-files and sub-directories are ignored)."""

    @abstractmethod
    def stamp(self) -> tuple[int, ...]:
        """A cheap value that changes whenever the listing or the state files may have changed."""

    @abstractmethod
    def stat(self, filename: str) -> StoredFile | None:
        """The file's size and mtime, or None when it is not stored."""

    @abstractmethod
    def path(self, filename: str) -> Path:
        """A local path to read the file from (served with sendfile, archives opened from it)."""

    @abstractmethod
    def new_upload(self) -> tuple[BinaryIO, Path]:
        """Open a private temp file for an incoming upload; it is invisible until `commit`."""

    @abstractmethod
    def commit(self, temp: Path, filename: str, *, overwrite: bool) -> StoredFile:
        """Publish a fully written temp file under `filename`, atomically."""

    @abstractmethod
    def discard(self, temp: Path) -> None:
        """Drop a temp file after a refused or failed upload."""

    @abstractmethod
    def delete(self, filename: str) -> bool:
        """Remove a stored file; False when there was nothing to remove."""

    @abstractmethod
    def read_state(self, name: str) -> bytes | None:
        """Read a file of the rebuildable state (catalogue, sidecars), None when absent."""

    @abstractmethod
    def write_state(self, name: str, data: bytes, *, durable: bool = True) -> None:
        """Atomically write a state file (relative name under the state directory).

        `durable=False` is for rebuildable caches (metadata sidecars, pages): no fsync of its
        own, but everything written so is flushed before the next durable write, so the
        catalogue never names a sidecar that a crash could have left empty.
        """

    @abstractmethod
    def delete_state(self, name: str) -> None:
        """Remove a state file if it exists."""

    @abstractmethod
    def writable(self) -> bool:
        """Whether an upload could be stored right now (readiness)."""


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(target: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write a state file atomically, world-readable: a web server in front may serve it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, data, mode=SERVED, durable=fsync)


class LocalStorage(Storage):
    """A flat directory of wheels and sdists, with the state in `<root>/.releasekit/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_dir = root / ".releasekit"
        self._unsynced = False

    def prepare(self) -> None:
        """Create the directories and remove temp files left by uploads that died."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - STALE_TEMP_SECONDS
        for entry in os.scandir(self.root):
            if entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime < cutoff:
                with contextlib.suppress(OSError):
                    Path(entry.path).unlink()

    def scan(self) -> list[StoredFile]:
        found = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
                found.append(StoredFile(entry.name, st.st_size, st.st_mtime_ns))
        return found

    def stamp(self) -> tuple[int, ...]:
        stamps = []
        for path in (self.root, self.state_dir / "yanked.json"):
            try:
                stamps.append(path.stat().st_mtime_ns)
            except FileNotFoundError:
                stamps.append(0)
        return tuple(stamps)

    def stat(self, filename: str) -> StoredFile | None:
        try:
            st = (self.root / filename).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return StoredFile(filename, st.st_size, st.st_mtime_ns)

    def path(self, filename: str) -> Path:
        return self.root / filename

    def new_upload(self) -> tuple[BinaryIO, Path]:
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".part", dir=self.root)
        return os.fdopen(fd, "w+b"), Path(temp)

    def commit(self, temp: Path, filename: str, *, overwrite: bool) -> StoredFile:
        target = self.root / filename
        with temp.open("rb") as handle:
            os.fsync(handle.fileno())
        if overwrite:
            temp.replace(target)
        else:
            # link() creates the name only if it is free: two racing uploads cannot both win.
            try:
                os.link(temp, target)
            except FileExistsError:
                raise FileExistsConflict(f"{filename} is already stored") from None
            temp.unlink()
        _fsync_dir(self.root)
        stored = self.stat(filename)
        assert stored is not None
        return stored

    def discard(self, temp: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()

    def delete(self, filename: str) -> bool:
        try:
            (self.root / filename).unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(self.root)
        return True

    def read_state(self, name: str) -> bytes | None:
        try:
            return (self.state_dir / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write_state(self, name: str, data: bytes, *, durable: bool = True) -> None:
        if not durable:
            atomic_write(self.state_dir / name, data, fsync=False)
            self._unsynced = True
            return
        if self._unsynced:
            os.sync()  # one flush for every cache file written since: cheaper than an fsync each
            self._unsynced = False
        atomic_write(self.state_dir / name, data)

    def delete_state(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            (self.state_dir / name).unlink()

    def writable(self) -> bool:
        try:
            handle, temp = self.new_upload()
            handle.close()
            temp.unlink()
        except OSError:
            return False
        return True
