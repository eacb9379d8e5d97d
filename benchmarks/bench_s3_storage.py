"""Upload commit and read latency through the `Storage` interface: S3 (moto) vs the directory.

Each round stores a new 64 KiB file (spool/temp write + conditional create), stats it and reads
it back; a poll (`stamp`) with no change is timed too. Bounded: ROUNDS per backend.
Run: `.venv/bin/python benchmarks/bench_s3_storage.py` (moto in server mode on 127.0.0.1).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from releasekit.server.localstore import LocalStorage
from releasekit.server.s3 import S3Settings
from releasekit.server.s3store import S3Storage
from releasekit.server.storage import Storage

ROUNDS = 100
BODY = os.urandom(64 * 1024)
SECRET = "x"  # noqa: S105 - moto accepts any credentials


def _ms(action: Callable[[int], object]) -> tuple[float, float]:
    times = []
    for n in range(ROUNDS):
        start = time.perf_counter()
        action(n)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(ROUNDS * 0.95)]


def _store(storage: Storage, n: int) -> None:
    with storage.new_upload() as upload:
        upload.write(BODY)
        assert upload.create(f"bench{n}-1.0-py3-none-any.whl") is not None


def _measure(storage: Storage) -> dict[str, tuple[float, float]]:
    storage.prepare()
    return {
        "upload commit": _ms(lambda n: _store(storage, n)),
        "stat": _ms(lambda n: storage.stat(f"bench{n}-1.0-py3-none-any.whl")),
        "read 64 KiB": _ms(
            lambda n: b"".join(storage.read_range(f"bench{n}-1.0-py3-none-any.whl"))
        ),
        "poll (stamp)": _ms(lambda n: storage.stamp()),
    }


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.server.moto_launcher"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root,
    )  # fmt: skip
    assert server.stdin is not None and server.stdout is not None
    try:
        endpoint = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/bench", method="PUT"), timeout=10
        ).close()
        with tempfile.TemporaryDirectory() as tmp:
            settings = S3Settings(
                "bench", "b", endpoint, access_key_id="x", secret_access_key=SECRET
            )
            results = {
                "directory": _measure(LocalStorage(Path(tmp))),
                "S3 (moto)": _measure(S3Storage(settings, spool=Path(tmp) / ".spool")),
            }
    finally:
        server.stdin.close()
        server.wait(30)
        server.stdout.close()
    ops = list(results["directory"])
    print(f"{'backend':<12}" + "".join(f"{op:>24}" for op in ops))
    for name, row in results.items():
        print(
            f"{name:<12}" + "".join(f"{row[op][0]:>11.2f} / {row[op][1]:>6.2f} p95" for op in ops)
        )
    print(
        f"({ROUNDS} rounds, median / p95 ms; moto is in-memory on 127.0.0.1, so S3 here is a floor)"
    )


if __name__ == "__main__":
    main()
