"""The upstream file cache of one index: files and PEP 658 metadata, verified, then kept.

A file is fetched on its first download, hashed while it is written, and stored only when its
sha256 is the one upstream's page lists (a conditional create: racing downloads keep one copy).
Its verified hash is written first (`sha256/<file>`), so a copy is never without it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from releasekit.server.catalogue import hash_stored
from releasekit.server.storage import Storage, StoredFile
from releasekit.server.upstream import UpstreamConfig
from releasekit.server.upstream_fetch import (
    HashMismatch,
    NotCached,
    UpstreamError,
    fetch,
    outcome_label,
)
from releasekit.server.upstream_listing import UpstreamFile

logger = logging.getLogger("releasekit.server.upstream")
MAX_METADATA = 16 * 1024 * 1024
Count = Callable[[str, str, "float | None"], None]


class UpstreamFiles:
    """Cached upstream files of one index (`cache` is its own store, apart from the index)."""

    def __init__(self, cache: Storage, count: Count, prepare: Callable[[], None]) -> None:
        self.cache = cache
        self._count = count
        self._prepare = prepare
        self._locks: dict[str, asyncio.Lock] = {}

    def cached_file(self, entry: UpstreamFile) -> StoredFile | None:
        """The cached copy when it holds the bytes upstream lists; HashMismatch when upstream
        now lists other bytes under the same name."""
        stored = self.cache.stat(entry.filename)
        if stored is None:
            return None
        raw = self.cache.read_state(f"sha256/{entry.filename}")
        if raw is None:  # a copy put there by hand: hash it once
            raw = hash_stored(self.cache, entry.filename)[0].encode()
            self.cache.write_state(f"sha256/{entry.filename}", raw)
        if raw.decode() != entry.sha256:
            raise HashMismatch(
                f"upstream now lists sha256 {entry.sha256} for {entry.filename}, but the copy "
                f"cached earlier has {raw.decode()}: a file never changes its bytes on an honest "
                "index; remove the cached copy if upstream really replaced it"
            )
        return stored

    async def file(self, entry: UpstreamFile, config: UpstreamConfig) -> StoredFile:
        """The cached copy of `entry`, fetched and verified first when missing."""
        stored = await run_in_threadpool(self.cached_file, entry)
        if stored is not None:
            self._count("file", "cached", None)
            return stored
        if config.offline:
            self._count("file", "offline_miss", None)
            raise NotCached(entry.filename)
        async with self._locks.setdefault(entry.filename, asyncio.Lock()):
            stored = await run_in_threadpool(self.cached_file, entry)
            if stored is not None:
                return stored
            started = time.monotonic()
            try:
                stored = await self._download(entry, config)
            except UpstreamError as exc:
                self._count("file", outcome_label(exc), started)
                logger.warning("upstream file %s refused: %s", entry.url, exc)
                raise
            finally:
                self._locks.pop(entry.filename, None)
            self._count("file", "ok", started)
            logger.info("cached upstream file %s (%d bytes)", entry.url, stored.size)
            return stored

    async def _download(self, entry: UpstreamFile, config: UpstreamConfig) -> StoredFile:
        await run_in_threadpool(self._prepare)
        upload = await run_in_threadpool(self.cache.new_upload)
        try:
            limit = config.max_file_size if entry.size is None else entry.size
            fetched = await fetch(
                entry.url,
                config,
                accept="*/*",
                limit=min(limit, config.max_file_size),
                deadline=config.timeout * 10,
                sink=upload.write,
            )
            if fetched is None:
                raise UpstreamError(f"upstream no longer has {entry.url} (404)")
            if fetched.sha256 != entry.sha256:
                raise HashMismatch(
                    f"upstream sent {entry.filename} with sha256 {fetched.sha256}, but its page "
                    f"lists {entry.sha256}: nothing was cached; try again later or ask the "
                    "upstream's admin"
                )
            mtime_ns = None if entry.uploaded is None else int(entry.uploaded * 1e9)
            return await run_in_threadpool(self._keep, upload, entry, mtime_ns)
        finally:
            await run_in_threadpool(upload.abort)

    def _keep(self, upload: Any, entry: UpstreamFile, mtime_ns: int | None) -> StoredFile:
        # The verified hash first: a copy is never without it (both racers verified the same).
        self.cache.write_state(f"sha256/{entry.filename}", entry.sha256.encode())
        stored: StoredFile | None = upload.create(entry.filename, mtime_ns=mtime_ns)
        return stored or self.cache.stat(entry.filename) or StoredFile(entry.filename, 0, 0)

    async def metadata(self, entry: UpstreamFile, config: UpstreamConfig) -> bytes:
        """The PEP 658 metadata of `entry`, verified against the hash upstream listed."""
        name = f"metadata/{entry.filename}.metadata"
        data = await run_in_threadpool(self.cache.read_state, name)
        if data is not None and hashlib.sha256(data).hexdigest() == entry.metadata_sha256:
            return data
        if config.offline:
            self._count("metadata", "offline_miss", None)
            raise NotCached(entry.filename + ".metadata")
        started = time.monotonic()
        try:
            fetched = await fetch(
                entry.url + ".metadata",
                config,
                accept="*/*",
                limit=MAX_METADATA,
                deadline=config.timeout,
            )
            if fetched is None or fetched.sha256 != entry.metadata_sha256:
                raise HashMismatch(
                    f"upstream's metadata of {entry.filename} is missing or does not match the "
                    "sha256 its page lists: nothing was cached"
                )
        except UpstreamError as exc:
            self._count("metadata", outcome_label(exc), started)
            raise
        self._count("metadata", "ok", started)
        await run_in_threadpool(self._prepare)
        await run_in_threadpool(self.cache.write_state, name, fetched.body, durable=False)
        return fetched.body
