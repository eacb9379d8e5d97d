"""Generate a deterministic corpus of small, valid wheels and sdists for index-server benchmarks.

P projects x V versions, each release a pure-Python wheel (``py3-none-any``, METADATA 2.1,
WHEEL, RECORD with real hashes) and an sdist (``.tar.gz`` with PKG-INFO 2.2 and a
pyproject.toml). The first ~30 projects form a dependency chain (``chain-00`` requires
``chain-01`` ... ``chain-29``) so that ``pip install chain-00`` resolves and installs 30 packages.
Same arguments, same bytes: archive timestamps are fixed and file mtimes (which servers show as
the upload time) are derived from the release index.

    python benchmarks/server_corpus.py OUT_DIR --projects 1000 --versions 10
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import os
import random
import re
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

CHAIN_LENGTH = 30
# Archive members and file mtimes start here (2024-01-01T00:00:00Z): fixed, so output is stable.
EPOCH = 1_704_067_200
ZIP_DATE = (2024, 1, 1, 0, 0, 0)
WORDS_A = ("acme", "blue", "core", "data", "fast", "grid", "hyper", "iron", "jet", "kilo")
WORDS_B = ("auth", "cache", "codec", "db", "http", "log", "parser", "queue", "sched", "utils")
PYTHONS = (">=3.8", ">=3.9", ">=3.10", ">=3.8,<4")


@dataclass(frozen=True)
class Corpus:
    """What `generate` wrote: the directory, project names (normalized) and the chain."""

    root: Path
    projects: tuple[str, ...]
    chain: tuple[str, ...]
    versions: tuple[str, ...]
    files: int


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_names(projects: int, seed: int = 0) -> list[tuple[str, str]]:
    """(display name, normalized name) pairs: the chain first, then generated names."""
    rng = random.Random(seed)
    chain = min(CHAIN_LENGTH, projects)
    names = [(f"chain-{i:02d}", f"chain-{i:02d}") for i in range(chain)]
    for i in range(chain, projects):
        a, b = rng.choice(WORDS_A), rng.choice(WORDS_B)
        # Every seventh display name is non-normalized so servers must normalize it.
        display = f"{a.title()}.{b}_{i:04d}" if i % 7 == 0 else f"{a}-{b}-{i:04d}"
        names.append((display, normalize(display)))
    return names


def version_strings(versions: int) -> list[str]:
    """Increasing PEP 440 versions: 1.0.0, 1.1.0, 1.2.0, 1.3.0, 2.0.0, ..."""
    return [f"{i // 4 + 1}.{i % 4}.0" for i in range(versions)]


def _metadata(version_field: str, name: str, version: str, python: str, requires: list[str]) -> str:
    lines = [
        f"Metadata-Version: {version_field}",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: Benchmark corpus package {name} {version}",
        f"Requires-Python: {python}",
        *(f"Requires-Dist: {r}" for r in requires),
    ]
    return "\n".join(lines) + "\n\n"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()},{len(data)}"


def build_wheel(name: str, version: str, python: str, requires: list[str]) -> tuple[str, bytes]:
    """Return (filename, bytes) of a valid pure-Python wheel."""
    dist = normalize(name).replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    members = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{info}/METADATA": _metadata("2.1", name, version, python, requires).encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: releasekit-bench-corpus\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},{_record_hash(data)}\n" for path, data in members.items())
    members[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            entry = zipfile.ZipInfo(path, ZIP_DATE)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return f"{dist}-{version}-py3-none-any.whl", buffer.getvalue()


def build_sdist(name: str, version: str, python: str, requires: list[str]) -> tuple[str, bytes]:
    """Return (filename, bytes) of a PEP 625 sdist with PKG-INFO 2.2 and a pyproject.toml."""
    dist = normalize(name).replace("-", "_")
    top = f"{dist}-{version}"
    deps = ", ".join(f'"{r}"' for r in requires)
    pyproject = (
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\nrequires-python = "{python}"\n'
        f"dependencies = [{deps}]\n"
    )
    members = {
        f"{top}/PKG-INFO": _metadata("2.2", name, version, python, requires).encode(),
        f"{top}/pyproject.toml": pyproject.encode(),
        f"{top}/{dist}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, data in members.items():
            entry = tarfile.TarInfo(path)
            entry.size, entry.mtime, entry.mode = len(data), EPOCH, 0o644
            archive.addfile(entry, io.BytesIO(data))
    # gzip.compress with mtime=0 keeps the header (and so the sha256) stable across runs.
    return f"{top}.tar.gz", gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


def _requirements(
    index: int, names: list[tuple[str, str]], chain: int, rng: random.Random
) -> list[str]:
    if index < chain:
        return [names[index + 1][1]] if index + 1 < chain else []
    # Other projects depend on one or two earlier non-chain projects, with a marker sometimes.
    earlier = [n for _, n in names[chain:index]]
    picks = rng.sample(earlier, k=min(len(earlier), rng.randint(0, 2)))
    return [f'{p}>=0.1; python_version >= "3.8"' if i else f"{p}>=0.1" for i, p in enumerate(picks)]


def generate(path: Path, projects: int, versions: int = 10, seed: int = 0) -> Corpus:
    """Write projects x versions wheels and sdists into the flat directory `path`."""
    if projects < 1 or versions < 1:
        raise ValueError("projects and versions must both be at least 1")
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{path} is not empty; remove it or pick another directory")
    path.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = project_names(projects, seed)
    chain = min(CHAIN_LENGTH, projects)
    release_versions = version_strings(versions)
    files = 0
    for index, (display, _) in enumerate(names):
        requires = _requirements(index, names, chain, rng)
        for v_index, version in enumerate(release_versions):
            # Older releases accept older Pythons; every release installs on 3.11.
            python = PYTHONS[0] if v_index < versions // 2 else rng.choice(PYTHONS)
            mtime = EPOCH + v_index * 86_400 * 7 + index * 60
            for build in (build_wheel, build_sdist):
                filename, data = build(display, version, python, requires)
                target = path / filename
                target.write_bytes(data)
                os.utime(target, (mtime, mtime))
                files += 1
    return Corpus(
        root=path,
        projects=tuple(n for _, n in names),
        chain=tuple(n for _, n in names[:chain]),
        versions=tuple(release_versions),
        files=files,
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: generate a corpus and print a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="empty or missing directory to fill")
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        corpus = generate(args.out, args.projects, args.versions, args.seed)
    except (FileExistsError, ValueError) as exc:
        parser.error(str(exc))
    elapsed = time.monotonic() - started
    print(
        f"wrote {corpus.files} files ({len(corpus.projects)} projects x {args.versions} versions, "
        f"chain {corpus.chain[0]}..{corpus.chain[-1]}) to {corpus.root} in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
