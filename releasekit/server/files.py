"""The download fast path: small indexed files answered from memory, in front of Starlette.

Most wheels and sdists on an internal index are small, and pip and uv fetch the same few many
times. A bounded LRU of their bytes, keyed by (filename, sha256) so a file replaced on disk is
never served stale, answers a GET without a `stat`, a thread hop or Starlette's FileResponse.
Anything else (a Range request, a large or not yet indexed file, a file whose size on disk no
longer matches its record) goes to the regular route, which handles every case.
"""

from __future__ import annotations

from collections import OrderedDict
from email.utils import formatdate
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from releasekit.server.records import FileRecord

SMALL_FILE = 1024 * 1024
CACHE_BYTES = 64 * 1024 * 1024


class SmallFileCache:
    """Bytes of recently served small files, at most `limit` bytes in all (least recent out)."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple[str, str], data: bytes) -> None:
        with self._lock:
            if key in self._items or len(data) > self.limit:
                return
            self._items[key] = data
            self.size += len(data)
            while self.size > self.limit:
                _, evicted = self._items.popitem(last=False)
                self.size -= len(evicted)


async def small_file_bytes(cache: SmallFileCache, record: FileRecord, path: Path) -> bytes | None:
    """The file's bytes when it is small and still the file its record describes, else None."""
    if record.size > SMALL_FILE:
        return None
    key = (record.filename, record.sha256)
    data = cache.get(key)
    if data is not None:
        return data
    try:
        data = await run_in_threadpool(path.read_bytes)
    except OSError:
        return None  # removed or unreadable: the regular route answers properly
    if len(data) != record.size:
        return None  # replaced by hand since it was indexed: the regular route stats it
    cache.put(key, data)
    return data


def file_headers(record: FileRecord, length: int, max_age: int) -> tuple[tuple[bytes, bytes], ...]:
    """The headers the regular route sends for a whole file, byte for byte the same."""
    return (
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(length).encode()),
        (b"etag", f'"{record.sha256}"'.encode()),
        (b"cache-control", f"public, max-age={max_age}, immutable".encode()),
        (b"accept-ranges", b"bytes"),
        (b"last-modified", formatdate(record.mtime_ns / 1e9, usegmt=True).encode()),
    )
