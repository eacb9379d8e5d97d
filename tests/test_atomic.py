"""The one atomic writer: exact modes, nothing half-written on failure, the old file after a crash."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from releasekit.atomic import SECRET, SERVED, KeepMode, stage, write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """A umask that would hide group/other bits: the writer's modes must not depend on it."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("strict_umask")
def test_explicit_modes_are_exact_whatever_the_umask(tmp_path: Path) -> None:
    write_atomic(tmp_path / "page.html", b"<html>", mode=SERVED)
    write_atomic(tmp_path / "tokens.json", b"{}", mode=SECRET)
    assert _mode(tmp_path / "page.html") == 0o644
    assert _mode(tmp_path / "tokens.json") == 0o600
    assert (tmp_path / "page.html").read_bytes() == b"<html>"


def test_an_explicit_mode_replaces_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "pip.conf"
    target.write_text("old")
    target.chmod(0o644)
    write_atomic(target, b"new", mode=SECRET)
    assert _mode(target) == 0o600 and target.read_bytes() == b"new"


def test_keep_mode_keeps_an_existing_file_mode_and_sets_new_ones(tmp_path: Path) -> None:
    existing = tmp_path / "run.sh"
    existing.write_text("old")
    existing.chmod(0o754)
    write_atomic(existing, b"new", mode=KeepMode(SERVED))
    assert _mode(existing) == 0o754 and existing.read_bytes() == b"new"
    fresh = tmp_path / "htpasswd"
    write_atomic(fresh, b"alice:$2b$...", mode=KeepMode(SECRET))
    assert _mode(fresh) == 0o600


def test_staged_files_are_invisible_until_committed(tmp_path: Path) -> None:
    target = tmp_path / "pyproject.toml"
    target.write_text("old")
    staged = stage(target, b"new", mode=KeepMode(SERVED))
    assert target.read_text() == "old"
    assert staged.temp.parent == tmp_path and staged.temp.name.startswith(".")
    staged.discard()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]
    stage(target, b"new", mode=KeepMode(SERVED)).commit()
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


def test_an_exclusive_commit_creates_but_never_replaces(tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    stage(key, b"first", mode=SECRET).commit_new()
    assert key.read_bytes() == b"first" and _mode(key) == 0o600
    with pytest.raises(FileExistsError):
        stage(key, b"second", mode=SECRET).commit_new()
    assert key.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.key"]


def test_cache_writes_without_fsync_are_still_atomic(tmp_path: Path) -> None:
    target = tmp_path / "page.json"
    write_atomic(target, b"{}", mode=SERVED, durable=False)
    assert target.read_bytes() == b"{}" and _mode(target) == 0o644


def test_a_missing_directory_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "absent" / "file", b"data", mode=SERVED)
    assert list(tmp_path.iterdir()) == []


# A real failed write: the file-size limit makes write() fail with EFBIG part way through
# (SIGXFSZ ignored so the process sees the error instead of dying).
_FAILING_WRITE = """
import errno, resource, signal, sys
from pathlib import Path
from releasekit.atomic import SERVED, write_atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_atomic(Path(sys.argv[1]), b"n" * 1_000_000, mode=SERVED)
except OSError as exc:
    sys.exit(exc.errno)
sys.exit(0)
"""


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "catalogue.json"
    target.write_bytes(b"old")
    result = subprocess.run([sys.executable, "-c", _FAILING_WRITE, str(target)], check=False)
    assert result.returncode == errno.EFBIG
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalogue.json"]


# Rewrites the file in a loop with two large contents until killed.
_WRITE_LOOP = """
import sys
from pathlib import Path
from releasekit.atomic import SERVED, write_atomic
target = Path(sys.argv[1])
contents = [b"a" * 2_000_000, b"b" * 3_000_000]
i = 0
while True:
    write_atomic(target, contents[i % 2], mode=SERVED)
    i += 1
"""


def test_a_crash_mid_write_leaves_a_whole_old_or_new_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"a" * 2_000_000)
    writer = subprocess.Popen([sys.executable, "-c", _WRITE_LOOP, str(target)])
    try:
        deadline = time.monotonic() + 60
        while target.stat().st_size != 3_000_000:  # the writer has replaced the file at least once
            assert writer.poll() is None, "the writer died"
            assert time.monotonic() < deadline, "the writer never replaced the file"
            time.sleep(0.01)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    data = target.read_bytes()
    assert data in (b"a" * 2_000_000, b"b" * 3_000_000)
