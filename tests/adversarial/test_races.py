"""Concurrent uploads of one filename against a real server process (issue 8, defects 7-8)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from tests.adversarial.conftest import Index, temp_files
from tests.server.conftest import make_wheel

pytestmark = pytest.mark.e2e
WHEEL = "racer-1.0-py3-none-any.whl"
CLIENTS = 10


def wheels(tmp_path: Path, count: int) -> list[bytes]:
    """`count` different wheels of racer 1.0 (about 400 KB each)."""
    out = []
    for n in range(count):
        (tmp_path / str(n)).mkdir()
        payload = b"#" + os.urandom(200_000).hex().encode()
        out.append(make_wheel(tmp_path / str(n), "racer", "1.0", payload=payload).read_bytes())
    return out


def race(index: Index, bodies: list[bytes]) -> list[httpx2.Response]:
    """Upload every body at once (a barrier releases the clients together)."""
    barrier = threading.Barrier(len(bodies))
    responses: list[httpx2.Response | None] = [None] * len(bodies)

    def one(n: int) -> None:
        barrier.wait()
        responses[n] = index.upload(WHEEL, bodies[n])

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r is not None for r in responses)
    return [r for r in responses if r is not None]


def test_identical_concurrent_uploads_all_get_200(
    start_index: Callable[..., Index],
    packages: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = start_index(packages)
    body = wheels(tmp_path, 1)[0]
    responses = race(index, [body] * CLIENTS)
    statuses = sorted(r.status_code for r in responses)
    stored = [r.json()["stored"] for r in responses]
    with capsys.disabled():
        print(
            f"\nidentical race: {CLIENTS} clients, statuses {statuses}, {stored.count(True)} stored"
        )
    assert statuses == [200] * CLIENTS, [r.text for r in responses]
    assert stored.count(True) == 1
    assert index.check_consistent() == {WHEEL: hashlib.sha256(body).hexdigest()}
    assert temp_files(packages) == []


def test_different_concurrent_uploads_have_one_winner(
    start_index: Callable[..., Index],
    packages: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = start_index(packages)
    bodies = wheels(tmp_path, CLIENTS)
    responses = race(index, bodies)
    statuses = sorted(r.status_code for r in responses)
    with capsys.disabled():
        print(f"\ndifferent-bytes race: {CLIENTS} clients, statuses {statuses}")
    assert statuses == [200] + [409] * (CLIENTS - 1)
    winner = next(r for r in responses if r.status_code == 200).json()["sha256"]
    assert index.check_consistent() == {WHEEL: winner}
    for loser in (r for r in responses if r.status_code == 409):
        assert loser.headers["content-type"] == "application/problem+json"
        assert "File already exists" in loser.json()["detail"]
    assert temp_files(packages) == []


def test_racing_overwrites_always_list_the_bytes_served(
    start_index: Callable[..., Index],
    packages: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = start_index(packages, "--overwrite", env={"RELEASEKIT_SERVER_POLL_INTERVAL": "0.05"})
    bodies = wheels(tmp_path, CLIENTS)
    known = {hashlib.sha256(b).hexdigest() for b in bodies}
    outcomes = []
    for _ in range(3):
        responses = race(index, bodies)
        outcomes.append(sorted(r.status_code for r in responses))
        assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
        listed = index.check_consistent()
        assert set(listed) == {WHEEL} and listed[WHEEL] in known
    # The poller has run many times meanwhile; a restart rebuilds from the cache and files.
    index.stop()
    restarted = start_index(packages)
    assert restarted.check_consistent() == listed
    with capsys.disabled():
        print(f"\noverwrite race: {CLIENTS} clients x 3 rounds, statuses {outcomes}")
    assert temp_files(packages) == []
