"""A/B the index of this tree against another source tree (e.g. a worktree of main) on one corpus.

On a shared, loaded machine two runs of bench_server.py minutes apart differ by more than most
changes do. This starts both servers at once (each on its own hard-linked copy of the corpus,
2 workers, uvicorn as shipped), waits until both have indexed everything, then alternates wrk
runs A, B, A, B ... per endpoint and prints the median req/s of each side. Every server is
stopped by PID; every wait has a deadline.

    git worktree add --detach /tmp/main main
    python benchmarks/ab_server.py --baseline /tmp/main --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import bench_server as bench


def launch(name: str, source: Path | None, corpus: Path, port: int, workers: int) -> bench.Launch:
    run_dir = bench.fresh_dir(bench.WORK / f"ab-{name}")
    packages = run_dir / "packages"
    bench.link_tree(corpus, packages)
    argv = [sys.executable, "-m", "releasekit", "server", "run", str(packages), "-p", str(port)]
    argv += ["-i", "127.0.0.1", "-a", ".", "--workers", str(workers), "--log-level", "warning"]
    env = dict(os.environ)
    if source is not None:  # its releasekit package comes first on the path
        env["PYTHONPATH"] = str(source)
    return bench.Launch(argv, run_dir, env, f"releasekit from {source or 'this tree'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="source tree for side A")
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    corpus = bench.ensure_corpus(args.projects, args.versions)
    others = [p for p in corpus.projects if p not in corpus.chain] or list(corpus.projects)
    project = others[len(others) // 2]
    sides = {"A (baseline)": args.baseline.resolve(), "B (this tree)": None}
    bases: dict[str, str] = {}
    with ExitStack() as stack:
        for label, source in sides.items():
            port = bench.free_port()
            spec = launch(label[0], source, corpus.root, port, args.workers)
            log = spec.cwd / "server.log"
            begin = time.monotonic()
            proc = stack.enter_context(bench.started(spec, log))
            base = f"http://127.0.0.1:{port}"
            bench.wait_ready(proc, f"{base}/simple/{project}/", begin, log, 300)
            bases[label] = base
        for label, base in bases.items():
            print(f"waiting for {label} to index ...", file=sys.stderr, flush=True)
            bench.settle(base, time.monotonic())
        rps: dict[tuple[str, str], list[float]] = {}
        targets = {label: bench.endpoints(base, project) for label, base in bases.items()}
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for endpoint in targets["B (this tree)"]:
                for label in bases:
                    target = targets[label][endpoint]
                    if target is None:
                        continue
                    bench.wrk(*target, 1.0, args.connections, 2)  # warm-up
                    load = bench.wrk(*target, args.duration, args.connections, 2)
                    rps.setdefault((endpoint, label), []).append(load.rps)
    print(
        f"{corpus.files} files, p = {project}; wrk -t2 -c{args.connections} "
        f"-d{args.duration:g}s, {args.rounds} alternating rounds; {os.cpu_count()} CPUs shared "
        "with wrk and other work: indicative figures (median req/s, [all runs])\n"
    )
    labels = list(bases)
    print("| endpoint | " + " | ".join(labels) + " | B/A |")
    print("|---" * (len(labels) + 2) + "|")
    for endpoint in targets["B (this tree)"]:
        cells, medians = [], []
        for label in labels:
            runs = rps.get((endpoint, label), [])
            median = statistics.median(runs) if runs else float("nan")
            medians.append(median)
            cells.append(f"{median:,.0f} [{', '.join(f'{r:,.0f}' for r in runs)}]")
        print(f"| {endpoint} | " + " | ".join(cells) + f" | {medians[1] / medians[0]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
