"""A full disk (issue 8, defect 10): a small tmpfs mounted by the test (root only).

A refused write is a 507 problem and leaves nothing; a write that completed on a nearly full
disk is answered 200 and listed even when the caches (sidecar, pages) cannot be written;
/ready and /metrics report the low disk.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from tests.adversarial.conftest import Index, temp_files
from tests.server.conftest import make_wheel, wait_for

pytestmark = pytest.mark.e2e
PAGE = 4096


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A packages directory on a fresh 6 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; run the suite as root to test ENOSPC")
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    packages = mountpoint / "packages"
    packages.mkdir()
    yield packages
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def visible(packages: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in packages.iterdir() if p.is_file()}


def free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_a_full_disk_is_a_507_and_nothing_half_written(
    small_disk: Path,
    start_index: Callable[..., Index],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    packages = small_disk
    env = {"RELEASEKIT_SERVER_MIN_FREE_SPACE": "1M", "RELEASEKIT_SERVER_POLL_INTERVAL": "0.05"}
    index = start_index(packages, env=env)
    assert httpx2.get(f"{index.url}/ready").status_code == 200
    outcomes: list[int] = []
    stored: dict[str, str] = {}
    changed_at = 0
    for n in range(12):
        (tmp_path / str(n)).mkdir()
        wheel = make_wheel(tmp_path / str(n), f"filler{n}", "1.0", payload=os.urandom(700_000))
        before = visible(packages)
        sent_at = time.time_ns()
        response = index.upload(wheel.name, wheel.read_bytes())
        outcomes.append(response.status_code)
        assert temp_files(packages) == []
        if response.status_code == 200:
            stored[wheel.name] = hashlib.sha256(wheel.read_bytes()).hexdigest()
            changed_at = sent_at
        else:
            assert response.status_code == 507, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert "disk is full" in response.json()["detail"]
            assert visible(packages) == before
    assert 200 in outcomes and 507 in outcomes
    assert index.check_consistent() == stored

    # The server saves its catalogue cache up to a second after a change (a page or two): let
    # that land first, or it takes the room left below while the last upload is written.
    cache = packages / ".releasekit" / "catalogue.json"
    wait_for(lambda: cache.exists() and cache.stat().st_mtime_ns >= changed_at)

    # Room for the file itself and nothing more: the caches fail, the upload still counts.
    last = make_wheel(tmp_path, "tight", "1.0", payload=os.urandom(300_000))
    size = -(-last.stat().st_size // PAGE) * PAGE
    filler = packages / ".filler"
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, free(packages) - size))
    assert free(packages) >= size
    response = index.upload(last.name, last.read_bytes())
    assert response.status_code == 200, response.text
    stored[last.name] = hashlib.sha256(last.read_bytes()).hexdigest()
    assert index.check_consistent() == stored

    ready = httpx2.get(f"{index.url}/ready")
    assert ready.status_code == 503
    assert "low disk" in ready.json()["detail"]
    metrics = httpx2.get(f"{index.url}/metrics").text
    assert "releasekit_disk_free_bytes" in metrics

    filler.unlink()
    for name in sorted(stored)[:2]:  # an admin frees space by removing files by hand
        (packages / name).unlink()
        del stored[name]
    wait_for(lambda: httpx2.get(f"{index.url}/ready").status_code == 200)
    wait_for(lambda: index.listed() == stored)
    index.stop()
    restarted = start_index(packages, env=env)
    assert restarted.check_consistent() == stored
    with capsys.disabled():
        print(f"\nfull disk (6 MiB tmpfs): statuses {outcomes} then 200 with no room for caches")
