"""Wall time, CPU and peak memory of releasekit's history paths beside commitizen and PSR.

Three operations, each at every size (default 1k, 10k and 100k commits; ~500 tags at 100k):
the next version (`version --print`), the unreleased changelog (`changelog --unreleased`, ~150
commits since the last tag) and the full changelog render, next to git's own floor, the bare
Python parse floor (`parse_floor.py`), commitizen and python-semantic-release (installed into
benchmarks/.work/peers-venv, never into .venv), with the growth from the smallest size to the
largest.

    .venv/bin/python benchmarks/bench_history.py --sizes 1k,10k,100k --runs 5 --json out.json

Every command is run once first and its output checked (the right next version, every release
in the changelog, the newest unreleased change listed, the repository unchanged), so an error
path is never timed; a failing tool shows its error in the table instead. Figures are
indicative on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import gen_history

PEERS = ("commitizen==4.19.3", "python-semantic-release==10.7.0")
VERSION_TARGET = 0.2  # seconds of `version --print` at the largest size
FLOOR_FACTOR = 1.5  # full render CPU against the bare Python parse floor
FLAT_GROWTH = 1.5  # `changelog --unreleased` from the smallest size to the largest
HERE = Path(__file__).resolve().parent
LOG_FORMAT = "--format=%H%x1f%P%x1f%B%x1e"
KEEP_WARMUP_AFTER = 5.0  # a first run this slow is not skewed by a cold cache: keep it as a sample
# PYTHONDONTWRITEBYTECODE would make every run compile releasekit's sources again: installed
# packages (the peers, releasekit from a wheel) run from byte code, so ours must too.
_DROPPED_ENV = (
    *("GH_TOKEN", "GITHUB_TOKEN", "GITLAB_TOKEN", "BITBUCKET_TOKEN"),
    "PYTHONDONTWRITEBYTECODE",
)


@dataclass(frozen=True)
class Sample:
    """One run of a command (or a short sequence of commands) and what it cost."""

    seconds: float
    cpu: float
    peak_kb: int
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False


@dataclass(frozen=True)
class Subject:
    """The repository under test and what a correct tool must find in it."""

    repo: Path
    commits: int
    releases: tuple[str, ...]
    next_version: str
    untagged: int
    newest_change: str
    """The description of the newest releasable commit: an unreleased changelog must list it."""


@dataclass(frozen=True)
class Tool:
    """A row of the table: an operation by one tool, the command lines and how to judge a run."""

    operation: str
    name: str
    argv: Callable[[Subject], list[list[str]]]
    check: Callable[[Sample, Subject], str | None]
    mutates: bool = False

    @property
    def column(self) -> str:
        return f"{self.operation}: {self.name}"


@dataclass(frozen=True)
class Cell:
    """The median time and peak memory of a tool at one size, or why there is none."""

    size: int
    column: str
    seconds: float | None = None
    cpu: float | None = None
    peak_mb: float | None = None
    runs: int = 0
    error: str | None = None

    def render(self) -> str:
        if self.error is not None:
            return self.error.replace("|", "/")[:60]
        return f"{self.seconds:.3f} s / {self.cpu:.2f} s / {self.peak_mb:.0f} MB"


def find_gnu_time() -> str | None:
    """GNU time, if it works here: it forks the command from a ~2 MB process (see `run`)."""
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "rss"
        probe = subprocess.run([gnu_time, "-f", "%M", "-o", str(report), "true"], check=False)
        ok = probe.returncode == 0 and report.read_text().strip().isdigit()
    return gnu_time if ok else None


def run(argvs: Sequence[Sequence[str]], cwd: Path, timeout: float, gnu_time: str | None) -> Sample:
    """Run the commands one after the other; wall time summed, peak RSS of the whole tree.

    Linux carries the RSS of the forking process into the child's ru_maxrss, so a command
    forked from this (large) Python process would report at least our own RSS; wrapped in GNU
    time it is forked from a tiny process instead. Without GNU time, ru_maxrss from wait4
    is the fallback and is an upper bound.
    """
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(NO_COLOR="1", TERM="dumb", GIT_TERMINAL_PROMPT="0")
    deadline = time.monotonic() + timeout
    seconds, cpu, peak_kb = 0.0, 0.0, 0
    out: list[str] = []
    err: list[str] = []
    for argv in argvs:
        if shutil.which(argv[0]) is None:
            return Sample(seconds, cpu, peak_kb, 127, "".join(out), f"{argv[0]}: not found")
        with tempfile.TemporaryDirectory() as scratch:
            report = Path(scratch) / "rss"
            wrapper = [gnu_time, "-f", "%M", "-o", str(report)] if gnu_time else []
            stdout, stderr = (
                (Path(scratch) / "out").open("w+b"),
                (Path(scratch) / "err").open("w+b"),
            )
            with stdout, stderr:
                started = time.perf_counter()
                proc = subprocess.Popen(
                    [*wrapper, *argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                    stderr=stderr, start_new_session=True,
                )  # fmt: skip
                killed = threading.Event()
                killer = threading.Timer(
                    max(deadline - time.monotonic(), 0.0), _kill_group, [proc.pid, killed]
                )
                killer.start()
                _, status, usage = os.wait4(proc.pid, 0)
                seconds += time.perf_counter() - started
                # wait4's usage of the wrapper covers the command and everything it waited for
                cpu += usage.ru_utime + usage.ru_stime
                killer.cancel()
                proc.returncode = os.waitstatus_to_exitcode(status)
                stdout.seek(0)
                stderr.seek(0)
                out.append(stdout.read().decode(errors="replace"))
                err.append(stderr.read().decode(errors="replace"))
            lines = report.read_text().split() if report.exists() else []
            if lines and lines[-1].isdigit():
                peak_kb = max(peak_kb, int(lines[-1]))
            else:
                peak_kb = max(peak_kb, usage.ru_maxrss // (1024 if sys.platform == "darwin" else 1))
        if proc.returncode != 0:
            break
    return Sample(
        seconds, cpu, peak_kb, proc.returncode, "".join(out), "".join(err), killed.is_set()
    )


def _kill_group(pid: int, killed: threading.Event) -> None:
    killed.set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def check_version(sample: Sample, subject: Subject) -> str | None:
    """The last line of stdout is the expected next version."""
    lines = sample.stdout.strip().splitlines()
    got = lines[-1].strip() if lines else ""
    return (
        None
        if got == subject.next_version
        else f"wrong version {got!r}, want {subject.next_version!r}"
    )


def check_changelog_text(text: str, subject: Subject) -> str | None:
    """Every release appears in a heading of the rendered changelog."""
    found = {
        word.lstrip("v[").rstrip("]")
        for line in text.splitlines()
        if line.startswith("#")
        for word in line.split()
    }
    missing = [version for version in subject.releases if version not in found]
    return (
        f"incomplete: {len(missing)} of {len(subject.releases)} releases missing"
        if missing
        else None
    )


def check_changelog_file(sample: Sample, subject: Subject) -> str | None:
    return check_changelog_text(
        (subject.repo / "CHANGELOG.md").read_text(encoding="utf-8"), subject
    )


def check_unreleased(sample: Sample, subject: Subject) -> str | None:
    """The newest releasable change since the last tag is listed."""
    if subject.newest_change in sample.stdout:
        return None
    return f"the newest change {subject.newest_change!r} is missing"


def check_floor(sample: Sample, subject: Subject) -> str | None:
    records = sample.stdout.count("\x1e")
    want = subject.untagged if subject.releases else subject.commits
    return None if records == want else f"git log gave {records} commits, want {want}"


def check_full_floor(sample: Sample, subject: Subject) -> str | None:
    records = sample.stdout.count("\x1e")
    return None if records == subject.commits else f"git log gave {records} commits"


NEXT, UNRELEASED, FULL = "next version", "unreleased changelog", "full changelog"


def tools(releasekit: Path, peers_bin: Path | None, changelog_args: list[str]) -> list[Tool]:
    """The rows, in table order; peers only when their venv is ready."""

    def since_tag(subject: Subject) -> list[list[str]]:
        span = f"v{subject.releases[-1]}..HEAD" if subject.releases else "HEAD"
        return [["git", "log", LOG_FORMAT, span], ["git", "for-each-ref", "refs/tags"]]

    def full_log(subject: Subject) -> list[list[str]]:
        return [["git", "log", LOG_FORMAT, "HEAD"], ["git", "for-each-ref", "refs/tags"]]

    rk, floor = str(releasekit), str(HERE / "parse_floor.py")
    rows = [
        Tool(NEXT, "git log tag..HEAD + for-each-ref", since_tag, check_floor),
        Tool(
            NEXT,
            "releasekit version --print",
            lambda s: [[rk, "version", "--print"]],
            check_version,
        ),
        Tool(
            UNRELEASED,
            "releasekit changelog --unreleased --stdout",
            lambda s: [[rk, "changelog", "--unreleased", "--stdout"]],
            check_unreleased,
        ),
        Tool(FULL, "git log (all) + for-each-ref", full_log, check_full_floor),
        Tool(
            FULL,
            "Python parse floor",
            lambda s: [[sys.executable, floor, str(s.repo)]],
            lambda sample, s: check_changelog_text(sample.stdout, s),
        ),
        Tool(
            FULL,
            "releasekit " + " ".join(changelog_args),
            lambda s: [[rk, *changelog_args]],
            lambda sample, s: check_changelog_text(sample.stdout, s),
        ),
    ]
    if peers_bin is None:
        return rows
    cz, psr = str(peers_bin / "cz"), str(peers_bin / "semantic-release")
    return [
        *rows[:2],
        Tool(NEXT, "cz bump --get-next", lambda s: [[cz, "bump", "--get-next"]], check_version),
        Tool(
            NEXT,
            "PSR --noop version --print",
            lambda s: [[psr, "--noop", "version", "--print"]],
            check_version,
        ),
        rows[2],
        Tool(
            UNRELEASED,
            "cz changelog --dry-run --incremental",
            lambda s: [[cz, "changelog", "--dry-run", "--incremental"]],
            check_unreleased,
        ),
        *rows[3:],
        Tool(
            FULL,
            "cz changelog --dry-run",
            lambda s: [[cz, "changelog", "--dry-run"]],
            lambda sample, s: check_changelog_text(sample.stdout, s),
        ),
        Tool(
            FULL, "PSR changelog (init)", lambda s: [[psr, "changelog"]], check_changelog_file, True
        ),
    ]


@dataclass(frozen=True)
class Limits:
    runs: int
    timeout: float
    cell_budget: float
    deadline: float
    gnu_time: str | None


def measure(tool: Tool, subject: Subject, size: int, limits: Limits, verbose: bool) -> Cell:
    """Verify one run of `tool`, then time up to `runs` more; the median and the highest peak."""
    if time.monotonic() > limits.deadline:
        return Cell(size, tool.column, error="skipped: global time bound")
    first, problem = _checked_run(tool, subject, limits.timeout, limits.gnu_time)
    if verbose:
        print(
            f"--- {tool.column} @ {size}: exit {first.returncode}, {first.seconds:.3f} s",
            file=sys.stderr,
        )
        print(_excerpt(first.stdout, 12) + _excerpt(first.stderr, 4), file=sys.stderr, end="")
    if problem is not None:
        return Cell(size, tool.column, error=problem)
    samples = [first] if first.seconds >= KEEP_WARMUP_AFTER or limits.runs == 1 else []
    started = time.monotonic()
    while len(samples) < limits.runs and time.monotonic() - started < limits.cell_budget:
        if time.monotonic() > limits.deadline:
            break
        sample, problem = _checked_run(tool, subject, limits.timeout, limits.gnu_time)
        if problem is not None:
            return Cell(size, tool.column, error=problem)
        samples.append(sample)
    samples = samples or [first]
    seconds = statistics.median(s.seconds for s in samples)
    cpu = statistics.median(s.cpu for s in samples)
    peak_mb = max(s.peak_kb for s in samples) / 1024
    return Cell(size, tool.column, seconds, cpu, peak_mb, len(samples))


def _checked_run(
    tool: Tool, subject: Subject, timeout: float, gnu_time: str | None
) -> tuple[Sample, str | None]:
    """Run once, judge the result, and put the repository copy back as it was."""
    sample = run(tool.argv(subject), subject.repo, timeout, gnu_time)
    try:
        if sample.timed_out:
            return sample, "timeout"
        if sample.returncode != 0:
            lines = [line for line in sample.stderr.splitlines() if line.strip()]
            return (
                sample,
                f"exit {sample.returncode}: {lines[-1].strip() if lines else 'no message'}",
            )
        problem = tool.check(sample, subject)
        if problem is None and not tool.mutates and _dirty(subject.repo):
            problem = "changed the repository"
        return sample, problem
    finally:
        _restore(subject.repo)


def _dirty(repo: Path) -> bool:
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, check=True
    )
    return bool(status.stdout.strip())


def _restore(repo: Path) -> None:
    subprocess.run(["git", "reset", "--quiet", "--hard"], cwd=repo, check=True)
    subprocess.run(["git", "clean", "-qfdx"], cwd=repo, check=True)


def _excerpt(text: str, lines: int) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines()[:lines])


def ensure_peers(venv: Path) -> Path | str:
    """The bin directory of a venv holding PEERS (created or updated), or why it could not be."""
    marker = venv / "bench-requirements.txt"
    wanted = "\n".join(PEERS) + "\n"
    if marker.is_file() and marker.read_text(encoding="utf-8") == wanted:
        return venv / "bin"
    steps = (
        [[sys.executable, "-m", "venv", str(venv)]]
        if not (venv / "bin" / "python").exists()
        else []
    )
    steps.append([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *PEERS])
    for argv in steps:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["no message"]
            return f"peers not installed: {lines[-1]}"
    marker.write_text(wanted, encoding="utf-8")
    return venv / "bin"


def prepare(size: int, seed: int, scratch: Path, commit_graph: bool = False) -> Subject:
    """A fresh copy of the cached repository for `size`, so no tool can touch the cache."""
    cached = gen_history.cached_repo(size, seed)
    history = gen_history.plan_history(size, seed)
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(cached, scratch, symlinks=True)
    if commit_graph:
        # What `git gc` leaves behind; a fresh CI clone has none, hence off by default.
        write = ["git", "commit-graph", "write", "--reachable"]
        subprocess.run(write, cwd=scratch, capture_output=True, check=True)
    tagged = [i for i, commit in enumerate(history.commits) if commit.release is not None]
    untagged = size - 1 - tagged[-1] if tagged else size
    newest = next((c for c in reversed(history.commits) if c.level > 0), None)
    newest_change = newest.message.split("\n", 1)[0].split(": ", 1)[1] if newest else ""
    return Subject(scratch, size, history.releases, history.next_version, untagged, newest_change)


def table(cells: list[Cell], subjects: dict[int, Subject], rows: list[Tool]) -> str:
    """Markdown: one row per operation and tool, one column per size, then the growth."""
    sizes = list(subjects)
    growth = f"growth {_short(sizes[0])} -> {_short(sizes[-1])} (wall / CPU)"
    header = [f"{_short(n)} commits / {len(subjects[n].releases)} tags" for n in sizes]
    lines = [
        "| operation | tool | " + " | ".join(header) + f" | {growth} |",
        "|---|---|" + "---|" * (len(sizes) + 1),
    ]
    for tool in rows:
        by_size = {cell.size: cell for cell in cells if cell.column == tool.column}
        values = [by_size[n].render() if n in by_size else "-" for n in sizes]
        lines.append(
            f"| {tool.operation} | {tool.name} | "
            + " | ".join(values)
            + f" | {_growth(by_size.get(sizes[0]), by_size.get(sizes[-1]))} |"
        )
    return "\n".join(lines)


def _growth(small: Cell | None, large: Cell | None) -> str:
    if small is None or large is None or small.seconds is None or large.seconds is None:
        return "-"
    assert small.cpu is not None and large.cpu is not None
    cpu = f"x{large.cpu / small.cpu:.1f}" if small.cpu > 0 else "-"
    return f"x{large.seconds / small.seconds:.1f} / {cpu}"


def targets_line(cells: list[Cell], subjects: dict[int, Subject], changelog_name: str) -> str:
    """The issue's three targets at the largest size, judged on CPU time (wall time follows the
    machine's load; on an idle machine the two agree within a few milliseconds)."""
    sizes = list(subjects)
    largest = sizes[-1]

    def cell(name: str, size: int = largest) -> Cell | None:
        found = next((c for c in cells if c.size == size and c.column == name), None)
        return found if found is not None and found.seconds is not None else None

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    parts = []
    version = cell(f"{NEXT}: releasekit version --print")
    if version is not None and version.cpu is not None:
        parts.append(
            f"`version --print` <= {VERSION_TARGET} s: {version.cpu:.3f} s CPU "
            f"({version.seconds:.3f} s wall), {verdict(version.cpu <= VERSION_TARGET)}"
        )
    small = cell(f"{UNRELEASED}: releasekit changelog --unreleased --stdout", sizes[0])
    large = cell(f"{UNRELEASED}: releasekit changelog --unreleased --stdout")
    if small and large and small.cpu and large.cpu is not None:
        ratio = large.cpu / small.cpu
        parts.append(
            f"`changelog --unreleased` flat (CPU growth <= x{FLAT_GROWTH}): x{ratio:.1f}, "
            f"{verdict(ratio <= FLAT_GROWTH)}"
        )
    floor, full = cell(f"{FULL}: Python parse floor"), cell(f"{FULL}: {changelog_name}")
    if floor and full and floor.cpu and full.cpu is not None:
        factor = full.cpu / floor.cpu
        parts.append(
            f"full render CPU <= {FLOOR_FACTOR}x the parse floor: {factor:.2f}x, "
            f"{verdict(factor <= FLOOR_FACTOR)}"
        )
    return f"Targets at {_short(largest)} commits: " + "; ".join(parts) + "."


