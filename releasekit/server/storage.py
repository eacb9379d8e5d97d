"""Where distribution files live. The packages directory is the truth; the rest is a cache.

`Storage` is the small interface the routes and the catalogue use, so an S3-compatible backend can
be added later without touching them. `LocalStorage` keeps files flat in one directory and writes
them atomically: a dot-named temp file in the same directory, fsync, then link/rename.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from releasekit.atomic import SERVED, write_atomic
from releasekit.errors import IndexServerError

TEMP_PREFIX = ".releasekit-upload-"
# A `.part` file is owned by the upload writing it through an flock on it, taken before the file
# gets its `.part` name: an unlocked `.part` belongs to a dead process. A `.new` file that never
# got renamed is from a process killed in between; one this old is certainly dead.
STALE_NEW_SECONDS = 60
LOCK_STRIPES = 256
# Directories the index creates are traversable by a web server running as another user (nginx's
# www-data); files it writes for serving are atomic.SERVED (0644), secrets atomic.SECRET.
DIR_MODE = 0o755


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

    def lock(self, filename: str) -> contextlib.AbstractContextManager[None]:
        """Serialize the commit of one filename across threads and processes."""
        return contextlib.nullcontext()

    def collect_temp(self) -> tuple[int, int]:
        """Remove temp files no live upload owns; returns (files, bytes) removed."""
        return 0, 0

    def free_bytes(self) -> int | None:
        """Space left for uploads, None when the backend cannot tell."""
        return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """Create `directory` and missing parents as 0755 whatever the umask (existing ones untouched)."""
    if directory.is_dir():
        return
    make_dirs(directory.parent)
    with contextlib.suppress(FileExistsError):
        directory.mkdir()
        directory.chmod(DIR_MODE)


def atomic_write(target: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write a state file atomically, world-readable: a web server in front may serve it."""
    make_dirs(target.parent)
    write_atomic(target, data, mode=SERVED, durable=fsync)


def _unowned_removed(path: str) -> bool:
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


class LocalStorage(Storage):
    """A flat directory of wheels and sdists, with the state in `<root>/.releasekit/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_dir = root / ".releasekit"
        self._unsynced = False

    def prepare(self) -> None:
        """Create the directories and remove temp files left by uploads that died."""
        make_dirs(self.state_dir)
        self.collect_temp()

    def collect_temp(self) -> tuple[int, int]:
        files = size = 0
        cutoff = time.time() - STALE_NEW_SECONDS
        for entry in os.scandir(self.root):
            if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                length = entry.stat(follow_symlinks=False).st_size
                if entry.name.endswith(".part"):
                    if not _unowned_removed(entry.path):
                        continue
                elif entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    Path(entry.path).unlink()
                else:
                    continue
                files, size = files + 1, size + length
        return files, size

    @contextlib.contextmanager
    def lock(self, filename: str) -> Iterator[None]:
        # A fixed set of lock files (by hash), so no lock file is left per filename forever.
        stripe = int(hashlib.sha256(filename.encode()).hexdigest(), 16) % LOCK_STRIPES
        directory = self.state_dir / "locks"
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / f"{stripe:03d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # per open file: excludes other threads as well
            yield
        finally:
            os.close(fd)

    def free_bytes(self) -> int | None:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

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
        for path in (self.root, self.state_dir / "yanked.json", self.state_dir / "status.json"):
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
        fd, new = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".new", dir=self.root)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the handle closes or the process dies
            temp = Path(new).with_suffix(".part")
            Path(new).rename(temp)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                Path(new).unlink()
            raise
        return os.fdopen(fd, "w+b"), temp

    def commit(self, temp: Path, filename: str, *, overwrite: bool) -> StoredFile:
        target = self.root / filename
        with temp.open("rb") as handle:
            os.fchmod(handle.fileno(), SERVED)  # private while written, readable once stored
            os.fsync(handle.fileno())
            # The record describes this inode, whatever lands at `target` afterwards.
            st = os.fstat(handle.fileno())
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
        return StoredFile(filename, st.st_size, st.st_mtime_ns)

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
            with handle:  # unlinked while still locked: the temp collector never races it
                temp.unlink()
        except OSError:
            return False
        return True
