"""bcrypt checks off the event loop: a bounded thread pool, a short-lived cache, equal time.

- A check runs in a pool of `threads` threads (bcrypt releases the GIL), so wrong passwords
  never stall other requests; at most `queue_limit` checks wait, beyond that `PoolBusy`.
- A verified credential is remembered for `ttl` seconds under a BLAKE2 digest keyed with a
  random per-process key (the password is never kept); only successes are cached, and the
  cache is emptied whenever the user table is reloaded. pip fetching 100 files pays bcrypt once.
- An unknown user is checked against a dummy hash of the table's highest cost, so the answer
  takes as long as a known user's wrong password (no user enumeration by timing).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

import bcrypt

from releasekit.server.htpasswd import UserTable


class PoolBusy(Exception):
    """Too many password checks are already waiting."""


def _cost(entry: bytes) -> int:
    return int(entry[4:6])


class PasswordChecker:
    """Verifies user passwords for one app; `close()` stops its threads."""

    def __init__(
        self,
        verify: Callable[[str, bytes], bool],
        *,
        threads: int,
        ttl: float,
        clock: Callable[[], float],
        cache_size: int = 1024,
        queue_limit: int | None = None,
    ) -> None:
        self._verify, self._ttl, self._clock, self._size = verify, ttl, clock, cache_size
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="releasekit-bcrypt"
        )
        self._queue_limit = queue_limit if queue_limit is not None else 32 * threads
        self._pending = 0
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        self._table: UserTable | None = None
        self._dummies: dict[int, bytes] = {}

    def close(self) -> None:
        """Let running checks finish; start no new ones."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def cached(self, users: UserTable, user: str, password: str) -> bool:
        """True if this exact credential was verified against this table less than `ttl` ago."""
        entry = users.hashes.get(user)
        if entry is None:
            return False
        key = self._digest(user, password, entry)
        with self._lock:
            self._use(users)
            expires = self._cache.get(key)
            if expires is None:
                return False
            if expires <= self._clock():
                del self._cache[key]
                return False
            return True

    async def check(self, users: UserTable, user: str, password: str) -> bool:
        """True if `password` is `user`'s; the same work whether or not `user` exists."""
        entry = users.hashes.get(user)
        key = self._digest(user, password, entry or b"")
        with self._lock:
            self._use(users)
            if self._pending >= self._queue_limit:
                raise PoolBusy
            self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._pool, self._run, users, entry, password)
        finally:
            with self._lock:
                self._pending -= 1
        if ok and entry is not None:
            with self._lock:
                if users is self._table:
                    self._cache[key] = self._clock() + self._ttl
                    self._cache.move_to_end(key)
                    while len(self._cache) > self._size:
                        self._cache.popitem(last=False)
            return True
        return False

    def _use(self, users: UserTable) -> None:
        """Called under the lock: on a new table, forget what was verified and make its dummy."""
        if users is not self._table:
            self._table = users
            self._cache.clear()
            # Made ahead, so even the first unknown user costs one check, not a hash and a check.
            self._pool.submit(self._dummy, users)

    def _run(self, users: UserTable, entry: bytes | None, password: str) -> bool:
        if entry is not None:
            return self._verify(password, entry)
        self._verify(password, self._dummy(users))
        return False

    def _dummy(self, users: UserTable) -> bytes:
        """A hash nobody knows the password of, at the table's highest cost (made once per cost)."""
        cost = max((_cost(entry) for entry in users.hashes.values()), default=12)
        with self._lock:
            dummy = self._dummies.get(cost)
        if dummy is None:
            dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=cost))
            with self._lock:
                dummy = self._dummies.setdefault(cost, dummy)
        return dummy

    def _digest(self, user: str, password: str, entry: bytes) -> bytes:
        digest = hashlib.blake2b(key=self._key, digest_size=32)
        for part in (user.encode(), password.encode(), entry):
            digest.update(len(part).to_bytes(4, "big") + part)
        return digest.digest()