def _short(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def parse_sizes(text: str) -> list[int]:
    """`1k,10k,50k` or plain numbers."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        sizes.append(int(part[:-1]) * 1000 if part.endswith("k") else int(part))
    return sizes


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: measure, print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=parse_sizes, default=[1_000, 10_000, 100_000], help="e.g. 1k,10k,100k"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per cell (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per command run")
    parser.add_argument(
        "--cell-budget", type=float, default=60.0, help="stop repeating a cell after this"
    )
    parser.add_argument("--budget", type=float, default=1800.0, help="global time bound, seconds")
    parser.add_argument("--skip-peers", action="store_true", help="only git and releasekit")
    parser.add_argument(
        "--releasekit", type=Path, default=Path(sys.executable).with_name("releasekit")
    )
    parser.add_argument(
        "--changelog-args",
        default="changelog --stdout",
        help="releasekit arguments of a full changelog render",
    )
    parser.add_argument(
        "--commit-graph", action="store_true", help="write a commit-graph first (as git gc does)"
    )
    parser.add_argument("--json", type=Path, help="also write every cell as JSON here")
    parser.add_argument("--verbose", action="store_true", help="show each command's first output")
    args = parser.parse_args(argv)

    gnu_time = find_gnu_time()
    limits = Limits(
        args.runs, args.timeout, args.cell_budget, time.monotonic() + args.budget, gnu_time
    )
    work = gen_history.WORK_DIR
    scratch = work / "scratch"
    peers = None if args.skip_peers else ensure_peers(work / "peers-venv")
    peers_bin = peers if isinstance(peers, Path) else None
    columns = tools(args.releasekit.absolute(), peers_bin, args.changelog_args.split())
    cells: list[Cell] = []
    subjects: dict[int, Subject] = {}
    for size in args.sizes:
        print(f"{_short(size)}: generating or reusing the repository", file=sys.stderr)
        subject = subjects[size] = prepare(
            size, args.seed, scratch / f"history-{size}", args.commit_graph
        )
        for tool in columns:
            cell = measure(tool, subject, size, limits, args.verbose)
            print(
                f"{_short(size)}: {tool.column}: {cell.render()} (runs: {cell.runs})",
                file=sys.stderr,
            )
            cells.append(cell)
        if isinstance(peers, str):
            print(f"peers: {peers}", file=sys.stderr)
    print(_preamble(args.runs, gnu_time, peers_bin is not None, args.commit_graph))
    print(table(cells, subjects, columns))
    changelog_name = "releasekit " + " ".join(args.changelog_args.split())
    print("\n" + targets_line(cells, subjects, changelog_name))
    if args.json:
        cells_json = json.dumps([asdict(cell) for cell in cells], indent=2)
        args.json.write_text(cells_json + "\n", encoding="utf-8")
    return 0


def _preamble(runs: int, gnu_time: str | None, with_peers: bool, commit_graph: bool) -> str:
    rss = "GNU time %M" if gnu_time else "wait4 ru_maxrss, includes this script's own RSS"
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    machine = f"{git.stdout.strip()}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    peers = f"; peers: {', '.join(PEERS)}" if with_peers else ""
    graph = "with" if commit_graph else "without"
    return (
        f"\nHistory benchmark: wall time / CPU time (user + system, median of up to {runs} runs)"
        f" / peak RSS of the process tree ({rss}); repositories {graph} a commit-graph.\n"
        f"{machine}{peers}.\n"
    )


if __name__ == "__main__":
    sys.exit(main())
