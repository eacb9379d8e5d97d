"""`S3Storage`: the storage seam (storage.py) over one S3-compatible bucket, shared by replicas.

Layout under the prefix: `blobs/<sha256>/<upload id>` holds bytes (named by their hash; the
upload id makes each blob owned by one upload, so dropping a loser's bytes never touches a
winner's); `files/<filename>` is the claim, a small JSON record naming the blob, written with
`If-None-Match: *`: it is the commit point, so of racing uploads exactly one wins, and an upload
that dies before its claim leaves only an unreferenced blob that nobody lists. `state/<name>`
holds state blobs, `locks/<hash>` the per-filename leases. An upload is spooled to a local file
(seekable for archive checks, flock-owned like LocalStorage's temp files) and sent at `create`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from releasekit.server.changes import ChangeLog
from releasekit.server.probe import ProbeResult, race
from releasekit.server.s3 import S3Bucket, S3Settings, S3Unavailable
from releasekit.server.s3log import BucketObjects, S3Listing
from releasekit.server.storage import CHUNK, Storage, StoredFile, Upload

SPOOL_PREFIX = "upload-"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
LEASE_SECONDS = 30  # a lock holder that died frees its filename after this long
LOCK_WAIT_SECONDS = 60
BLOB_GRACE_SECONDS = 3600  # an unclaimed blob this old belongs to a dead or superseded upload
# How often the listing is rebuilt from the claims themselves (repairs a writer that died
# between its claim and its log entry); between rebuilds a poll reads only new log entries.
RECONCILE_SECONDS = 60.0


class CorruptClaim(S3Unavailable):
    """A claim object that is not one this backend wrote (tampered, truncated, foreign)."""


def _claim_record(filename: str, raw: bytes, key: str) -> tuple[StoredFile, str, str]:
    """(record, sha256, blob id) of a claim, refusing anything malformed."""
    try:
        data = json.loads(raw)
        sha, blob, size, mtime = data["sha256"], data["blob"], data["size"], data["mtime_ns"]
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptClaim(f"claim {key} is not valid JSON with sha256/blob/size/mtime_ns") from exc
    valid = (
        isinstance(sha, str) and HEX64.match(sha) and isinstance(blob, str) and HEX32.match(blob)
    )
    numbers = all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (size, mtime))
    if not valid or not numbers:
        raise CorruptClaim(
            f"claim {key} names no blob of this store; restore it with `releasekit server "
            "migrate` from a copy, or delete it to drop the file"
        )
    return StoredFile(filename, size, mtime), sha, blob


class _RangeReader(io.RawIOBase):
    """A seekable reader of one blob by ranged GETs (used through a BufferedReader)."""

    def __init__(self, bucket: S3Bucket, key: str, size: int) -> None:
        self._bucket, self._key, self._size, self._pos = bucket, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        end = min(self._size, self._pos + len(buffer))
        if end <= self._pos:
            return 0
        data = b"".join(self._bucket.get_range(self._key, self._pos, end))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class S3Upload(Upload):
    """A locked local spool file; `create` sends the blob, then conditionally writes the claim."""

    def __init__(self, storage: S3Storage) -> None:
        self._storage = storage
        fd, name = tempfile.mkstemp(prefix=".new-", dir=storage.spool)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held while alive: the collector skips a locked file
        self._temp = Path(name).with_name(f"{SPOOL_PREFIX}{Path(name).name[5:]}")
        Path(name).rename(self._temp)
        self._handle = os.fdopen(fd, "w+b")
        self._hash = hashlib.sha256()
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        self._hash.update(chunk)

    def reader(self) -> BinaryIO:
        self._handle.flush()
        return self._temp.open("rb")

    def _send(self, mtime_ns: int | None) -> tuple[bytes, str, StoredFile]:
        self._handle.flush()
        sha, blob = self._hash.hexdigest(), uuid.uuid4().hex
        size = os.fstat(self._handle.fileno()).st_size
        key = self._storage.bucket.key("blobs", sha, blob)
        with self._temp.open("rb") as handle:
            self._storage.bucket.put(key, handle)
        when = time.time_ns() if mtime_ns is None else mtime_ns
        claim = {"sha256": sha, "blob": blob, "size": size, "mtime_ns": when}
        return json.dumps(claim).encode(), key, StoredFile("", size, when)

    def create(
        self,
        filename: str,
        *,
        mtime_ns: int | None = None,
        note: Mapping[str, object] | None = None,
    ) -> StoredFile | None:
        claim_key = self._storage.claim_key(filename)
        claim, blob_key, record = self._send(mtime_ns)
        try:
            won = self._storage.bucket.put_if_absent(claim_key, claim)
        except BaseException:
            self._storage.bucket.delete(blob_key)  # nothing visible refers to it
            raise
        if not won:
            self._storage.bucket.delete(blob_key)
        self.abort()
        if not won:
            return None
        stored = StoredFile(filename, record.size, record.mtime_ns)
        self._storage.logged("put", stored, note)
        return stored

    def replace(self, filename: str, *, note: Mapping[str, object] | None = None) -> StoredFile:
        claim_key = self._storage.claim_key(filename)
        claim, _, record = self._send(None)
        # The replaced blob stays until the collector's grace: open readers keep reading it.
        self._storage.bucket.put(claim_key, claim)
        self.abort()
        stored = StoredFile(filename, record.size, record.mtime_ns)
        self._storage.logged("put", stored, note)
        return stored

    def abort(self) -> None:
        if not self._done:
            self._done = True
            with contextlib.suppress(FileNotFoundError):
                self._temp.unlink()
        with contextlib.suppress(OSError):
            self._handle.close()


class S3Storage(Storage):
    """Distribution files and state in one bucket; see the module docstring for the layout."""

    def __init__(self, settings: S3Settings, spool: Path | None = None) -> None:
        self.bucket = S3Bucket(settings)
        where = f"{settings.endpoint}|{settings.bucket}|{settings.prefix}"
        tag = hashlib.sha256(where.encode()).hexdigest()[:12]
        self.spool = spool or Path(tempfile.gettempdir()) / f"releasekit-s3-{tag}"
        self.log = ChangeLog(BucketObjects(self.bucket))
        self.listing = S3Listing(self.log)
        self._reconciled_at: float | None = None
        self._claim_cache: dict[str, tuple[str, StoredFile | None]] = {}

    def logged(self, op: str, stored: StoredFile, note: Mapping[str, object] | None = None) -> None:
        """Append a change to the log (after its claim: the claim is the commit point)."""
        change: dict[str, object] = {
            "op": op,
            "filename": stored.filename,
            "size": stored.size,
            "mtime_ns": stored.mtime_ns,
        }
        if note:
            change["record"] = dict(note)
        self.log.append(change, after=self.listing.applied)

    def changes(self) -> ChangeLog:
        return self.log

    def _sync(self) -> None:
        now = time.monotonic()
        if self._reconciled_at is None or now - self._reconciled_at > RECONCILE_SECONDS:
            self.listing.reconcile(self._claims)
            self._reconciled_at = now
        else:
            self.listing.follow()

    def claim_key(self, filename: str) -> str:
        if not filename or "/" in filename or filename.startswith(".") or "\0" in filename:
            raise FileNotFoundError(filename)  # never a state object, a blob or a sub-path
        try:
            return self.bucket.key("files", filename)
        except ValueError as exc:
            raise FileNotFoundError(filename) from exc

    def _claim(self, filename: str) -> tuple[StoredFile, str] | None:
        key = self.claim_key(filename)
        try:
            raw = self.bucket.get(key)
        except FileNotFoundError:
            return None
        record, sha, blob = _claim_record(filename, raw, key)
        return record, self.bucket.key("blobs", sha, blob)

    # -- distribution files --------------------------------------------------------------------
    def scan(self) -> list[StoredFile]:
        self._sync()
        return sorted(self.listing.files.values(), key=lambda f: f.filename)

    def _claims(self) -> dict[str, StoredFile]:
        """Every claim, by one LIST; GETs only for claims new or changed since the last call."""
        listed = {
            k.rsplit("/", 1)[1]: etag
            for k, _, _, etag in self.bucket.list(self.bucket.key("files"))
        }
        known = self._claim_cache
        fetch = [n for n, etag in listed.items() if etag is None or known.get(n, ("",))[0] != etag]
        with ThreadPoolExecutor(8) as pool:
            for name, record in zip(fetch, pool.map(self._listed_claim, fetch), strict=True):
                known[name] = (listed[name] or "", record)
        self._claim_cache = {n: known[n] for n in listed if n in known}
        return {n: r for n, (_, r) in self._claim_cache.items() if r is not None}

    def _listed_claim(self, filename: str) -> StoredFile | None:
        try:
            return self._claim_or_none(filename)
        except CorruptClaim:
            return None  # stat and reads of it report the fault; the listing leaves it out

    def _claim_or_none(self, filename: str) -> StoredFile | None:
        try:
            claim = self._claim(filename)
        except FileNotFoundError:
            return None
        return claim[0] if claim else None

    def stamp(self) -> tuple[int, ...]:
        self._sync()
        # Yanks and statuses are log entries too: the log number covers them (no HEAD per poll).
        listing = hash(tuple(sorted(self.listing.files.values(), key=lambda f: f.filename)))
        return (self.listing.applied, listing)

    def stat(self, filename: str) -> StoredFile | None:
        return self._claim_or_none(filename)

    def _blob(self, filename: str) -> tuple[StoredFile, str]:
        claim = self._claim(filename)
        if claim is None:
            raise FileNotFoundError(filename)
        return claim

    def open(self, filename: str) -> BinaryIO:
        record, key = self._blob(filename)
        return io.BufferedReader(_RangeReader(self.bucket, key, record.size), CHUNK)

    def read_range(
        self, filename: str, start: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        record, key = self._blob(filename)  # resolved now: a missing file fails the call
        end = record.size if length is None else min(record.size, start + length)
        if start >= end:
            return iter(())
        return self.bucket.get_range(key, start, end)

    def new_upload(self) -> Upload:
        self.spool.mkdir(mode=0o700, parents=True, exist_ok=True)
        return S3Upload(self)

    def delete(self, filename: str) -> bool:
        claim = self._claim(filename)
        if claim is None:
            return False
        self.bucket.delete(self.claim_key(filename))
        self.bucket.delete(claim[1])
        self.logged("del", claim[0])
        return True

    @contextlib.contextmanager
    def lock(self, filename: str) -> Iterator[None]:
        key = self.bucket.key("locks", hashlib.sha256(filename.encode()).hexdigest())
        body = json.dumps({"owner": uuid.uuid4().hex, "until": time.time() + LEASE_SECONDS})
        deadline, pause = time.monotonic() + LOCK_WAIT_SECONDS, 0.005
        while not self.bucket.put_if_absent(key, body.encode()):
            self._break_if_expired(key)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.describe()}: {filename} stayed locked; retry later")
            time.sleep(pause)  # a bounded backoff poll: the lease is another replica's
            pause = min(pause * 2, 0.1)
        try:
            yield
        finally:
            self.bucket.delete(key)

    def _break_if_expired(self, key: str) -> None:
        try:
            lease = json.loads(self.bucket.get(key))
            expired = float(lease["until"]) < time.time()
        except FileNotFoundError:
            return
        except (ValueError, TypeError, KeyError):
            expired = True  # not a lease this backend wrote
        if expired:
            self.bucket.delete(key)

    # -- state blobs ---------------------------------------------------------------------------
    def _state_key(self, name: str) -> str:
        return self.bucket.key("state", *name.split("/"))

    def read_state(self, name: str) -> bytes | None:
        try:
            return self.bucket.get(self._state_key(name))
        except FileNotFoundError:
            return None

    def write_state(self, name: str, data: bytes, *, durable: bool = True) -> None:
        self.bucket.put(self._state_key(name), data)  # an S3 PUT is atomic and durable

    def delete_state(self, name: str) -> None:
        self.bucket.delete(self._state_key(name))

    def clear_state(self, prefix: str) -> None:
        for key, *_ in list(self.bucket.list(self._state_key(prefix))):
            self.bucket.delete(key)

    # -- the store itself ----------------------------------------------------------------------
    def exists(self) -> bool:
        try:
            next(iter(self.bucket.list(self.bucket.key("files"))), None)
        except S3Unavailable as exc:
            if "NoSuchBucket" in str(exc) or "404" in str(exc):
                return False
            raise
        return True

    def describe(self) -> str:
        return self.bucket.settings.describe()

    def prepare(self) -> None:
        self.spool.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.collect_temp()

    def collect_temp(self) -> tuple[int, int]:
        from releasekit.server.localupload import unowned_removed

        files = size = 0
        if self.spool.is_dir():
            for entry in os.scandir(self.spool):
                if entry.name.startswith(SPOOL_PREFIX) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        length = entry.stat(follow_symlinks=False).st_size
                        if unowned_removed(entry.path):
                            files, size = files + 1, size + length
        old_files, old_size = self._collect_blobs()
        return files + old_files, size + old_size

    def _collect_blobs(self) -> tuple[int, int]:
        cutoff = time.time() - BLOB_GRACE_SECONDS
        old = [
            (k, s) for k, s, when, _ in self.bucket.list(self.bucket.key("blobs")) if when < cutoff
        ]
        if not old:
            return 0, 0
        live = set()
        for key, *_ in self.bucket.list(self.bucket.key("files")):
            with contextlib.suppress(FileNotFoundError, CorruptClaim):
                claim = self._claim(key.rsplit("/", 1)[1])
                if claim:
                    live.add(claim[1])
        dead = [(k, s) for k, s in old if k not in live]
        for key, _ in dead:
            self.bucket.delete(key)
        return len(dead), sum(s for _, s in dead)

    def free_bytes(self) -> int | None:
        return None


def probe_conditional_create(storage: S3Storage) -> ProbeResult:
    """Race conditional PUTs of one fresh key in the bucket (see probe.py for what it proves)."""
    key = storage.bucket.key("probe", uuid.uuid4().hex)
    try:
        return race(
            lambda body: storage.bucket.put_if_absent(key, body),
            lambda: storage.bucket.get(key),
        )
    finally:
        with contextlib.suppress(OSError):  # cleanup must not hide why the probe failed
            storage.bucket.delete(key)
