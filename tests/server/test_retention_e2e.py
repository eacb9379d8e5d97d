"""Retention against a real server process: on demand with the CLI, and on the server's schedule."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from tests.server.conftest import launch_server, stop_server, wait_for
from tests.server.test_retention_cli import fill

pytestmark = pytest.mark.e2e
JSON = "application/vnd.pypi.simple.v1+json"
KEPT = [f"alpha-{v}-py3-none-any.whl" for v in ("1.0", "1.1.dev3", "1.1rc2")]


def releasekit(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "releasekit", "server", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def listed(url: str) -> list[str]:
    response = httpx2.get(f"{url}/simple/alpha/", headers={"accept": JSON})
    return sorted(f["filename"] for f in response.json()["files"])


def test_a_run_reaches_a_running_server_and_kept_releases_still_install(tmp_path: Path) -> None:
    packages = fill(tmp_path / "packages")
    process, url = launch_server(packages, tmp_path / "server.log", "-a", ".")
    try:
        assert len(listed(url)) == 7
        rules = ["index", "retention", "root", "--keep-dev", "1", "--keep-pre", "1"]
        assert releasekit(*rules, "-D", packages).returncode == 0
        result = releasekit("retention", "--index", "root", "-D", packages)
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines()[-1] == "[4/4] deleted alpha-1.1rc1-py3-none-any.whl"
        assert result.stdout.startswith("index root: deleted 4 of 4 files (")
        wait_for(lambda: listed(url) == KEPT)
        gone = httpx2.get(f"{url}/packages/alpha-1.1.dev1-py3-none-any.whl")
        assert gone.status_code == 404
        assert httpx2.get(f"{url}/packages/{KEPT[0]}").status_code == 200
        target = tmp_path / "installed"
        pip = [sys.executable, "-m", "pip", "install", "--isolated", "--no-cache-dir"]
        pip += ["--disable-pip-version-check", "--no-deps", "--target", str(target)]
        installed = subprocess.run(
            [*pip, "--index-url", f"{url}/simple/", "alpha==1.1.dev3"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert '"1.1.dev3"' in (target / "alpha" / "__init__.py").read_text()
    finally:
        stop_server(process)


def metric(url: str, name: str) -> float | None:
    body = httpx2.get(f"{url}/metrics").text
    match = re.search(rf'^{name}{{index="root"}} (\S+)$', body, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_the_schedule_runs_once_per_period_over_two_workers(tmp_path: Path) -> None:
    packages = fill(tmp_path / "packages")
    rules = ["index", "retention", "root", "--keep-dev", "1", "--keep-pre", "1", "--every", "1h"]
    assert releasekit(*rules, "-D", packages).returncode == 0
    log = tmp_path / "server.log"
    process, url = launch_server(packages, log, "-a", ".", "--workers", "2")
    try:
        ran = re.compile(r"retention of index root: deleted 4 of 4 files .* by \S+:(\d+); next")
        waited = re.compile(r"retention of index root: not due, run by \S+:(\d+) at ")
        # Both workers check at start: one takes the period's lease and runs, the other finds
        # it taken (and says by whom); neither runs again within the hour.
        wait_for(lambda: bool(waited.search(log.read_text()) and ran.search(log.read_text())), 60)
        text = log.read_text()
        assert len(ran.findall(text)) == 1, text
        assert ran.findall(text) == waited.findall(text)  # the same worker, named by both
        wait_for(lambda: listed(url) == KEPT, timeout=30)
        assert metric(url, "releasekit_retention_runs_total") == 1.0
        assert metric(url, "releasekit_retention_deleted_files_total") == 4.0
        lease = (packages / ".releasekit" / "retention-lease.json").read_text()
        assert '"until"' in lease
    finally:
        stop_server(process)
    # A restart within the period does not run again: the lease outlives the processes.
    process, url = launch_server(packages, tmp_path / "again.log", "-a", ".")
    try:
        wait_for(lambda: "not due" in (tmp_path / "again.log").read_text(), timeout=60)
        assert "deleted" not in (tmp_path / "again.log").read_text()
        assert listed(url) == KEPT
    finally:
        stop_server(process)
