"""`--workers 3` on one directory: the workers share the change log like replicas share a bucket.

Every check opens fresh connections (uvicorn hands each to one worker), asks `/health` which
worker it is (`X-Releasekit-Worker`), then reads pages on that same connection.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.server.conftest import launch_server, make_wheel, stop_server, wait_for

pytestmark = pytest.mark.e2e

JSON = "application/vnd.pypi.simple.v1+json"
# A poll far longer than any test step: followers can only see a change by the request-time
# check of the log head, never by polling.
SLOW_POLL = {"RELEASEKIT_SERVER_POLL_INTERVAL": "60"}


class Workers:
    """A `server run --workers 3` process and what the tests ask of it."""

    def __init__(self, packages: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.packages, self.log = packages, log
        self.process, self.url = launch_server(packages, log, "--workers", "3", "-a", ".", env=env)

    def upload(self, wheel: Path) -> httpx2.Response:
        data = {":action": "file_upload", "protocol_version": "1"}
        files = {"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")}
        with httpx2.Client(timeout=60) as client:
            return client.post(f"{self.url}/legacy/", data=data, files=files)

    def look(self, project: str) -> tuple[str, set[str]]:
        """On one fresh connection: which worker, and the files its JSON page lists."""
        with httpx2.Client(timeout=60) as client:
            worker = client.get(f"{self.url}/health").headers["x-releasekit-worker"]
            page = client.get(f"{self.url}/simple/{project}/", headers={"accept": JSON})
            if page.status_code == 404:
                return worker, set()
            assert page.status_code == 200, page.text
            return worker, {f["filename"] for f in page.json()["files"]}

    def on_disk(self, project: str) -> set[str]:
        """The files the page copy on disk lists (what nginx serves)."""
        path = self.packages / ".releasekit" / "simple" / project / "index.v1_json"
        try:
            return {f["filename"] for f in json.loads(path.read_bytes())["files"]}
        except FileNotFoundError:
            return set()

    def metric(self, name: str) -> float:
        text = httpx2.get(f"{self.url}/metrics").text
        match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def stop(self) -> None:
        stop_server(self.process)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Workers]]:
    started: list[Workers] = []
    yield started
    for server in started:
        server.stop()


def _wheels(directory: Path, project: str, count: int, prefix: str = "1") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [make_wheel(directory, project, f"{prefix}.{n}") for n in range(count)]


def test_an_upload_is_on_every_worker_at_the_next_request(
    workers: list[Workers], packages: Path, tmp_path: Path
) -> None:
    server = Workers(packages, tmp_path / "server.log", SLOW_POLL)
    workers.append(server)
    expected: set[str] = set()
    answered: dict[str, int] = {}
    for wheel in _wheels(tmp_path / "dists", "alpha", 10):
        response = server.upload(wheel)
        assert response.status_code == 200, response.text
        expected.add(wheel.name)
        for _ in range(9):
            worker, listed = server.look("alpha")
            answered[worker] = answered.get(worker, 0) + 1
            assert expected <= listed, f"worker {worker} lacks {expected - listed}"
        assert expected <= server.on_disk("alpha")
        with httpx2.Client() as client:  # the file and its PEP 658 metadata, wherever asked
            assert client.get(f"{server.url}/packages/{wheel.name}").status_code == 200
            assert client.get(f"{server.url}/packages/{wheel.name}.metadata").status_code == 200
    assert len(answered) >= 2, f"only one worker answered: {answered}"
    print(f"\nanswers per worker: {sorted(answered.values())}")


def test_concurrent_uploads_never_leave_an_acknowledged_file_off_a_page(
    workers: list[Workers], packages: Path, tmp_path: Path
) -> None:
    server = Workers(packages, tmp_path / "server.log", SLOW_POLL)
    workers.append(server)
    acknowledged: set[str] = set()
    lock = threading.Lock()
    failures: list[str] = []
    done = threading.Event()
    reads = [0]

    def uploader(n: int) -> None:
        for wheel in _wheels(tmp_path / f"u{n}", "beta", 8, prefix=str(n + 1)):
            response = server.upload(wheel)
            if response.status_code != 200:
                failures.append(f"upload {wheel.name}: {response.status_code} {response.text}")
                continue
            with lock:
                acknowledged.add(wheel.name)

    def reader() -> None:
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline:
            with lock:
                before = set(acknowledged)
            worker, listed = server.look("beta")
            disk = server.on_disk("beta")
            with lock:
                reads[0] += 1
            if not before <= listed:
                failures.append(f"worker {worker} page lacks {sorted(before - listed)}")
            if not before <= disk:
                failures.append(f"the page on disk lacks {sorted(before - disk)}")

    uploaders = [threading.Thread(target=uploader, args=(n,)) for n in range(3)]
    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in uploaders + readers:
        thread.start()
    for thread in uploaders:
        thread.join()
    done.set()
    for thread in readers:
        thread.join()
    assert failures == []
    assert len(acknowledged) == 24
    for _ in range(6):
        assert server.look("beta")[1] == acknowledged
    print(f"\n{reads[0]} page reads during 24 concurrent uploads, none lacked a file")


def test_a_worker_killed_with_sigkill_is_replaced_and_nothing_is_lost(
    workers: list[Workers], packages: Path, tmp_path: Path
) -> None:
    server = Workers(packages, tmp_path / "server.log", SLOW_POLL)
    workers.append(server)
    wheels = _wheels(tmp_path / "dists", "gamma", 12)
    for wheel in wheels[:4]:
        assert server.upload(wheel).status_code == 200
    seen = {server.look("gamma")[0] for _ in range(12)}
    victim = int(sorted(seen)[0])
    os.kill(victim, signal.SIGKILL)
    expected = {w.name for w in wheels[:4]}
    for wheel in wheels[4:]:
        assert server.upload(wheel).status_code == 200
        expected.add(wheel.name)
        for _ in range(4):
            worker, listed = server.look("gamma")
            assert worker != str(victim)
            assert expected <= listed, f"worker {worker} lacks {expected - listed}"
    # uvicorn's supervisor starts a new worker; it catches up from the cache and the log.
    fresh: set[str] = set()

    def replaced() -> bool:
        worker, listed = server.look("gamma")
        assert expected <= listed, f"worker {worker} lacks {expected - listed}"
        if worker not in seen:
            fresh.add(worker)
        return bool(fresh)

    wait_for(replaced, timeout=60)
    assert server.process.poll() is None


def test_a_fresh_directory_is_indexed_once_not_once_per_worker(
    workers: list[Workers], packages: Path, tmp_path: Path
) -> None:
    count = 300
    for n in range(count):
        make_wheel(packages, f"proj{n % 60}", f"1.{n}")
    server = Workers(packages, tmp_path / "server.log")
    workers.append(server)

    def indexed() -> bool:
        return server.metric("releasekit_files_indexed_total") >= count

    wait_for(indexed, timeout=120)
    # Every worker has the leader's results (followers apply them from the log).
    answered: set[str] = set()

    def all_listed() -> bool:
        worker, listed = server.look("proj7")
        answered.add(worker)
        return len(listed) == count // 60

    for _ in range(9):
        wait_for(all_listed, timeout=30)
    assert server.metric("releasekit_files_indexed_total") == count
    finished = server.log.read_text().count("indexing finished")
    assert finished == 1, server.log.read_text()[-3000:]
    server.stop()
    again = Workers(packages, tmp_path / "again.log")
    workers.append(again)
    assert again.look("proj7")[1] and again.metric("releasekit_files_indexed_total") == 0
    print(f"\n{count} files indexed once by 3 workers; {len(answered)} workers answered")


def test_when_the_leader_is_killed_another_worker_takes_over_its_indexing(
    workers: list[Workers], packages: Path, tmp_path: Path
) -> None:
    server = Workers(packages, tmp_path / "server.log")
    workers.append(server)
    leaders = re.findall(r"process (\d+) indexes new files", server.log.read_text())
    assert len(leaders) == 1, server.log.read_text()
    os.kill(int(leaders[0]), signal.SIGKILL)
    make_wheel(packages, "delta", "1.0")  # copied in by hand: only a leader indexes it

    def taken_over() -> bool:
        found = re.findall(r"process (\d+) indexes new files", server.log.read_text())
        return len(found) == 2 and found[1] != leaders[0]

    wait_for(taken_over, timeout=60)
    for _ in range(6):
        wait_for(lambda: server.look("delta")[1] == {"delta-1.0-py3-none-any.whl"}, timeout=30)
