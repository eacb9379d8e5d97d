"""Backup and restore of a packages directory: scripts/backup-packages.sh and restore-packages.sh
against the seed's own commands (`tar -czf` of the directory; `rsync -a` when installed).

    python benchmarks/bench_backup.py [--files 10000]

Prints one table: wall time of each, on a corpus of small valid wheels and sdists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import server_corpus

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="about this many files")
    args = parser.parse_args(argv)
    releasekit = str(Path(sys.executable).parent / "releasekit")
    env = {**os.environ, "RELEASEKIT": releasekit}
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as work:
        base = Path(work)
        data = base / "data"
        corpus = server_corpus.generate(
            data / "packages", projects=max(1, args.files // 20), versions=10
        )
        rows: list[tuple[str, float]] = []
        archive = base / "backup.tar.gz"
        rows.append(
            (
                "scripts/backup-packages.sh",
                timed(
                    ["bash", str(ROOT / "scripts/backup-packages.sh"), str(data), str(archive)], env
                ),
            )
        )
        rows.append(
            (
                "scripts/restore-packages.sh (incl. reindex)",
                timed(
                    [
                        "bash",
                        str(ROOT / "scripts/restore-packages.sh"),
                        str(archive),
                        str(base / "r"),
                    ],
                    env,
                ),
            )
        )
        rows.append(
            (
                "seed: tar -czf data/",
                timed(["tar", "-czf", str(base / "seed.tgz"), "-C", work, "data"]),
            )
        )
        if shutil.which("rsync"):
            rows.append(
                (
                    "seed: rsync -a packages/",
                    timed(["rsync", "-a", f"{data}/packages/", str(base / "rs")]),
                )
            )
        print(
            f"{corpus.files} files ({corpus.files // 2} wheels + sdists), {os.cpu_count()} CPUs (shared)"
        )
        print()
        print("| step | wall time |")
        print("|---|---|")
        for name, seconds in rows:
            print(f"| {name} | {seconds:.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
