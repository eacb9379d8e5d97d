"""Memory and time to refuse hostile archives: releasekit's bounded readers beside the stdlib.

The peer column is what the index used before issue 8 and what most Python tools use to read
an sdist or a wheel: `tarfile` (Warehouse's sdist check, the old releasekit reader) and
`zipfile`. Each case runs in a fresh process; the figure is the peak RSS growth during the
read (ru_maxrss after minus before) and the wall time. Archives are built once under
benchmarks/.work/hostile/.

    .venv/bin/python benchmarks/bench_hostile_archives.py
    .venv/bin/python benchmarks/bench_hostile_archives.py --long-name-mib 64
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import zipfile
from pathlib import Path

WORK = Path(__file__).parent / ".work" / "hostile"
BLOCK = 512
METADATA = b"Metadata-Version: 2.2\nName: bomb\nVersion: 1.0\n\n"

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
which, path = sys.argv[1], Path(sys.argv[2])
import tarfile, zipfile
from releasekit.server.metadata import parse_filename, read_metadata
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    if which == "releasekit":
        read_metadata(path, parse_filename(path.name))
    elif path.name.endswith(".tar.gz"):
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                pass
    else:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    outcome = "accepted"
except Exception as exc:
    outcome = "refused" if which == "releasekit" else type(exc).__name__
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "seconds": seconds, "mib": (peak - base) / 1024}))
"""


def _header(name: bytes, size: int, typeflag: bytes) -> bytes:
    header = bytearray(BLOCK)
    header[0:100] = name.ljust(100, b"\0")
    header[100:124] = b"0000644\x000000000\x000000000\x00"
    header[124:136] = f"{size:011o}\0".encode()
    header[136:148] = b"14000000000\0"
    header[148:156] = b" " * 8
    header[156:157] = typeflag
    header[257:265] = b"ustar\x0000"
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    return bytes(header)


def long_header_tar(path: Path, mib: int, typeflag: bytes) -> Path:
    """An sdist whose first member is a GNU long name ('L') or PAX ('x') header of `mib` MiB."""
    if path.exists():
        return path
    size = mib * 1024 * 1024
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(_header(b"././@LongLink", size, typeflag))
        first = b""
        if typeflag == b"x":  # one PAX record spanning the whole header
            first = f"{size} path=".encode()
            out.write(first)
        chunk = b"a" * (1024 * 1024)
        left = size - len(first) - (1 if typeflag == b"x" else 0)
        while left > 0:
            out.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
        if typeflag == b"x":
            out.write(b"\n")
        out.write(b"\0" * (-size % BLOCK))
        out.write(_header(b"bomb-1.0/PKG-INFO", len(METADATA), b"0"))
        out.write(METADATA + b"\0" * (-len(METADATA) % BLOCK) + b"\0" * BLOCK * 2)
    return path


def zeros_tar(path: Path, mib: int) -> Path:
    """An sdist with one member of `mib` MiB of zeros (a ratio bomb)."""
    if path.exists():
        return path
    size = mib * 1024 * 1024
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(_header(b"bomb-1.0/PKG-INFO", len(METADATA), b"0"))
        out.write(METADATA + b"\0" * (-len(METADATA) % BLOCK))
        out.write(_header(b"bomb-1.0/zeros", size, b"0"))
        chunk = bytes(1024 * 1024)
        for _ in range(mib):
            out.write(chunk)
        out.write(b"\0" * BLOCK * 2)
    return path


def many_entries_zip(path: Path, entries: int) -> Path:
    """A wheel with `entries` empty members."""
    if path.exists():
        return path
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("bomb-1.0.dist-info/METADATA", METADATA)
        for n in range(entries):
            archive.writestr(zipfile.ZipInfo(f"e/{n}", (2024, 1, 1, 0, 0, 0)), b"")
    return path


def measure(which: str, path: Path) -> dict[str, object]:
    """Run one read in a fresh process; its outcome, seconds and peak RSS growth (MiB)."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, which, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        return {"outcome": f"crashed ({done.returncode})", "seconds": 0.0, "mib": 0.0}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-name-mib", type=int, default=256)
    parser.add_argument("--zip-entries", type=int, default=200_000)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    mib = args.long_name_mib
    print(f"building the archives in {WORK} ...", file=sys.stderr)
    cases = [
        (f"GNU long name of {mib} MiB", long_header_tar(WORK / f"bomb-1.0.L{mib}.tar.gz", mib, b"L")),
        (f"PAX header of {mib} MiB", long_header_tar(WORK / f"bomb-1.0.x{mib}.tar.gz", mib, b"x")),
        ("member of 1 GiB of zeros", zeros_tar(WORK / "bomb-1.0.zeros.tar.gz", 1024)),
        (f"{args.zip_entries} zip entries", many_entries_zip(
            WORK / f"bomb-1.0.{args.zip_entries}-py3-none-any.whl", args.zip_entries)),
    ]  # fmt: skip
    print(
        "\nRefusing hostile archives: peak RSS growth and wall time, each read in a fresh "
        "process (2 CPUs shared with other work: indicative figures)\n"
    )
    print("| archive | file size | releasekit | stdlib tarfile / zipfile (old reader) |")
    print("|---|---|---|---|")
    for label, path in cases:
        # The archives carry distinct names on disk; read them under a valid dist filename.
        named = path.with_name("bomb-1.0.tar.gz" if path.name.endswith(".tar.gz") else
                               "bomb-1.0-py3-none-any.whl")  # fmt: skip
        named.unlink(missing_ok=True)
        named.symlink_to(path.name)
        cells = []
        for which in ("releasekit", "stdlib"):
            result = measure(which, named)
            cells.append(
                f"{result['outcome']}, {float(str(result['mib'])):.1f} MiB, "
                f"{float(str(result['seconds'])):.2f} s"
            )
        named.unlink()
        size = path.stat().st_size
        print(f"| {label} | {size / 1024:.0f} KiB | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
