"""The change log of an S3 store (changes.py) and the file listing a replica derives from it.

`log/<20-digit number>` objects are created with `If-None-Match: *` (`BucketObjects`). A replica
keeps the listing in memory (`S3Listing`) and, per poll, lists only the log objects after the
last it applied (`offset`), so noticing a change costs one LIST, not a GET per file. A writer
that dies between its claim and its log entry is repaired by `reconcile`: a LIST of the claims
against memory. The catalogue follows the same log for records, yanks and statuses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from releasekit.server.changes import DIGITS, ChangeLog, NumberedObjects, plain_filename
from releasekit.server.s3 import S3Bucket
from releasekit.server.storage import StoredFile


class BucketObjects(NumberedObjects):
    """`log/<20 digits>` in the bucket, created with a conditional PUT."""

    def __init__(self, bucket: S3Bucket) -> None:
        self.bucket = bucket
        self.prefix = bucket.key("log")

    def _key(self, number: int) -> str:
        return self.bucket.key("log", f"{number:0{DIGITS}d}")

    def create(self, number: int, body: bytes) -> bool:
        return self.bucket.put_if_absent(self._key(number), body)

    def read(self, number: int) -> bytes | None:
        try:
            return self.bucket.get(self._key(number))
        except FileNotFoundError:
            return None

    def numbers_after(self, after: int, *, full: bool) -> list[int]:
        offset = self._key(after) if after >= 0 else None
        numbers = []
        for key, *_ in self.bucket.list(self.prefix, offset=offset):
            name = key.rsplit("/", 1)[1]
            if len(name) == DIGITS and name.isdigit() and name.isascii() and int(name) > after:
                numbers.append(int(name))
        return sorted(numbers)


class S3Listing:
    """One replica's listing of the bucket's files, kept current by following the log."""

    def __init__(self, log: ChangeLog) -> None:
        self.log = log
        self._lock = threading.Lock()
        self.applied = -1  # the last log number folded into `files`
        self.files: dict[str, StoredFile] = {}

    def follow(self) -> bool:
        """Apply log entries written since the last call; True if anything changed."""
        with self._lock:
            entries, _ = self.log.read_after(self.applied)
            for entry in entries:
                if entry.change is not None:
                    self._apply(entry.change)
                self.applied = entry.number
            return bool(entries)

    def _apply(self, change: dict[str, object]) -> None:
        name = plain_filename(change.get("filename"))
        if name is None:
            return  # a tampered entry never names a file outside the listing's rules
        if change.get("op") == "put":
            size, mtime = change.get("size"), change.get("mtime_ns")
            if isinstance(size, int) and isinstance(mtime, int):
                self.files[name] = StoredFile(name, size, mtime)
        elif change.get("op") == "del":
            self.files.pop(name, None)

    def reconcile(self, claims: Callable[[], dict[str, StoredFile]]) -> bool:
        """Rebuild the listing from the claims themselves (start-up, and repair); True if it moved."""
        with self._lock:
            tail = self.log.tail()  # first: changes after it are applied by the next `follow`
            current = claims()
            changed = current != self.files
            self.files, self.applied = current, max(self.applied, tail)
            return changed
