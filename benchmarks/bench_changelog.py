"""CPU and wall time of releasekit's changelog commands against the bare Python parse floor.

    .venv/bin/python benchmarks/bench_changelog.py --sizes 1k,10k,100k --runs 3

The floor is the least any Python tool can do for a full changelog: one `git log -z` of the
whole history streamed into Python, split into commits, and one conventional-header match per
subject (no footers, no grouping, no output). Rows: `changelog --unreleased --stdout` (must stay
flat: it reads `<last tag>..HEAD` only) and `changelog --stdout` (every release rendered; target
<= 1.5x the floor in CPU). CPU is user + system of the whole process tree (git included), from
`getrusage(RUSAGE_CHILDREN)`; time is the median of `--runs`. Repositories come from
gen_history.py (cached in benchmarks/.work/repos). The history benchmark with the peers
(commitizen, python-semantic-release) is bench_history.py. Figures are indicative on a shared
machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gen_history

FLOOR = r"""
import re, subprocess, sys
header = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(?:\([^()\r\n]+\))?!?: \S.*")
proc = subprocess.Popen(["git", "-C", sys.argv[1], "log", "-z", "--format=%H %P%n%B", "HEAD"],
                        stdout=subprocess.PIPE)
matched = pending = 0
rest = b""
while chunk := proc.stdout.read1(1 << 20):
    records = (rest + chunk).split(b"\0")
    rest = records.pop()
    for record in records:
        head, _, message = record.decode("utf-8", "surrogateescape").partition("\n")
        sha, *parents = head.split()
        if header.fullmatch(message.partition("\n")[0]):
            matched += 1
proc.wait()
print(matched)
"""
TARGET = 1.5


def measure(argv: list[str], runs: int, timeout: float) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of the process tree) over `runs` runs after a warm-up."""
    walls: list[float] = []
    cpus: list[float] = []
    for index in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=timeout)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if index:  # the first run warms the page cache
            walls.append(wall)
            cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus)


def parse_sizes(text: str) -> list[int]:
    return [
        int(float(part.lower().rstrip("k")) * (1000 if "k" in part.lower() else 1))
        for part in text.split(",")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=parse_sizes, default=[1_000, 10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    python = sys.executable
    rows: dict[str, Callable[[Path], list[str]]] = {
        "bare Python parse floor (whole log)": lambda repo: [python, "-c", FLOOR, str(repo)],
        "releasekit changelog --unreleased": lambda repo: [
            python, "-m", "releasekit", "-C", str(repo), "changelog", "--unreleased", "--stdout",
        ],
        "releasekit changelog (full render)": lambda repo: [
            python, "-m", "releasekit", "-C", str(repo), "changelog", "--stdout",
        ],
    }  # fmt: skip
    results: dict[str, dict[int, tuple[float, float]]] = {name: {} for name in rows}
    for size in args.sizes:
        repo = gen_history.cached_repo(size, seed=0)
        print(f"{size} commits: {repo}", file=sys.stderr)
        for name, command in rows.items():
            results[name][size] = measure(command(repo), args.runs, args.timeout)
    heads = [f"{size // 1000}k commits" for size in args.sizes]
    print("| wall / CPU (median) | " + " | ".join(heads) + f" | growth {heads[0]} -> {heads[-1]} |")
    print("|---|" + "---|" * (len(heads) + 1))
    for name, cells in results.items():
        shown = [f"{cells[s][0]:.3f} s / {cells[s][1]:.3f} s" for s in args.sizes]
        first, last = cells[args.sizes[0]][1], cells[args.sizes[-1]][1]
        print(f"| {name} | " + " | ".join(shown) + f" | x{last / first:.1f} CPU |")
    floor = results["bare Python parse floor (whole log)"]
    full = results["releasekit changelog (full render)"]
    ratios = ", ".join(f"{s // 1000}k {full[s][1] / floor[s][1]:.2f}x" for s in args.sizes)
    print(f"\nfull render CPU / floor CPU (target <= {TARGET}x): {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
