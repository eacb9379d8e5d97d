"""The change log: numbered entries, each written with a conditional create, shared by every
process that serves one store (uvicorn workers on a directory, replicas on a bucket).

A writer takes the first free number at or after the tail it knows; a lost create means that
number exists, so numbers are dense and every follower applies the same changes in the same
order. Entries are small JSON objects (`put`, `del`, `index`, `yank`, `status`; the catalogue
applies them, catalogue.py). A backend provides `NumberedObjects`: the directory backend here
(`<state>/log/<20 digits>`, created by `link`), the bucket one in s3log.py (`If-None-Match: *`).
An entry that is missing while later ones exist (a gap) can only come from a deleted or lost
entry: followers skip it and rescan the store, which is the truth for which files exist.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DIGITS = 20
MAX_ENTRY_BYTES = 64 * 1024 * 1024  # an `index` entry carries up to INDEX_BATCH records


class NumberedObjects(ABC):
    """Objects named by a number, created only if absent (the one primitive the log needs)."""

    @abstractmethod
    def create(self, number: int, body: bytes) -> bool:
        """Store `body` as `number` only if that number is free; False when it was taken."""

    @abstractmethod
    def read(self, number: int) -> bytes | None:
        """The body of `number`, None when there is no such object."""

    @abstractmethod
    def numbers_after(self, after: int, *, full: bool) -> list[int]:
        """Numbers above `after`, ascending; without `full` a backend may stop at a missing one."""

    def has_cheaply(self, number: int) -> bool | None:
        """Whether `number` exists, if that costs no more than a local stat; None otherwise."""
        return None

    def version(self) -> object:
        """A cheap value that changes when an object is added; None when it cannot tell."""
        return None


class DirectoryObjects(NumberedObjects):
    """`<directory>/<20 digits>`: a private temp file `link`ed to its number (fails if taken)."""

    def __init__(self, directory: Path, make_dirs: Callable[[Path], None]) -> None:
        self.directory = directory
        self._prefix = f"{directory}{os.sep}"
        self._make_dirs = make_dirs  # the backend's own (modes a web server can traverse)

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:0{DIGITS}d}"

    def create(self, number: int, body: bytes) -> bool:
        temp = self.directory / f".new-{os.getpid()}-{threading.get_ident()}-{number}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(temp, flags, 0o644)
        except FileNotFoundError:  # an admin command on a directory no server prepared yet
            self._make_dirs(self.directory)
            fd = os.open(temp, flags, 0o644)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            # Not fsynced: the files are the truth and are durable; a lost entry after a crash
            # is a gap, and followers rescan the directory on a gap.
            os.link(temp, self._path(number))  # atomic: EEXIST if the number is taken
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return True

    def read(self, number: int) -> bytes | None:
        try:
            with self._path(number).open("rb") as handle:
                return handle.read(MAX_ENTRY_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def numbers_after(self, after: int, *, full: bool) -> list[int]:
        if not full:  # one stat per entry: a follower reads only what is new
            found, number = [], after + 1
            while self._path(number).exists():
                found.append(number)
                number += 1
            return found
        numbers = []
        with (
            contextlib.suppress(FileNotFoundError, NotADirectoryError),
            os.scandir(self.directory) as entries,
        ):
            for entry in entries:
                if len(entry.name) == DIGITS and entry.name.isdigit() and entry.name.isascii():
                    numbers.append(int(entry.name))
        return sorted(n for n in numbers if n > after)

    def has_cheaply(self, number: int) -> bool | None:
        # On every page request: os.access raises nothing for a missing name (a third of
        # os.path.exists's cost, a tenth of Path.exists's, measured in bench_workers.py).
        return os.access(f"{self._prefix}{number:0{DIGITS}d}", os.F_OK)

    def version(self) -> object:
        try:
            return self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            return None


@dataclass(frozen=True)
class Entry:
    """One numbered entry; `change` is None when its body is not an entry (garbage, tampered)."""

    number: int
    change: dict[str, object] | None


class ChangeLog:
    """Appending to and reading one store's log; followers keep their own `applied` number."""

    def __init__(self, objects: NumberedObjects) -> None:
        self.objects = objects
        self._next: int | None = None  # past this process's last append (or the tail)
        self._lock = threading.Lock()

    def append(self, change: Mapping[str, object], *, after: int = -1) -> int:
        """Write `change` at the first free number past `after` and past our last; returns it."""
        body = json.dumps(change, separators=(",", ":")).encode()
        with self._lock:
            if self._next is None:
                self._next = self.tail() + 1
            number = max(self._next, after + 1)
            while not self.objects.create(number, body):
                number += 1  # taken: another writer got there first
            self._next = number + 1
            return number

    def moved(self, applied: int) -> bool:
        """Whether an entry after `applied` exists, answered only when it is cheap (a stat)."""
        return bool(self.objects.has_cheaply(applied + 1))

    def read_after(self, applied: int, *, full: bool = False) -> tuple[list[Entry], list[int]]:
        """Entries after `applied` in order, and the numbers missing between them (gaps)."""
        entries: list[Entry] = []
        gaps: list[int] = []
        expected = applied + 1
        for number in self.objects.numbers_after(applied, full=full):
            gaps.extend(range(expected, min(number, expected + 1000)))  # a bounded report
            expected = number + 1
            entries.append(Entry(number, parse_change(self.objects.read(number))))
        return entries, gaps

    def tail(self) -> int:
        """The highest number in the log, -1 for an empty one (a full listing)."""
        numbers = self.objects.numbers_after(-1, full=True)
        return numbers[-1] if numbers else -1


def parse_change(body: bytes | None) -> dict[str, object] | None:
    """A JSON object with a string `op`, else None (the follower skips it with a warning)."""
    if body is None or len(body) > MAX_ENTRY_BYTES:
        return None
    try:
        change = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(change, dict) or not isinstance(change.get("op"), str):
        return None
    return change


def plain_filename(name: object) -> str | None:
    """`name` if it can be a stored file's name (no path, no dot file, no NUL), else None."""
    if not isinstance(name, str) or not name or len(name) > 255:
        return None
    if "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        return None
    return name
