"""Debian's Prometheus scrapes a real index behind nginx with the shipped config and rules, and
the dashboard's series carry the counts of a known run: uploads, pip installs and downloads."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.deploy.conftest import (
    ACCEL,
    PASSWORD,
    USER,
    basic,
    build_dists,
    get,
    nginx_in_front,
    pip_install,
    twine_upload,
)
from tests.deploy.test_deploy_files import (
    dashboard_exprs,
    metric_names,
    prometheus_files,
)
from tests.test_publish import Index, free_port

pytestmark = pytest.mark.e2e
PROMETHEUS = shutil.which("prometheus")
TOKEN = "metrics-" + "7" * 32
ONE_VERSION = 'sum(releasekit_downloads_total{project="tiny-lib",version="1.0.0"})'


def query(base: str, expr: str) -> list[dict[str, object]]:
    status, _, body = get(base + "api/v1/query?query=" + urllib.parse.quote(expr))
    answer = json.loads(body or b"{}")
    assert status == 200 and answer.get("status") == "success", (expr, body[:300])
    result: list[dict[str, object]] = answer["data"]["result"]
    return result


def value(base: str, expr: str) -> float | None:
    result = query(base, expr)
    return float(result[0]["value"][1]) if result else None  # type: ignore[index]


@contextlib.contextmanager
def prometheus(workdir: Path, target: str) -> Iterator[str]:
    """Debian's prometheus with the shipped config, as its own unprivileged user."""
    if PROMETHEUS is None:
        pytest.skip("prometheus (Debian's package) is not installed: run `make install` as root")
    config = prometheus_files(workdir, target)
    # Scrape every second so the test waits seconds, not the shipped 15 s.
    config.write_text(config.read_text().replace("scrape_interval: 15s", "scrape_interval: 1s"))
    (workdir / "metrics-token").write_text(TOKEN + "\n")
    data = workdir / "tsdb"
    data.mkdir()
    user = None
    if os.geteuid() == 0:
        user = "prometheus" if _exists("prometheus") else "nobody"
        entry = pwd.getpwnam(user)
        os.chown(data, entry.pw_uid, entry.pw_gid)
        (workdir / "metrics-token").chmod(0o600)
        os.chown(workdir / "metrics-token", entry.pw_uid, entry.pw_gid)
    port = free_port()
    command = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={data}"]
    command += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, user=user)
    log.close()
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while get(base + "-/ready")[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("prometheus did not start: " + (workdir / "prometheus.log").read_text())
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def test_prometheus_sees_the_counts_of_a_known_run(
    start_index: Callable[..., Index], tmp_path: Path
) -> None:
    token_file = tmp_path / "index-metrics-token"
    token_file.write_text(TOKEN + "\n")
    extra = ("--accel-redirect", ACCEL, "--metrics-token-file", str(token_file), "--workers", "2")
    index = start_index(authenticate="update,download,list", extra=extra)
    with nginx_in_front(index, tmp_path) as url:
        twine_upload(url, build_dists(tmp_path, "1.0.0") + build_dists(tmp_path, "2.0.0"))
        host = url.removeprefix("http://")
        simple = f"http://{USER}:{quote(PASSWORD, safe='')}@{host}simple/"
        # Every worker must know the new files before pip asks (each polls its directory).
        deadline, in_a_row = time.monotonic() + 20, 0
        while in_a_row < 10:
            seen = get(url + "simple/tiny-lib/", "text/html", {"Authorization": basic()})
            in_a_row = in_a_row + 1 if b"tiny_lib-2.0.0" in seen[2] else 0
            assert time.monotonic() < deadline
        output = pip_install(tmp_path, simple, "tiny-lib==1.0.0")
        assert "Successfully installed tiny-lib-1.0.0" in output
        wheel = next(
            p.name for p in index.packages.iterdir() if p.name.endswith("2.0.0-py3-none-any.whl")
        )
        for _ in range(3):
            assert get(url + "packages/" + wheel, headers={"Authorization": basic()})[0] == 200
        assert get(url + "packages/" + wheel)[0] == 401  # refused: not a download
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    target = index.url.removeprefix("http://").rstrip("/")
    with prometheus(workdir, target) as base:
        deadline = time.monotonic() + 60
        while value(base, ONE_VERSION) != 1.0:  # scraped once the run is over
            assert time.monotonic() < deadline, query(base, 'up{job="releasekit"}')
            time.sleep(0.2)
        print(f"\nPromQL: {ONE_VERSION} -> {query(base, ONE_VERSION)}")
        assert value(base, 'up{job="releasekit"}') == 1.0
        assert value(base, 'sum(releasekit_downloads_total{version="2.0.0"})') == 3.0
        assert value(base, 'sum(releasekit_uploads_total{result="stored"})') == 4.0
        assert value(base, "releasekit_files_stored") == 4.0
        assert value(base, "releasekit_projects") == 1.0
        assert value(base, "releasekit_files_pending") == 0.0
        assert value(base, 'sum(releasekit_http_requests_total{route="file",status="401"})') == 1.0
        # Every dashboard query is valid PromQL here, and every series it names exists.
        for expr in dashboard_exprs():
            query(base, expr.replace("$__range", "5m"))
            for name in metric_names(expr):
                assert value(base, f"count({name})"), name
        status, _, body = get(base + "api/v1/rules")
        assert status == 200
        groups = json.loads(body)["data"]["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        assert {"ReleasekitIndexDown", "ReleasekitHigh5xxRate"} <= set(rules)
        assert all(r["health"] in ("ok", "unknown") for r in rules.values())
