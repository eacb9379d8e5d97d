"""Visibility of an upload across `--workers 3`: how long other workers serve pages without it.

For each side (this tree, and `--baseline` another source tree such as a worktree of main),
one `server run --workers 3` on an empty directory; then, UPLOADS times: upload a new wheel,
and from the moment it is acknowledged read `/simple/<p>/` (JSON) on fresh connections (the
kernel spreads them over the workers) until STREAK reads in a row list the file, or a deadline.
Per upload: the stale window (from the acknowledgement to the end of the last read that lacked
the file; 0 when none did) and the stale reads. Printed: p50/p99/max of the window, stale reads
out of all reads, and the upload round trip. Each server is stopped by PID (its process group).

    git worktree add --detach /tmp/base main
    python benchmarks/bench_workers.py --baseline /tmp/base --uploads 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import bench_server as bench
import httpx2
import server_corpus

JSON = "application/vnd.pypi.simple.v1+json"
STREAK = 12  # reads in a row that list the file: with 3 workers, all of them almost surely
DEADLINE = 10.0  # seconds per upload


@dataclass(frozen=True)
class Side:
    """The figures of one server: stale windows (ms), stale and total reads, upload times (ms)."""

    name: str
    windows: list[float]
    stale: int
    reads: int
    uploads: list[float]


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))]


def _listed(url: str, filename: str) -> bool:
    with httpx2.Client(timeout=30) as client:  # a fresh connection: maybe another worker
        page = client.get(f"{url}/simple/wlat/", headers={"accept": JSON})
    return page.status_code == 200 and any(f["filename"] == filename for f in page.json()["files"])


def _one_upload(url: str, n: int) -> tuple[float, float, int, int]:
    """(upload ms, stale window ms, stale reads, reads) for one new file."""
    filename, data = server_corpus.build_wheel("wlat", f"1.{n}", ">=3.8", [])
    form = {":action": "file_upload", "protocol_version": "1"}
    start = time.perf_counter()
    with httpx2.Client(timeout=60) as client:
        response = client.post(
            f"{url}/legacy/", data=form, files={"content": (filename, data, "application/zip")}
        )
    acked = time.perf_counter()
    if response.status_code != 200:
        raise RuntimeError(f"upload of {filename}: {response.status_code} {response.text}")
    streak = stale = reads = 0
    last_stale = acked
    while streak < STREAK and time.perf_counter() - acked < DEADLINE:
        seen = _listed(url, filename)
        reads += 1
        if seen:
            streak += 1
        else:
            streak, stale, last_stale = 0, stale + 1, time.perf_counter()
    return (acked - start) * 1000, (last_stale - acked) * 1000, stale, reads


def measure(name: str, source: Path | None, uploads: int) -> Side:
    run_dir = bench.fresh_dir(bench.WORK / f"workers-{name}")
    packages = run_dir / "packages"
    packages.mkdir()
    port = bench.free_port()
    argv = [sys.executable, "-m", "releasekit", "server", "run", str(packages), "-p", str(port)]
    argv += ["-i", "127.0.0.1", "-a", ".", "--workers", "3", "--log-level", "warning"]
    env = dict(os.environ)
    if source is not None:  # its releasekit package comes first on the path
        env["PYTHONPATH"] = str(source)
    launch = bench.Launch(argv, run_dir, env, f"releasekit from {source or 'this tree'}")
    url = f"http://127.0.0.1:{port}"
    log = run_dir / "server.log"
    windows, times, stale, reads = [], [], 0, 0
    with bench.started(launch, log) as proc:
        bench.wait_ready(proc, f"{url}/health", time.monotonic(), log, 60)
        for n in range(uploads):
            took, window, late, total = _one_upload(url, n)
            times.append(took)
            windows.append(window)
            stale, reads = stale + late, reads + total
            print(f"  {name}: upload {n + 1}/{uploads}", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return Side(name, windows, stale, reads, times)


def head_check_us(rounds: int = 200_000) -> float:
    """Microseconds per `log_moved()`: what every page and file request now adds (one stat)."""
    from releasekit.server.catalogue import Catalogue
    from releasekit.server.localstore import LocalStorage

    directory = bench.fresh_dir(bench.WORK / "workers-head")
    storage = LocalStorage(directory)
    storage.prepare()
    catalogue = Catalogue(storage)
    catalogue.load()
    start = time.perf_counter()
    for _ in range(rounds):
        catalogue.log_moved()
    return (time.perf_counter() - start) / rounds * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="source tree measured as 'before'")
    parser.add_argument("--uploads", type=int, default=30)
    args = parser.parse_args(argv)
    sides = []
    if args.baseline is not None:
        sides.append(measure("before", args.baseline, args.uploads))
    sides.append(measure("after", None, args.uploads))
    load = os.getloadavg()[0]
    print(f"\n3 workers, {args.uploads} uploads, fresh connection per read, load {load:.1f}")
    print("| side | stale window p50 / p99 / max (ms) | stale reads | upload p50 (ms) |")
    print("|---|---|---|---|")
    for side in sides:
        window = " / ".join(
            f"{v:.1f}"
            for v in (
                statistics.median(side.windows),
                _percentile(side.windows, 0.99),
                max(side.windows),
            )
        )
        print(
            f"| {side.name} | {window} | {side.stale} of {side.reads} | "
            f"{statistics.median(side.uploads):.1f} |"
        )
    print(f"\nrequest-time check of the log head (`log_moved`): {head_check_us():.2f} us per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
