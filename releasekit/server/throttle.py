"""Failed-login throttling: exponential backoff per client address and per user name.

After `free` failures a key is blocked for `base` seconds, and every further failure doubles
the block up to `max_delay`; a key's failures are forgotten `forget_after` seconds after its
last one, and a success clears the address. While blocked, a request is refused with 429
before any password is checked, so a guesser gets about `free + log2(max_delay)` tries per
address and `forget_after` window.

The per-user limit (for guessing spread over many addresses) allows more failures and blocks
for at most `user_max_delay`, and never blocks an address that logged in as that user within
`forget_after`: a guesser cannot lock the real user out of the machines they already use,
and a new machine waits at most `user_max_delay`.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# Keys remembered per table: an attacker rotating addresses evicts the oldest, which only
# forgets failures (it never blocks anybody), while memory stays bounded.
MAX_KEYS = 10_000


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures are free and how long the blocks after them last."""

    enabled: bool = True
    free: int = 5
    base: float = 1.0
    max_delay: float = 300.0
    user_free: int = 20
    user_max_delay: float = 30.0
    forget_after: float = 900.0


@dataclass
class _Failures:
    count: int
    last: float
    blocked_until: float


class _Table:
    """Failure counts by key with exponential blocks; bounded, oldest evicted first."""

    def __init__(self, free: int, base: float, max_delay: float, forget_after: float) -> None:
        self._free, self._base, self._max, self._forget = free, base, max_delay, forget_after
        self._items: OrderedDict[str, _Failures] = OrderedDict()

    def retry_after(self, key: str, now: float) -> float:
        entry = self._items.get(key)
        return 0.0 if entry is None else max(0.0, entry.blocked_until - now)

    def fail(self, key: str, now: float) -> float:
        entry = self._items.pop(key, None)
        if entry is None or now - entry.last > self._forget:
            entry = _Failures(0, now, now)
        entry.count += 1
        entry.last = now
        if entry.count >= self._free:
            delay = self._base * 2.0 ** min(entry.count - self._free, 62)
            entry.blocked_until = now + min(delay, self._max)
        self._items[key] = entry
        while len(self._items) > MAX_KEYS:
            self._items.popitem(last=False)
        return max(0.0, entry.blocked_until - now)

    def clear(self, key: str) -> None:
        self._items.pop(key, None)


class Throttle:
    """Per-address and per-user failure tables; thread-safe; the clock is injectable."""

    def __init__(self, policy: ThrottlePolicy, clock: Callable[[], float]) -> None:
        self.policy, self._clock = policy, clock
        self._lock = threading.Lock()
        self._addresses = _Table(policy.free, policy.base, policy.max_delay, policy.forget_after)
        self._users = _Table(
            policy.user_free, policy.base, policy.user_max_delay, policy.forget_after
        )
        self._good: OrderedDict[tuple[str, str], float] = OrderedDict()

    def retry_after(self, address: str, user: str | None) -> int:
        """Whole seconds to wait before trying again (0: go ahead and check the password)."""
        if not self.policy.enabled:
            return 0
        now = self._clock()
        with self._lock:
            wait = self._addresses.retry_after(_network(address), now)
            if user is not None and not self._known_good(user, address, now):
                wait = max(wait, self._users.retry_after(user, now))
        return math.ceil(wait)

    def failure(self, address: str, user: str | None) -> float:
        """Count a wrong password (or an unknown token) from `address` for `user`; returns the
        seconds the address is now blocked for (0: not blocked)."""
        if not self.policy.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            blocked = self._addresses.fail(_network(address), now)
            if user is not None:
                self._users.fail(user, now)
        return blocked

    def success(self, address: str, user: str) -> None:
        """A verified password: the address starts afresh and is known-good for `user`."""
        if not self.policy.enabled:
            return
        now = self._clock()
        with self._lock:
            self._addresses.clear(_network(address))
            self._good.pop((user, address), None)
            self._good[(user, address)] = now
            while len(self._good) > MAX_KEYS:
                self._good.popitem(last=False)

    def _known_good(self, user: str, address: str, now: float) -> bool:
        when = self._good.get((user, address))
        return when is not None and now - when <= self.policy.forget_after


def _network(address: str) -> str:
    """The throttled unit: an IPv4 address, or the /64 of an IPv6 one (one host's usual share)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # a name (a test client, a unix socket): itself
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
