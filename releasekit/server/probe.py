"""The start-up probe: does this storage honour conditional creates ("store only if absent")?

Several replicas are only correct if, of racing creates of one name, exactly one wins (the claim
of an upload and every change-log entry rely on it). Some S3 implementations have accepted several
concurrent `If-None-Match: *` PUTs, or ignore the header. The probe races `RACERS` creates of one
fresh name, checks that exactly one won and that the stored bytes are the winner's, then that a
later create of the same name loses. Passing proves little about a rare race (a store that checks
then writes without a lock passes most rounds, moto among them); failing proves the store unsafe.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from releasekit.errors import IndexServerError

RACERS = 8


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw: the number of winners, whether the bytes match, a late create's fate."""

    winners: int
    stored_is_winners: bool
    late_create_refused: bool

    @property
    def honoured(self) -> bool:
        return self.winners == 1 and self.stored_is_winners and self.late_create_refused


def race(
    create: Callable[[bytes], bool], read: Callable[[], bytes], racers: int = RACERS
) -> ProbeResult:
    """Race `racers` creates of one name with distinct bodies; `read` returns what is stored."""
    bodies = [f"probe {n} {os.urandom(8).hex()}".encode() for n in range(racers)]
    barrier = threading.Barrier(racers)

    def one(n: int) -> bool:
        barrier.wait()
        return create(bodies[n])

    with ThreadPoolExecutor(racers) as pool:
        won = list(pool.map(one, range(racers)))
    winners = [n for n, w in enumerate(won) if w]
    stored = read()
    late = create(b"late")
    return ProbeResult(
        winners=len(winners),
        stored_is_winners=len(winners) == 1 and stored == bodies[winners[0]],
        late_create_refused=not late,
    )


def link_create(target: Path) -> Callable[[bytes], bool]:
    """A conditional create on a local filesystem: write a private temp file, `link` it."""

    def create(data: bytes) -> bool:
        temp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        temp.write_bytes(data)
        try:
            os.link(temp, target)  # atomic: fails with EEXIST if the name exists
        except FileExistsError:
            return False
        finally:
            temp.unlink()
        return True

    return create


def refuse_unless_honoured(result: ProbeResult, where: str, setting: str) -> None:
    """The start-up refusal of multi-replica mode on a store that failed the probe."""
    if result.honoured:
        return
    seen = (
        f"{result.winners} of {RACERS} racing creates won"
        if result.winners != 1
        else "a create after the race was accepted"
        if not result.late_create_refused
        else "the stored bytes are not the winner's"
    )
    raise IndexServerError(
        f"{where} does not honour conditional creates ({seen}); several replicas on it would "
        "lose or duplicate uploads",
        hint=f"run a single replica with {setting}, or use a store that supports If-None-Match: *",
    )


def probe_directory(directory: Path) -> ProbeResult:
    """The same race on a local filesystem (`link`, atomic on POSIX filesystems; not on every NFS)."""
    target = directory / f".releasekit-probe-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        return race(link_create(target), target.read_bytes)
    finally:
        target.unlink(missing_ok=True)
