"""A file's parsed contents, re-read when it changes (the password, roles and token files)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from releasekit.errors import IndexServerError

logger = logging.getLogger("releasekit.server.auth")
_T = TypeVar("_T")


class WatchedFile(Generic[_T]):
    """A file's parsed contents, re-read when the (inode, mtime, size) of any watched path changes."""

    def __init__(
        self,
        path: Path,
        load: Callable[[Path], _T],
        interval: float,
        clock: Callable[[], float],
        also: tuple[Path, ...] = (),
    ) -> None:
        self._path, self._load, self._interval, self._clock = path, load, interval, clock
        self._watched = (path, *also)
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._value = load(path)  # start-up: a broken file raises IndexServerError
        self._checked = clock()

    def _stat(self) -> tuple[tuple[int, int, int] | None, ...]:
        return tuple(_signature(path) for path in self._watched)

    def expire(self) -> None:
        """Check the file at the next `get` (the server itself just changed it)."""
        with self._lock:
            self._checked = float("-inf")

    def get(self) -> _T:
        """The current contents; costs one stat() at most once per interval."""
        with self._lock:
            now = self._clock()
            if now - self._checked < self._interval:
                return self._value
            self._checked = now
            signature = self._stat()
            if signature == self._signature:
                return self._value
            # Record the signature even on failure, so a broken file is logged once, not per second.
            self._signature = signature
            try:
                self._value = self._load(self._path)
            except IndexServerError as exc:
                logger.error("%s; keeping the previous version of %s", exc.message, self._path)
            else:
                logger.info("reloaded %s", self._path)
            return self._value


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size
