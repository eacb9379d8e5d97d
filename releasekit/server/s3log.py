"""The change log of an S3 store: numbered objects, each written with a conditional create.

`log/<20-digit number>` holds one change (`put` with the claim record, or `del`). A writer takes
the first free number at or after the tail it knows: a lost create means that number exists, so
numbers are dense and every replica applies the same changes in the same order. A replica keeps
the listing in memory and, per poll, lists only the log objects after the last it applied
(`offset`), so noticing a change costs one LIST, not a GET per file. A writer that dies between
its claim and its log entry is repaired by `reconcile`: a LIST of the claims against memory.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from releasekit.server.s3 import S3Bucket
from releasekit.server.storage import StoredFile

DIGITS = 20


class ChangeLog:
    """One replica's view of `log/` and the listing it implies."""

    def __init__(self, bucket: S3Bucket) -> None:
        self._bucket = bucket
        self._prefix = bucket.key("log")
        self._lock = threading.Lock()
        self.applied = -1  # the last log number folded into `files`
        self.files: dict[str, StoredFile] = {}
        self._next = 0  # where this writer's next append starts (past its own last entry)

    def _key(self, number: int) -> str:
        return self._bucket.key("log", f"{number:0{DIGITS}d}")

    def append(self, entry: dict[str, object]) -> int:
        """Write `entry` at the first free number; returns it."""
        body = json.dumps(entry).encode()
        number = max(self.applied + 1, self._next)
        while not self._bucket.put_if_absent(self._key(number), body):
            number += 1  # taken: another writer got there first
        self._next = number + 1
        return number

    def follow(self) -> bool:
        """Apply log objects written since the last call; True if anything changed."""
        with self._lock:
            offset = self._key(self.applied) if self.applied >= 0 else None
            keys = [k for k, *_ in self._bucket.list(self._prefix, offset=offset)]
            changed = False
            for key in sorted(keys):
                number = int(key.rsplit("/", 1)[1])
                if number <= self.applied:
                    continue
                try:
                    entry = json.loads(self._bucket.get(key))
                except ValueError:
                    entry = {}  # not an entry this backend wrote: nothing to apply
                if isinstance(entry, dict):
                    self._apply(entry)
                self.applied, changed = number, True
            return changed

    def _apply(self, entry: dict[str, object]) -> None:
        name = str(entry.get("filename", ""))
        if not name or "/" in name or name.startswith(".") or "\0" in name:
            return  # a tampered entry never names a file outside the listing's rules
        if entry.get("op") == "put":
            size, mtime = entry.get("size"), entry.get("mtime_ns")
            if isinstance(size, int) and isinstance(mtime, int):
                self.files[name] = StoredFile(name, size, mtime)
        elif entry.get("op") == "del":
            self.files.pop(name, None)

    def tail(self) -> int:
        """The highest log number in the bucket (-1 for none): one LIST of the whole log."""
        last = -1
        for key, *_ in self._bucket.list(self._prefix):
            last = max(last, int(key.rsplit("/", 1)[1]))
        return last

    def reconcile(self, claims: Callable[[], dict[str, StoredFile]]) -> bool:
        """Rebuild the listing from the claims themselves (start-up, and repair); True if it moved."""
        with self._lock:
            tail = self.tail()  # first: changes after it are applied by the next `follow`
            current = claims()
            changed = current != self.files
            self.files, self.applied = current, max(self.applied, tail)
            return changed
