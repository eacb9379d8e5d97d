"""End to end on S3: `releasekit server run --storage s3://...` replicas on one moto bucket.

Real server processes (port 0), real uploads over HTTP, pip installing from another replica, a
10-way race of different bytes for one filename spread over the replicas, a replica killed with
SIGKILL and restarted, and the start-up refusals.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx2
import pytest

from tests.server.conftest import make_wheel
from tests.server.moto_s3 import MotoS3

pytestmark = pytest.mark.e2e

JSON = "application/vnd.pypi.simple.v1+json"
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
DEADLINE = 60.0
# How long a replica may take to show an accepted upload before the test fails. The figure the
# issue asks for (<= 2 s) is measured and printed (`-s`), not asserted: a loaded CI machine
# must not turn a slow poll into a red build.
VISIBLE_WITHIN = 30.0


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]

    def files(self, project: str) -> dict[str, str]:
        response = httpx2.get(f"{self.url}/simple/{project}/", headers={"accept": JSON})
        if response.status_code == 404:
            return {}
        return {f["filename"]: f["hashes"]["sha256"] for f in response.json()["files"]}


def _command(packages: Path, *args: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "releasekit"), "server", "run", str(packages),
        "-p", "0", "-i", "127.0.0.1", "-a", ".", *args,
    ]  # fmt: skip


@pytest.fixture
def start_replica(tmp_path: Path, moto_s3: MotoS3) -> Iterator[Callable[[str], Replica]]:
    started: list[Replica] = []

    def start(storage: str) -> Replica:
        n = len(started)
        log = tmp_path / f"replica-{n}.log"
        env = {**os.environ, **moto_s3.env(), "TMPDIR": str(tmp_path / f"tmp-{n}")}
        (tmp_path / f"tmp-{n}").mkdir(exist_ok=True)
        with log.open("ab") as sink:
            process = subprocess.Popen(
                _command(tmp_path / f"local-{n}", "--storage", storage),
                stdout=sink, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + DEADLINE
        while not (match := _LISTENING.search(log.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise AssertionError(f"replica did not start:\n{log.read_text()}")
            time.sleep(0.05)
        replica = Replica(f"http://127.0.0.1:{match.group(1)}", process)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        if replica.process.poll() is None:
            replica.process.terminate()
            try:
                replica.process.wait(15)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()


def _upload(replica: Replica, path: Path, data: bytes | None = None) -> int:
    content = path.read_bytes() if data is None else data
    response = httpx2.post(
        f"{replica.url}/legacy/",
        data={":action": "file_upload", "protocol_version": "1"},
        files={"content": (path.name, content, "application/octet-stream")},
        timeout=60,
    )
    return response.status_code


def _shows(replica: Replica, project: str, expected: dict[str, str]) -> bool:
    return replica.files(project) == expected


def _lists_one(replica: Replica, project: str) -> bool:
    return len(replica.files(project)) == 1


def _until(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.05)


def test_three_replicas_on_one_bucket(
    moto_s3: MotoS3, start_replica: Callable[[str], Replica], tmp_path: Path
) -> None:
    storage = f"s3://{moto_s3.create_bucket()}/index"
    replicas = [start_replica(storage) for _ in range(3)]
    dists = tmp_path / "dists"
    dists.mkdir()
    # Uploads spread over the replicas, each then visible on every replica.
    wheels = [make_wheel(dists, f"lib-{n}", "1.0") for n in range(6)]
    for n, wheel in enumerate(wheels):
        assert _upload(replicas[n % 3], wheel) == 200
    acknowledged = time.monotonic()
    for n, wheel in enumerate(wheels):
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        for replica in replicas:
            _until(partial(_shows, replica, f"lib-{n}", {wheel.name: digest}), VISIBLE_WITHIN)
    print(  # the figure for the closing note
        f"6 uploads on all 3 replicas {time.monotonic() - acknowledged:.2f} s after the last 200"
    )
    # Ten uploads of one filename with different bytes, racing across the replicas.
    racers = []
    for n in range(10):
        directory = tmp_path / f"race-{n}"
        directory.mkdir()
        racers.append(make_wheel(directory, "raced", "1.0", payload=f"# {n}\n".encode()))
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda n: _upload(replicas[n % 3], racers[n]), range(10)))
    assert sorted(codes) == [200] + [409] * 9, codes
    winner = racers[codes.index(200)]
    digest = hashlib.sha256(winner.read_bytes()).hexdigest()
    for replica in replicas:
        _until(partial(_shows, replica, "raced", {winner.name: digest}), VISIBLE_WITHIN)
        got = httpx2.get(f"{replica.url}/packages/{winner.name}", timeout=30)
        assert hashlib.sha256(got.content).hexdigest() == digest
    # pip installs from another replica than the one the file went to.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-cache-dir", "--index-url",
         f"{replicas[1].url}/simple/", "lib-0", "raced"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    # A replica killed with SIGKILL comes back with everything.
    os.kill(replicas[2].process.pid, signal.SIGKILL)
    replicas[2].process.wait()
    assert _upload(replicas[0], make_wheel(dists, "late", "1.0")) == 200
    again = start_replica(storage)
    assert set(again.files("raced")) == {winner.name}
    assert again.files("late") and again.files("lib-5")


def _try_upload(replica: Replica, path: Path) -> int:
    """An upload to a replica that may be killed meanwhile: 0 when the connection broke."""
    try:
        return _upload(replica, path)
    except httpx2.TransportError:
        return 0


def test_fifty_uploads_a_race_pip_and_a_sigkill_mid_upload(
    moto_s3: MotoS3, start_replica: Callable[[str], Replica], tmp_path: Path
) -> None:
    storage = f"s3://{moto_s3.create_bucket()}/index"
    replicas = [start_replica(storage) for _ in range(3)]
    seed = tmp_path / "seed"
    seed.mkdir()
    assert _upload(replicas[0], make_wheel(seed, "base", "1.0")) == 200
    jobs: list[tuple[int, Path]] = []
    for n in range(40):
        directory = tmp_path / f"d{n}"
        directory.mkdir()
        jobs.append((n % 3, make_wheel(directory, f"many-{n}", "1.0", payload=b"#" * n)))
    for n in range(10):
        directory = tmp_path / f"r{n}"
        directory.mkdir()
        jobs.append((n % 3, make_wheel(directory, "contested", "1.0", payload=f"#{n}".encode())))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    with ThreadPoolExecutor(12) as pool:
        pip = pool.submit(
            subprocess.run,
            [str(venv / "bin" / "pip"), "install", "--no-cache-dir", "--index-url",
             f"{replicas[1].url}/simple/", "base"],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
        )  # fmt: skip
        futures = [pool.submit(_try_upload, replicas[r], path) for r, path in jobs]
        os.kill(replicas[2].process.pid, signal.SIGKILL)  # while uploads are in flight
        codes = [f.result() for f in futures]
        installed = pip.result()
    assert installed.returncode == 0, installed.stdout + installed.stderr
    replicas[2].process.wait()
    replicas[2] = start_replica(storage)
    accepted = [path for (_, path), code in zip(jobs, codes, strict=True) if code == 200]
    contested = [
        code for (_, path), code in zip(jobs, codes, strict=True) if "contested" in str(path)
    ]
    assert contested.count(200) <= 1 and set(contested) <= {0, 200, 409}
    assert set(codes) <= {0, 200, 409} and codes.count(200) >= 13  # replicas 0 and 1 took theirs
    restarted = time.monotonic()
    for path in accepted:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        project = path.name.split("-1.0")[0].replace("_", "-")
        for replica in replicas:
            _until(partial(_shows, replica, project, {path.name: digest}), VISIBLE_WITHIN)
    print(  # the figure for the closing note
        f"{len(accepted)} accepted uploads on all 3 replicas "
        f"{time.monotonic() - restarted:.2f} s after the killed replica was back"
    )
    # Nothing lost or duplicated, every visible file hashes like some bytes that were sent.
    sent = {hashlib.sha256(p.read_bytes()).hexdigest() for _, p in jobs}
    won = [p for (_, p), c in zip(jobs, codes, strict=True) if "contested" in str(p) and c == 200]
    for replica in replicas:
        _until(partial(_lists_one, replica, "contested"), VISIBLE_WITHIN)
        listed = replica.files("contested")
        assert set(listed.values()) <= sent  # exactly one winner, and its bytes are real
        if won:
            assert listed == {won[0].name: hashlib.sha256(won[0].read_bytes()).hexdigest()}
        for name, digest in listed.items():
            body = httpx2.get(f"{replica.url}/packages/{name}", timeout=30).content
            assert hashlib.sha256(body).hexdigest() == digest


def test_start_up_refusals_name_the_fix(moto_s3: MotoS3, tmp_path: Path) -> None:
    env = {**os.environ, **moto_s3.env()}
    for storage, words in (
        ("s3://Bad_Bucket/x", "not a valid bucket name"),
        ("file:///srv", "s3://bucket/prefix"),
    ):
        result = subprocess.run(
            _command(tmp_path / "p", "--storage", storage),
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert result.returncode != 0 and words in result.stderr + result.stdout
    unreachable = {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    result = subprocess.run(
        _command(tmp_path / "p", "--storage", "s3://some-bucket/x"),
        capture_output=True, text=True, env=unreachable, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "s3://some-bucket/x" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
