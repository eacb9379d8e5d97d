"""`LocalStorage`: the packages directory backend of the storage seam (storage.py).

Files sit flat in one directory, the state under `<root>/.releasekit/`. An upload is a dot-named
temp file in the same directory, locked by its writer (flock) before it gets its `.part` name,
so the temp collector can tell a live upload from a dead one. A conditional create is `link()`,
which makes a name only if it is free; the record comes from `fstat` of the written inode.
Every store and delete is appended to the change log (`<root>/.releasekit/log/`, changes.py),
which is how the other workers on the directory learn of it at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from releasekit.atomic import SERVED, fsync_directory, write_atomic
from releasekit.errors import IndexServerError
from releasekit.server.changes import ChangeLog, DirectoryObjects
from releasekit.server.localupload import TEMP_PREFIX as TEMP_PREFIX  # where tests look for it
from releasekit.server.localupload import LocalUpload, unowned_removed
from releasekit.server.storage import CHUNK, ChangeLogRefused, Storage, StoredFile, Upload

# A `.new` upload file that never got its `.part` name is from a process killed in between; one
# this old is certainly dead (an unlocked `.part` is collected at once: localupload.py).
STALE_NEW_SECONDS = 60
LOCK_STRIPES = 256
# Directories the index creates are traversable by a web server running as another user (nginx's
# www-data); files it writes for serving are atomic.SERVED (0644), secrets atomic.SECRET.
DIR_MODE = 0o755
logger = logging.getLogger("releasekit.server")


class LocalStorage(Storage):
    """A flat directory of wheels and sdists, with the state in `<root>/.releasekit/`."""

    def __init__(self, root: Path) -> None:
        self.root = self._root = root
        self._state = root / ".releasekit"
        self._unsynced = False
        self._log = ChangeLog(DirectoryObjects(self._state / "log", make_dirs))
        self._leader: int | None = None  # the descriptor holding the leader lock

    def changes(self) -> ChangeLog:
        return self._log

    def check_log(self) -> None:
        """Refuse (StorageUnavailable, a 503) when the change log cannot take an entry."""
        log = self._state / "log"
        if not log.is_dir() or not os.access(log, os.W_OK | os.X_OK):
            raise ChangeLogRefused(
                f"the change log {log} is not a writable directory: nothing was stored; make it "
                "writable by the user the index runs as"
            )

    def logged(
        self,
        op: str,
        stored: StoredFile,
        note: Mapping[str, object] | None = None,
        *,
        undo: tuple[Path, int] | None = None,
    ) -> None:
        """Append a store or delete to the change log; a store that cannot be logged is undone
        (`undo`: the name and the inode we linked), so no file is stored that others never see."""
        change: dict[str, object] = {
            "op": op,
            "filename": stored.filename,
            "size": stored.size,
            "mtime_ns": stored.mtime_ns,
        }
        if note:
            change["record"] = dict(note)
        try:
            self._log.append(change)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                # The file fit and is durable: it stays, like a page the disk had no room for.
                # Other workers find it by their directory scan (a poll) instead of the entry.
                logger.warning("no room to log %s %s: %s", op, stored.filename, exc.strerror)
                return
            if undo is not None:
                with contextlib.suppress(OSError):
                    if undo[0].stat().st_ino == undo[1]:
                        undo[0].unlink()
                        fsync_directory(self._root)
            raise ChangeLogRefused(
                f"the change log {self._state / 'log'} refused an entry ({exc.strerror}): "
                f"{stored.filename} was not stored; make the directory writable"
            ) from exc

    def lead(self) -> bool:
        if self._leader is not None:
            return True
        (self._state / "locks").mkdir(parents=True, exist_ok=True)
        fd = os.open(self._state / "locks" / "leader.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until this process exits
        except BlockingIOError:
            os.close(fd)
            return False
        self._leader = fd
        return True

    @property
    def directory(self) -> Path:
        """The packages directory itself (named indexes live under it)."""
        return self._root

    def exists(self) -> bool:
        return self._root.is_dir()

    def describe(self) -> str:
        return f"directory {self._root}"

    def prepare(self) -> None:
        log = self._state / "log"
        try:
            make_dirs(log)
        except OSError as exc:
            raise IndexServerError(
                f"cannot create the change log directory {log}: {exc.strerror}",
                hint="remove what is in the way or fix the permissions of the packages directory",
            ) from None
        if not log.is_dir() or not os.access(log, os.W_OK | os.X_OK):
            raise IndexServerError(
                f"the change log {log} is not a writable directory",
                hint="remove what is in the way, or make it a directory writable by the user "
                "the index runs as",
            )
        self.collect_temp()

    def collect_temp(self) -> tuple[int, int]:
        files = size = 0
        cutoff = time.time() - STALE_NEW_SECONDS
        for entry in os.scandir(self._root):
            if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                length = entry.stat(follow_symlinks=False).st_size
                if entry.name.endswith(".part"):
                    if not unowned_removed(entry.path):
                        continue
                elif entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    Path(entry.path).unlink()
                else:
                    continue
                files, size = files + 1, size + length
        # A log writer killed between its temp file and its link() leaves the temp file.
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for entry in os.scandir(self._state / "log"):
                if entry.name.startswith(".new-"):
                    with contextlib.suppress(OSError):
                        st = entry.stat(follow_symlinks=False)
                        if st.st_mtime < cutoff:
                            Path(entry.path).unlink()
                            files, size = files + 1, size + st.st_size
        return files, size

    @contextlib.contextmanager
    def lock(self, filename: str) -> Iterator[None]:
        # A fixed set of lock files (by hash), so no lock file is left per filename forever.
        stripe = int(hashlib.sha256(filename.encode()).hexdigest(), 16) % LOCK_STRIPES
        directory = self._state / "locks"
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / f"{stripe:03d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # per open file: excludes other threads as well
            yield
        finally:
            os.close(fd)

    def writable(self) -> bool:
        # An unnamed file (O_TMPFILE) proves a file can be created here without a directory
        # entry: a named temp file moved the directory's mtime, and the poller rescanned every
        # file (20k stats) after each /ready probe.
        try:
            os.close(os.open(self._root, os.O_TMPFILE | os.O_WRONLY, 0o600))
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.EOPNOTSUPP):  # no O_TMPFILE here
                return super().writable()
            return False
        return True

    def free_bytes(self) -> int | None:
        st = os.statvfs(self._root)
        return st.f_bavail * st.f_frsize

    def scan(self) -> list[StoredFile]:
        found = []
        with os.scandir(self._root) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
                found.append(StoredFile(entry.name, st.st_size, st.st_mtime_ns))
        return found

    def stamp(self) -> tuple[int, ...]:
        stamps = []
        for path in (self._root, self._state / "yanked.json", self._state / "status.json"):
            try:
                stamps.append(path.stat().st_mtime_ns)
            except FileNotFoundError:
                stamps.append(0)
        return tuple(stamps)

    def _file(self, filename: str) -> Path:
        if not filename or "/" in filename or filename.startswith(".") or "\0" in filename:
            raise FileNotFoundError(filename)  # never a state file, a temp file or a sub-path
        return self._root / filename

    def stat(self, filename: str) -> StoredFile | None:
        try:
            st = self._file(filename).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return StoredFile(filename, st.st_size, st.st_mtime_ns)

    def open(self, filename: str) -> BinaryIO:
        return self._file(filename).open("rb")

    def read_range(
        self, filename: str, start: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        handle = self.open(filename)  # opened now: a missing file fails the call, not the loop
        return _chunks(handle, start, length)

    def new_upload(self) -> Upload:
        return LocalUpload(self)

    def delete(self, filename: str) -> bool:
        path = self._file(filename)
        try:
            st = path.stat()
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_directory(self._root)
        self.logged("del", StoredFile(filename, st.st_size, st.st_mtime_ns))
        return True

    def read_state(self, name: str) -> bytes | None:
        try:
            return (self._state / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def write_state(self, name: str, data: bytes, *, durable: bool = True) -> None:
        target = self._state / name
        make_dirs(target.parent)
        if not durable:
            write_atomic(target, data, mode=SERVED, durable=False)
            self._unsynced = True
            return
        if self._unsynced:
            os.sync()  # one flush for every cache file written since: cheaper than an fsync each
            self._unsynced = False
        write_atomic(target, data, mode=SERVED)  # world-readable: a web server may serve it

    def delete_state(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            (self._state / name).unlink()

    def clear_state(self, prefix: str) -> None:
        shutil.rmtree(self._state / prefix, ignore_errors=True)

    def local_path(self, filename: str) -> str | None:
        try:
            return str(self._file(filename))
        except FileNotFoundError:
            return None


def make_dirs(directory: Path) -> None:
    """Create `directory` and missing parents as 0755 whatever the umask (existing ones untouched)."""
    if directory.is_dir():
        return
    make_dirs(directory.parent)
    with contextlib.suppress(FileExistsError):
        directory.mkdir()
        directory.chmod(DIR_MODE)


def _chunks(handle: BinaryIO, start: int, length: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        left = length
        while left is None or left > 0:
            chunk = handle.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
