"""`releasekit bundle plan + fetch` for three targets against the seed's `pip download` loop.

The upstream is a releasekit index on 127.0.0.1 (free port) holding a generated corpus: N
top-level projects (native wheels for three platforms, native + pure fallback, sdist-only,
pure), a pool of shared dependencies, one dependency needed only on Windows and one only on
aarch64. Three ways to fill an offline directory are timed:

- releasekit: `plan_bundle` + `fetch_bundle` for the three targets (one directory);
- seed: the air-gapped document's loop, `pip download --no-deps <all>` then `pip download <p>`
  for each p (it resolves for the machine it runs on);
- seed+flags: the loop as admins patch it, once per target with `--only-binary :all:
  --platform ... --python-version ...`;
- pip resolver: one `pip download` of the whole set per target with those flags (pip's
  resolver as the alternative to uv for resolution).

For each result and target, "unmet" counts the requirements (top-level and transitive, markers
evaluated for the target) that have no installable file in the directory: the same checker for
all three, reading the METADATA of the files found.

    .venv/bin/python benchmarks/bench_bundle.py --packages 50
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from releasekit.bundle.fetch import fetch_bundle
from releasekit.bundle.plan import plan_bundle
from releasekit.bundle.targets import Target, parse_target
from tests.bundle.conftest import BACKEND, wheel_bytes

TARGETS = [
    parse_target("manylinux_2_28_x86_64/3.11"),
    parse_target("musllinux_1_2_aarch64/3.12"),
    parse_target("win_amd64/3.13"),
]
NATIVE = (
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-musllinux_1_2_aarch64",
    "cp313-cp313-win_amd64",
)
PIP = [sys.executable, "-m", "pip"]
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def sdist(name: str, version: str) -> bytes:
    """An sdist with static metadata and an in-tree backend (builds offline)."""
    base = f"{name}-{version}"
    backend = BACKEND.replace("srconly", name).replace("0.5", version)
    members = {
        f"{base}/PKG-INFO": f"Metadata-Version: 2.2\nName: {name}\nVersion: {version}\n\n".encode(),
        f"{base}/pyproject.toml": f'[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        f'backend-path = ["."]\n\n[project]\nname = "{name}"\nversion = "{version}"\n'.encode(),
        f"{base}/backend.py": backend.encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in members.items():
            member = tarfile.TarInfo(path)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def corpus(directory: Path, count: int) -> list[str]:
    """Write the upstream's files; return the top-level requirement set."""

    def wheel(name: str, version: str, tag: str, requires: tuple[str, ...] = ()) -> None:
        (directory / f"{name}-{version}-{tag}.whl").write_bytes(
            wheel_bytes(name, version, tag, requires)
        )

    for lib in range(15):
        for version in ("1.0", "1.1"):
            wheel(f"lib{lib:02d}", version, "py3-none-any")
    wheel("winonly", "1.0", "py3-none-win_amd64")
    wheel("armonly", "1.0", "py3-none-any")
    top = []
    for i in range(count):
        name = f"pkg{i:02d}"
        requires = [f"lib{i % 15:02d}>=1.0", f"lib{(i * 7) % 15:02d}"]
        if i % 10 == 3:
            requires.append('winonly; sys_platform == "win32"')
        if i % 10 == 4:
            requires.append('armonly; platform_machine == "aarch64"')
        kind = i % 5
        if kind == 0:
            for tag in NATIVE:
                wheel(name, "1.0", tag, tuple(requires))
        elif kind == 1:
            wheel(name, "1.0", "cp311-cp311-manylinux_2_28_x86_64", tuple(requires))
            wheel(name, "1.0", "py3-none-any", tuple(requires))
        elif kind == 2:
            (directory / f"{name}-1.0.tar.gz").write_bytes(sdist(name, "1.0"))
        else:
            wheel(name, "1.0", "py3-none-any", tuple(requires))
        top.append(f"{name}==1.0")
    return top


def start_index(packages: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "releasekit", "server", "run", str(packages), "-p", "0",
             "-i", "127.0.0.1", "-a", "."],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (match := _LISTENING.search(log.read_text(errors="replace"))):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"index did not start:\n{log.read_text()}")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{match.group(1)}"
    while requests.get(f"{url}/health", timeout=5).status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit("index never became healthy")
        time.sleep(0.05)
    return process, url


