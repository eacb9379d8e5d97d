"""/health latency while clients guess passwords: before and after the login hardening (issue 8).

Starts `releasekit server run` on 127.0.0.1 (free port) with one bcrypt user (cost 12 by
default, what `releasekit server user add` writes; `htpasswd -B` uses 5) and listing behind
credentials; `--guessers` processes send wrong passwords to `/simple/` as fast as they are
answered while this process times `/health` one request after another. Each run is bounded
by `--duration` seconds and `--max-requests` per client; servers are stopped by PID.

Variants: `before` runs the server from another source tree (`--before DIR`, e.g. a checkout
of the commit before the fix); `no-throttle` isolates the thread pool (`--no-auth-throttle`);
`default` is what ships (throttled guessers get 429 before any bcrypt); the last row has no
guessers at all.

    .venv/bin/python benchmarks/bench_auth.py --before /tmp/base --duration 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx2

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
# A guesser: wrong passwords in a loop, bounded by a deadline and a count; prints its statuses.
_GUESSER = """
import collections, json, os, sys, time, httpx2
url, seconds, most = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline, seen = time.monotonic() + seconds, collections.Counter()
with httpx2.Client(timeout=30) as client:
    for number in range(most):
        if time.monotonic() > deadline:
            break
        guess = f"guess-{os.getpid()}-{number}"  # never the same twice (no cache helps)
        seen[client.get(url, auth=("ci", guess)).status_code] += 1
print(json.dumps(seen))
"""


@dataclass(frozen=True)
class Result:
    """One variant's /health latencies and what the guessers were answered."""

    label: str
    health: list[float]
    guesses: dict[int, int]

    def row(self) -> str:
        ordered = sorted(self.health)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        answers = ", ".join(f"{n} x {code}" for code, n in sorted(self.guesses.items())) or "-"
        return (
            f"| {self.label} | {len(ordered)} | {p50:.2f} | {p99:.2f} | "
            f"{ordered[-1] * 1000:.1f} | {answers} |"
        )


@contextmanager
def index(source: Path, workdir: Path, passwords: Path, *args: str) -> Iterator[str]:
    """`releasekit server run` from `source`; yields its URL; stopped by PID."""
    log = workdir / f"server-{time.monotonic_ns()}.log"
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, "-m", "releasekit", "server", "run", str(workdir / "packages")]
    command += ["-p", "0", "-P", str(passwords), "-a", "list,update"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, *args], cwd=source, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while not (match := _LISTENING.search(log.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(
    url: str, guessers: int, seconds: float, most: int
) -> tuple[list[float], dict[int, int]]:
    """Time /health for `seconds` while `guessers` processes guess; their answers, summed."""
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", _GUESSER, f"{url}/simple/", str(seconds), str(most)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(guessers)
    ]
    latencies: list[float] = []
    if guessers:
        time.sleep(0.5)  # let the guessing start before timing
    deadline = time.monotonic() + seconds - 0.5
    with httpx2.Client(timeout=30) as client:
        while time.monotonic() < deadline and len(latencies) < most:
            start = time.perf_counter()
            assert client.get(f"{url}/health").status_code == 200
            latencies.append(time.perf_counter() - start)
            time.sleep(0.01)  # a health checker, not a load generator
    seen: dict[int, int] = {}
    for process in clients:
        out, _ = process.communicate(timeout=seconds + 120)
        for code, count in json.loads(out.strip() or "{}").items():
            seen[int(code)] = seen.get(int(code), 0) + count
    return latencies, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="source tree of the server before the fix")
    parser.add_argument("--guessers", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per variant")
    parser.add_argument("--max-requests", type=int, default=100_000, help="per client")
    parser.add_argument("--cost", type=int, default=12, help="bcrypt cost of the user")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        workdir = Path(tmp)
        (workdir / "packages").mkdir()
        passwords = workdir / "htpasswd"
        hashed = bcrypt.hashpw(b"ci-secret", bcrypt.gensalt(args.cost)).decode()
        passwords.write_text(f"ci:{hashed}\n", encoding="utf-8")
        variants: list[tuple[str, Path, tuple[str, ...], int]] = []
        if args.before:
            variants.append(("before (no pool, no throttle)", args.before, (), args.guessers))
        variants += [
            ("after, --no-auth-throttle", SOURCE, ("--no-auth-throttle",), args.guessers),
            ("after, default (throttled)", SOURCE, (), args.guessers),
            ("after, no guessers", SOURCE, (), 0),
        ]
        results = []
        for label, source, extra, guessers in variants:
            with index(source, workdir, passwords, *extra) as url:
                latencies, seen = measure(url, guessers, args.duration, args.max_requests)
            results.append(Result(label, latencies, seen))
            print(f"done: {label}", file=sys.stderr)
    print(
        f"/health latency while {args.guessers} clients guess passwords (bcrypt cost "
        f"{args.cost}, {args.duration:g} s per row, {os.cpu_count()} CPUs shared with the "
        "clients; indicative)\n"
    )
    print("| server | /health requests | p50 ms | p99 ms | max ms | guesses answered |")
    print("|---|---|---|---|---|---|")
    for result in results:
        print(result.row())


if __name__ == "__main__":
    main()
