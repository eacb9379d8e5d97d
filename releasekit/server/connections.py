"""Connection limits uvicorn lacks: a header deadline, a connection cap, the descriptor limit.

uvicorn (0.54) starts no timer when a connection is made, and `timeout_keep_alive` is re-armed
only after a response and cancelled by any byte received. So a client that connects and
never sends a byte, or sends one byte of headers every few seconds (slowloris), holds a file
descriptor forever; ~1000 of them exhaust the usual limit of 1024 and every client is refused.
`limit_concurrency` does not help: it answers 503 only once a request's headers have arrived.

The protocol classes here wrap uvicorn's and add:
- a header deadline: a connection must complete its request headers within `header_timeout`
  of connecting or of its previous response, or it is closed;
- a body idle limit: while a request body is coming, a gap of `body_timeout` without a byte
  closes the connection (unless uvicorn paused reading because the app is behind);
- a connection cap below the descriptor limit: past it, the connection idle the longest
  (no request in progress) is closed to make room, so real clients always get in; requests
  in progress are never cut.

They are module-level classes configured by `configure()` because uvicorn pickles its config
for worker processes; each worker calls `configure()` again (see `cli.app_from_env`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("releasekit.server")

# Descriptors kept free for what requests open (package files, the catalogue, logs, bcrypt).
MIN_HEADROOM = 64
WARN_EVERY = 10.0  # seconds between warnings about the connection cap


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else 1 << 20
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        logger.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


def connection_cap(open_files: int, wanted: int) -> int:
    """The most connections to hold: `wanted` (0 = no own limit), below the descriptor limit."""
    room = max(1, open_files - max(MIN_HEADROOM, open_files // 8))
    return min(wanted, room) if wanted > 0 else room


class _Guard:
    """The deadline and cap logic shared by both protocol classes (a mixin)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    cap: int = 1 << 20
    # Provided by uvicorn's protocol classes:
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    connections: set[Any]
    cycle: Any
    flow: Any

    _deadline: asyncio.TimerHandle | None = None
    _idle_since: float = 0.0
    # Per process (one event loop): evictions since the last warning, and when that was.
    evicted: int = 0
    warned_at: float = float("-inf")

    def _arm(self, timeout: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _await_request(self) -> None:
        """Idle from now: the next request's headers must be complete within header_timeout."""
        self._idle_since = self.loop.time()
        self._arm(self.header_timeout)

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._idle():
            self.transport.close()
        elif self._receiving_body():
            if self.flow.read_paused:  # the app is behind, not the client: wait on
                self._arm(self.body_timeout)
            else:
                self.transport.close()  # the app sees a disconnect: one info line

    def _idle(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _receiving_body(self) -> bool:
        return not self._idle() and bool(self.cycle.more_body)

    def _make_room(self) -> None:
        if len(self.connections) <= self.cap:
            return
        idle = [
            c for c in self.connections if c is not self and isinstance(c, _Guard) and c._idle()
        ]
        victim: Any = min(idle, key=lambda c: c._idle_since) if idle else self
        victim.transport.close()
        _Guard.evicted += 1
        now = self.loop.time()
        if now - _Guard.warned_at >= WARN_EVERY:  # a flood of connections is not a flood of logs
            logger.warning(
                "%d connections (cap %d): closed %d idle the longest since the last warning",
                len(self.connections),
                self.cap,
                _Guard.evicted,
            )
            _Guard.warned_at, _Guard.evicted = now, 0


def _guarded(base: type[Any]) -> type[Any]:
    class Guarded(_Guard, base):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._await_request()
            self._make_room()

        def data_received(self, data: bytes) -> None:
            before = self.cycle
            super().data_received(data)
            if self._receiving_body():  # each chunk of a body restarts its clock
                self._arm(self.body_timeout)
            elif self.cycle is not before:  # a request's headers (and body) are complete
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._idle() and not self.transport.is_closing():
                self._await_request()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return Guarded


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is in the server extra
    GuardedHttpTools: type[asyncio.Protocol] | None = None
else:
    GuardedHttpTools = _guarded(HttpToolsProtocol)
    GuardedHttpTools.__qualname__ = GuardedHttpTools.__name__ = "GuardedHttpTools"
GuardedH11: type[asyncio.Protocol] = _guarded(H11Protocol)
GuardedH11.__qualname__ = GuardedH11.__name__ = "GuardedH11"


def configure(header_timeout: float, body_timeout: float, cap: int) -> type[asyncio.Protocol]:
    """Set the deadlines and cap for this process; the protocol class to give uvicorn."""
    protocol = GuardedHttpTools or GuardedH11
    for cls in (GuardedHttpTools, GuardedH11):
        if cls is not None:
            cls.header_timeout = header_timeout  # type: ignore[attr-defined]
            cls.body_timeout = body_timeout  # type: ignore[attr-defined]
            cls.cap = cap  # type: ignore[attr-defined]
    return protocol
