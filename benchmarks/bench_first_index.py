"""First full index of a fresh packages directory, and RSS per process after a load.

A corpus of small but real wheels and sdists (`server_corpus.py`: 2,000 projects x 5 versions x
wheel + sdist = 20,000 files by default) is hard-linked into a fresh directory; a real
`releasekit server run` starts on it (127.0.0.1, OS-assigned port) and `/ready` is polled until
`indexing.done == indexing.total` (with several workers: that many answers in a row, since each
worker answers for itself). Then a bounded load of project pages (HTML and JSON) and files runs,
and the RSS of every process of the server is read from /proc. pypiserver serves the same
directory as the peer: seconds from start to its first `/simple/` page (its whole-directory
listing), and its RSS after the same load.

    python benchmarks/bench_first_index.py                      # 20k files, 1 and 2 workers
    python benchmarks/bench_first_index.py --projects 200 --workers 1 --skip-peers
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from bench_server import (
    WORK,
    ensure_corpus,
    ensure_peers_venv,
    link_tree,
    peer_versions,
    process_tree,
)

LISTENING = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")
PYPISERVER_LISTENING = re.compile(rb"Listening on http://127\.0\.0\.1:")
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class Row:
    """What one server run measured; None where not measured."""

    label: str
    indexed_s: float | None = None
    cpu_s: float | None = None
    first_page_s: float | None = None
    rss_indexed: list[float] = field(default_factory=list)
    rss_loaded: list[float] = field(default_factory=list)
    requests: int = 0
    load_s: float = 0.0
    note: str = ""


def rss_per_process(root: int) -> list[float]:
    """VmRSS in MiB of each process in the tree (master first), skipping ones that are gone."""
    sizes = []
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            sizes.append(int(match.group(1)) / 1024)
    return sizes


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of every live process in the tree (from /proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def listening_port(pid: int, limit: float = 60.0) -> int:
    """The TCP port a process listens on (it bound port 0 and does not say which it got),
    polled until `limit` seconds: it may print its banner before it binds."""
    deadline = time.monotonic() + limit
    while (port := _listening(pid)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} listens on no TCP port after {limit:.0f} s")
        time.sleep(0.02)
    return port


def _listening(pid: int) -> int | None:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            return int(fields[1].rsplit(":", 1)[1], 16)
    return None


def wait_port(proc: subprocess.Popen[bytes], log: Path, pattern: re.Pattern[bytes]) -> int:
    """The port the server printed (it bound port 0), polled with a 60 s deadline."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if match := pattern.search(log.read_bytes()):
            return int(match.group(1)) if match.groups() else 0
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: see {log}")
        time.sleep(0.02)
    raise RuntimeError(f"server printed no port within 60 s: see {log}")


def wait_indexed(url: str, workers: int, limit: float) -> None:
    """Poll /ready until done == total > 0, `workers * 3` answers in a row (bounded)."""
    deadline, in_a_row, last = time.monotonic() + limit, 0, ""
    with httpx2.Client(timeout=10.0) as client:
        while time.monotonic() < deadline:
            try:
                indexing = client.get(f"{url}/ready").json().get("indexing") or {}
            except (httpx2.TransportError, ValueError):
                indexing = {}
            done, total = indexing.get("done", -1), indexing.get("total", 0)
            in_a_row = in_a_row + 1 if total > 0 and done == total else 0
            if in_a_row >= workers * 3:
                return
            now = f"{done}/{total}"
            if now != last and sys.stderr.isatty():
                print(f"  indexing {now}", file=sys.stderr, end="\r")
            last = now
            time.sleep(0.1)
    raise RuntimeError(f"indexing did not finish within {limit:.0f} s (last {last})")


