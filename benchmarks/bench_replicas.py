"""Replicas on one bucket: `/simple/<p>/` throughput with 1 vs 3 replicas, and upload latency
on S3 vs the local directory.

moto runs in server mode on 127.0.0.1 (its own process, OS-assigned port; see
tests/server/moto_s3.py). Replicas are real `releasekit server run --storage s3://...` processes
on OS-assigned ports. The bucket is filled through the upload API, every replica is waited for
until it lists every project, then wrk loads `/simple/<p>/` (a different project per replica)
for a fixed time: one wrk on one replica, then one wrk per replica at once, connections split.
Uploads: ROUNDS new wheels, one at a time, to a replica on the bucket and to a server on a local
directory; median and p95 of the whole POST. Every wait has a deadline; every process we start
is stopped by its PID. The storage layer alone is timed by bench_s3_storage.py.

    python benchmarks/bench_replicas.py --projects 50 --duration 5
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx2
from bench_server import Load, wrk
from server_corpus import build_wheel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.server.moto_s3 import MotoS3, start_moto  # noqa: E402 - the repository root first

LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
DEADLINE = 120.0


@dataclass
class Server:
    """One `releasekit server run` we started."""

    url: str
    process: subprocess.Popen[bytes]


def start_server(work: Path, name: str, env: dict[str, str], *args: str) -> Server:
    """`releasekit server run` on an OS-assigned port; its port read from its log (deadline)."""
    log = work / f"{name}.log"
    (work / f"tmp-{name}").mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "releasekit", "server", "run", str(work / f"local-{name}")]
    argv += ["-p", "0", "-i", "127.0.0.1", "-a", ".", *args]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **env, "TMPDIR": str(work / f"tmp-{name}")},
        )  # fmt: skip
    deadline = time.monotonic() + DEADLINE
    while not (match := LISTENING.search(log.read_text(errors="replace"))):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"{name} did not start: see {log}")
        time.sleep(0.05)
    return Server(f"http://127.0.0.1:{match.group(1)}", process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s: only the process we started, by its PID."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def upload(server: Server, filename: str, data: bytes) -> float:
    """POST one file; seconds taken. Anything but 200 stops the benchmark."""
    started = time.perf_counter()
    response = httpx2.post(
        f"{server.url}/legacy/",
        data={":action": "file_upload", "protocol_version": "1"},
        files={"content": (filename, data, "application/octet-stream")},
        timeout=60,
    )
    if response.status_code != 200:
        raise RuntimeError(f"upload of {filename} answered {response.status_code}")
    return time.perf_counter() - started


def lists_all(server: Server, projects: list[str]) -> bool:
    answer = httpx2.get(f"{server.url}/simple/", headers={"accept": JSON_TYPE}, timeout=10)
    listed = {p["name"] for p in answer.json()["projects"]} if answer.status_code == 200 else set()
    return set(projects) <= listed


def wait_until(what: str, condition: object, limit: float = DEADLINE) -> None:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {limit:.0f} s")
        time.sleep(0.1)


def load(servers: list[Server], projects: list[str], args: argparse.Namespace) -> Load:
    """One bounded wrk per server at once (connections split); req/s summed, worst latencies."""
    each = max(1, args.connections // len(servers))
    urls = [f"{s.url}/simple/{p}/" for s, p in zip(servers, projects, strict=False)]
    with ThreadPoolExecutor(len(servers)) as pool:
        runs = list(pool.map(lambda url: wrk(url, "text/html", args.duration, each, 1), urls))
    return Load(
        sum(r.rps for r in runs),
        max(r.p50_ms for r in runs),
        max(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
    )


def upload_latencies(server: Server, rounds: int, tag: str) -> tuple[float, float]:
    """Median and p95 ms of `rounds` uploads of new small wheels, one at a time."""
    times = []
    for n in range(rounds):
        filename, data = build_wheel(f"latency-{tag}", f"1.0.{n}", ">=3.8", [])
        times.append(upload(server, filename, data) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def run(args: argparse.Namespace, moto: MotoS3, work: Path) -> list[str]:
    env = moto.env()
    storage = f"s3://{moto.create_bucket()}/bench"
    first = start_server(work, "replica-0", env, "--storage", storage)
    servers = [first]
    try:
        projects = [f"bench-{i:03d}" for i in range(args.projects)]
        began = time.monotonic()
        for project in projects:
            for version in ("1.0.0", "1.1.0"):
                upload(first, *build_wheel(project, version, ">=3.8", []))
        filled = time.monotonic() - began
        wait_until("replica-0 lists every project", lambda: lists_all(first, projects))
        one = load(servers, projects, args)
        for n in (1, 2):
            started = time.monotonic()
            servers.append(start_server(work, f"replica-{n}", env, "--storage", storage))
            wait_until(f"replica-{n} catches up", lambda: lists_all(servers[-1], projects))
            print(f"replica-{n} caught up in {time.monotonic() - started:.1f} s", flush=True)
        three = load(servers, projects, args)
        s3_latency = upload_latencies(first, args.rounds, "s3")
    finally:
        for server in servers:
            stop(server.process)
    local = start_server(work, "local", {})
    try:
        local_latency = upload_latencies(local, args.rounds, "local")
    finally:
        stop(local.process)
    rows = [
        f"{args.projects * 2} files in {args.projects} projects uploaded in {filled:.1f} s; "
        f"wrk {args.connections} connections in all, {args.duration:g} s, HTML",
        "",
        "| `/simple/<p>/` on moto S3 | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for label, result in (("1 replica", one), ("3 replicas", three)):
        rows.append(
            f"| {label} | {result.rps:,.0f} | {result.p50_ms:.2f} | {result.p99_ms:.2f} "
            f"| {result.errors} |"
        )
    rows += [
        "",
        f"| upload of a new wheel ({args.rounds} rounds, one at a time) | median ms | p95 ms |",
        "|---|---|---|",
        f"| local directory | {local_latency[0]:.1f} | {local_latency[1]:.1f} |",
        f"| S3 (moto, in memory: a floor) | {s3_latency[0]:.1f} | {s3_latency[1]:.1f} |",
        "",
        f"3 vs 1 replica: x{three.rps / one.rps:.2f}; load avg {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs shared by wrk, moto and the replicas",
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=50, help="uploads timed per backend")
    args = parser.parse_args(argv)
    process, moto = start_moto()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-replicas-") as work:
            rows = run(args, moto, Path(work))
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()  # the launcher stops at EOF
        process.wait(30)
        process.stdout.close()
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