def metadata(path: Path) -> list[str]:
    """Requires-Dist of a wheel or an sdist's PKG-INFO."""
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            raw = archive.read(name)
    else:
        with tarfile.open(path) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("/PKG-INFO"))
            handle = archive.extractfile(member)
            raw = handle.read() if handle else b""
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    return list(message.get_all("Requires-Dist") or [])


def unmet(directory: Path, requirements: list[str], target: Target) -> list[str]:
    """Requirements of the closure with no file in `directory` that `target` can install."""
    tags = set(target.tags())
    files: dict[str, list[tuple[Version, Path]]] = {}
    for path in directory.iterdir():
        if path.name.endswith(".whl"):
            name, version, _, wheel_tags = parse_wheel_filename(path.name)
            if not wheel_tags & tags:
                continue
        elif path.name.endswith(".tar.gz"):
            name, version = parse_sdist_filename(path.name)
        else:
            continue
        files.setdefault(name, []).append((version, path))
    environment = {**target.environment(), "extra": ""}
    missing, seen, queue = [], set(), [Requirement(r) for r in requirements]
    while queue:
        requirement = queue.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        key = str(requirement)
        if key in seen:
            continue
        seen.add(key)
        found = [
            (v, p)
            for v, p in files.get(canonicalize_name(requirement.name), [])
            if requirement.specifier.contains(v, prereleases=True)
        ]
        if not found:
            missing.append(key)
            continue
        queue += [Requirement(r) for r in metadata(max(found)[1])]
    return missing


def run_releasekit(requirements: list[str], index: str, out: Path) -> float:
    started = time.perf_counter()
    plan = plan_bundle(requirements, TARGETS, f"{index}/simple/")
    fetch_bundle(plan, out, jobs=4)
    return time.perf_counter() - started


def pip_download(args: list[str], index: str, out: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    subprocess.run(
        [*PIP, "download", "-q", "-d", str(out), "-i", f"{index}/simple/", *args],
        capture_output=True, env=env, check=False, timeout=300,
    )  # fmt: skip


def run_seed(requirements: list[str], index: str, out: Path) -> float:
    started = time.perf_counter()
    pip_download(["--no-deps", *requirements], index, out)
    for requirement in requirements:
        pip_download([requirement], index, out)
    return time.perf_counter() - started


def run_seed_flags(requirements: list[str], index: str, out: Path) -> float:
    started = time.perf_counter()
    for target in TARGETS:
        flags = ["--only-binary", ":all:", "--python-version", target.python]
        flags += [a for p in target.platforms() for a in ("--platform", p)]
        for requirement in requirements:
            pip_download([*flags, requirement], index, out)
    return time.perf_counter() - started


def run_pip_resolver(requirements: list[str], index: str, out: Path) -> float:
    """pip's resolver, one `pip download` of the whole set per target (the fair pip rival)."""
    started = time.perf_counter()
    for target in TARGETS:
        flags = ["--only-binary", ":all:", "--python-version", target.python]
        flags += [a for p in target.platforms() for a in ("--platform", p)]
        pip_download([*flags, *requirements], index, out)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as work:
        root = Path(work)
        (root / "upstream").mkdir()
        requirements = corpus(root / "upstream", options.packages)
        process, index = start_index(root / "upstream", root / "index.log")
        rows: list[tuple[str, float, int, list[int]]] = []
        try:
            for label, runner in (
                ("releasekit plan+fetch", run_releasekit),
                ("seed pip download loop", run_seed),
                ("seed loop + --platform flags", run_seed_flags),
                ("pip resolver, one call per target", run_pip_resolver),
            ):
                out = root / f"run{len(rows)}"
                out.mkdir(parents=True)
                seconds = runner(requirements, index, out)
                directory = out / "files" if (out / "files").is_dir() else out
                count = len([p for p in directory.iterdir() if not p.name.endswith(".metadata")])
                missing = [len(unmet(directory, requirements, t)) for t in TARGETS]
                rows.append((label, seconds, count, missing))
        finally:
            process.terminate()
            process.wait(timeout=10)
    header = (
        f"| method ({options.packages} requirements, 3 targets) | time (s) | files | "
        + " | ".join(f"unmet {t}" for t in TARGETS)
    )
    print(header + " |")
    print("|" + "---|" * (4 + len(TARGETS) - 1))
    for label, seconds, count, missing in rows:
        print(f"| {label} | {seconds:.1f} | {count} | " + " | ".join(map(str, missing)) + " |")


if __name__ == "__main__":
    main()