def load(url: str, projects: tuple[str, ...], files: list[str], count: int, limit: float) -> int:
    """Bounded load: `count` requests at most (or `limit` s): every project page (HTML and JSON)
    in turn, then files. Returns the number of requests made; any non-200 is an error."""
    deadline, made = time.monotonic() + limit, 0
    targets = [(f"/simple/{p}/", "text/html") for p in projects]
    targets += [(f"/simple/{p}/", JSON_TYPE) for p in projects]
    targets += [(f"/packages/{f}", "*/*") for f in files]
    with httpx2.Client(timeout=30.0) as client:
        for path, accept in targets[:count]:
            if time.monotonic() > deadline:
                break
            response = client.get(url + path, headers={"accept": accept})
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} answered {response.status_code}")
            made += 1
    return made


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server we started (its process group, by its PID), then SIGKILL."""
    for sig in (15, 9):
        if proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            continue


def run_releasekit(source: Path, workers: int, args: argparse.Namespace, corpus_files: list[str],
                   projects: tuple[str, ...], tree: str = "") -> Row:  # fmt: skip
    """One fresh directory, one server: seconds until indexed, RSS after indexing and load.
    `tree`: another checkout of releasekit to run instead (PYTHONPATH), for a before/after."""
    packages = WORK / f"first-index-{workers}w{'-' + Path(tree).name if tree else ''}" / "packages"
    link_tree(source, packages)
    log = packages.parent / "server.log"
    argv = [sys.executable, "-m", "releasekit", "server", "run", str(packages), "-p", "0"]
    argv += ["-i", "127.0.0.1", "-a", ".", "--workers", str(workers), "--log-level", "info"]
    row = Row(f"releasekit{' (' + tree + ')' if tree else ''}, {workers} worker(s)")
    env = {**os.environ, "PYTHONPATH": tree} if tree else None
    with log.open("wb") as sink:
        started = time.monotonic()
        # cwd outside the checkout: `python -m` puts the cwd first on sys.path.
        proc = subprocess.Popen(
            argv, stdout=sink, stderr=sink, start_new_session=True, env=env, cwd=packages.parent
        )
    try:
        url = f"http://127.0.0.1:{wait_port(proc, log, LISTENING)}"
        wait_indexed(url, workers, args.limit)
        row.indexed_s = time.monotonic() - started
        row.cpu_s = cpu_seconds(proc.pid)
        time.sleep(1.0)  # let the background save settle before reading RSS
        row.rss_indexed = rss_per_process(proc.pid)
        began = time.monotonic()
        row.requests = load(url, projects, corpus_files, args.requests, args.limit)
        row.load_s = time.monotonic() - began
        row.rss_loaded = rss_per_process(proc.pid)
    finally:
        stop(proc)
    return row


def run_pypiserver(source: Path, args: argparse.Namespace, corpus_files: list[str],
                   projects: tuple[str, ...]) -> Row:  # fmt: skip
    """pypiserver (cached-dir backend) on the same files: start -> first /simple/ page."""
    venv = ensure_peers_venv()
    version = peer_versions(venv, ("pypiserver",)).get("pypiserver", "?")
    packages = WORK / "first-index-pypiserver" / "packages"
    link_tree(source, packages)
    log = packages.parent / "server.log"
    argv = [str(venv / "bin" / "pypi-server"), "run", "-p", "0", "-i", "127.0.0.1", "-a", "."]
    argv += ["-P", ".", "--disable-fallback", "--backend", "cached-dir", "--server", "wsgiref"]
    argv += [str(packages)]
    row = Row(f"pypiserver {version} (cached-dir, wsgiref, 1 process)")
    with log.open("wb") as sink:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=sink, stderr=sink, start_new_session=True)
    try:
        wait_port(proc, log, PYPISERVER_LISTENING)  # it prints the port it was given: 0
        port = listening_port(proc.pid)
        with httpx2.Client(timeout=args.limit) as client:
            response = client.get(f"http://127.0.0.1:{port}/simple/")
            if response.status_code != 200:
                raise RuntimeError(f"pypiserver /simple/ answered {response.status_code}")
        row.first_page_s = time.monotonic() - started
        row.rss_indexed = rss_per_process(proc.pid)
        began = time.monotonic()
        count = min(args.requests, args.peer_requests)
        row.requests = load(f"http://127.0.0.1:{port}", projects, corpus_files, count, args.limit)
        row.load_s = time.monotonic() - began
        row.rss_loaded = rss_per_process(proc.pid)
    finally:
        stop(proc)
    return row


def _mib(values: list[float]) -> str:
    return " + ".join(f"{v:.0f}" for v in values) + " MiB" if values else "n/a"


def render(rows: list[Row], files: int) -> str:
    """A Markdown table, one row per server run."""
    lines = [
        f"First index of a fresh directory of {files} files; RSS per process (master first)",
        "",
        "| server | indexed (done == total) | CPU until then | first /simple/ "
        "| RSS after indexing | load (requests / s) | RSS after load |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        indexed = f"{row.indexed_s:.1f} s" if row.indexed_s is not None else "n/a"
        first = f"{row.first_page_s:.1f} s" if row.first_page_s is not None else "n/a"
        cpu = f"{row.cpu_s:.1f} s" if row.cpu_s is not None else "n/a"
        lines.append(
            f"| {row.label} | {indexed} | {cpu} | {first} | {_mib(row.rss_indexed)} "
            f"| {row.requests} / {row.load_s:.1f} s | {_mib(row.rss_loaded)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--requests", type=int, default=6000, help="load requests per server")
    parser.add_argument("--peer-requests", type=int, default=200, help="cap for pypiserver")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds per wait or load")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument(
        "--baseline", default="", help="another releasekit checkout to run first (before/after)"
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    corpus = ensure_corpus(args.projects, args.versions)
    print(f"corpus: {corpus.files} files in {corpus.root} ({time.monotonic() - began:.1f} s)")
    files = sorted(p.name for p in corpus.root.iterdir())
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        for tree in ([args.baseline] if args.baseline else []) + [""]:
            rows.append(run_releasekit(corpus.root, workers, args, files, corpus.projects, tree))
            print(render(rows[-1:], corpus.files).splitlines()[-1], flush=True)
    if not args.skip_peers:
        rows.append(run_pypiserver(corpus.root, args, files, corpus.projects))
    print()
    print(render(rows, corpus.files))
    print(f"\nload avg {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs (shared machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
