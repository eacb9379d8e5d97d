"""Upstream read-through end to end: two real `releasekit server run` processes on 127.0.0.1,
one the upstream of the other, and real `pip install` / `uv pip install` through ours.

The upstream's files get their upload times from their mtimes, set before it indexes them:
`old` files are 30 days old, `new` ones were uploaded now; our index has a 7-day cooldown.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from tests.server.conftest import launch_server, make_wheel, stop_server, wait_for
from tests.server.test_e2e import run

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
JSON = "application/vnd.pypi.simple.v1+json"
OLD = time.time() - 30 * 86400


@dataclass
class Pair:
    """Our index (`url`) reading through a real upstream index (`upstream_url`)."""

    url: str
    upstream_url: str
    upstream_packages: Path
    packages: Path
    upstream_log: Path
    upstream: subprocess.Popen[bytes]
    ours: subprocess.Popen[bytes]

    def page(self, project: str) -> httpx2.Response:
        return httpx2.get(f"{self.url}/simple/{project}/", headers={"accept": JSON}, timeout=30)

    def upstream_requests(self, path: str) -> int:
        return self.upstream_log.read_text(errors="replace").count(f'path="{path}"')


def pip_install(base: str, target: Path, *requirements: str) -> subprocess.CompletedProcess[str]:
    index = f"{base}/simple/"
    return run(sys.executable, "-m", "pip", "install", "--index-url", index, "--target", target,
               "--no-deps", *requirements)  # fmt: skip


def uv_install(
    pair: Pair, target: Path, cache: Path, *requirements: str
) -> subprocess.CompletedProcess[str]:
    return run(
        BIN / "uv",
        "pip",
        "install",
        "--python",
        sys.executable,
        "--target",
        target,
        "--index-url",
        f"{pair.url}/simple/",
        "--no-deps",
        *requirements,
        env={"UV_CACHE_DIR": str(cache)},
    )


def installed_version(target: Path, module: str) -> str:
    text = (target / module / "__init__.py").read_text()
    return text.split('"')[1]


def upstream_wheel(directory: Path, name: str, version: str, *, uploaded: float) -> Path:
    path = make_wheel(directory, name, version)
    os.utime(path, (uploaded, uploaded))
    return path


def configure(packages: Path, *options: str) -> None:
    command = [sys.executable, "-m", "releasekit", "server", "index", "upstream", "root"]
    result = run(*command, "-D", packages, *options)
    assert result.returncode == 0, result.stdout + result.stderr


def start_pair(tmp_path: Path, *options: str) -> Pair:
    upstream_packages = tmp_path / "upstream"
    upstream_packages.mkdir()
    now = time.time()
    for name, version, uploaded in (
        ("oldlib", "1.0", OLD),
        ("oldlib", "1.1", OLD),
        ("freshlib", "1.0", OLD),
        ("freshlib", "2.0", now),
        ("newonly", "1.0", now),
        ("shadowed", "9.0", OLD),
        ("aegis-core", "1.0", OLD),
        ("yanklib", "1.0", OLD),
        ("yanklib", "1.1", OLD),
        ("cachedlib", "1.0", OLD),
        ("uncachedlib", "1.0", OLD),
        ("racelib", "1.0", OLD),
    ):
        upstream_wheel(upstream_packages, name, version, uploaded=uploaded)
    packages = tmp_path / "ours"
    packages.mkdir()
    make_wheel(packages, "shadowed", "1.0")
    upstream_log = tmp_path / "upstream.log"
    upstream, upstream_url = launch_server(upstream_packages, upstream_log, "-a", ".")
    configure(packages, "--url", f"{upstream_url}/simple/", "--cooldown", "7d",
              "--reserve", "aegis-*", *options)  # fmt: skip
    try:
        ours, url = launch_server(packages, tmp_path / "ours.log", "-a", ".")
    except BaseException:
        stop_server(upstream)
        raise
    return Pair(url, upstream_url, upstream_packages, packages, upstream_log, upstream, ours)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """A pair whose pages are refetched on every request (ttl 0): upstream changes show."""
    started = start_pair(tmp_path_factory.mktemp("pair"), "--ttl", "0")
    yield started
    stop_server(started.ours)
    stop_server(started.upstream)


def test_an_upstream_only_name_older_than_the_cooldown_installs_with_pip_and_uv(
    pair: Pair, tmp_path: Path
) -> None:
    result = pip_install(pair.url, tmp_path / "pip", "oldlib")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(tmp_path / "pip", "oldlib") == "1.1"
    result = uv_install(pair, tmp_path / "uv", tmp_path / "uv-cache", "oldlib==1.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(tmp_path / "uv", "oldlib") == "1.0"
    # Cached apart from the index's own files: the project did not become local.
    assert sorted(p.name for p in pair.packages.glob("*.whl")) == ["shadowed-1.0-py3-none-any.whl"]
    cached = pair.packages / ".upstream" / "root"
    assert (cached / "oldlib-1.1-py3-none-any.whl").is_file()
    root = httpx2.get(f"{pair.url}/simple/", headers={"accept": JSON}).json()
    assert [p["name"] for p in root["projects"]] == ["shadowed"]
    remove = [sys.executable, "-m", "releasekit", "server", "remove", "oldlib", "1.1"]
    refused = run(*remove, "-D", pair.packages)
    assert refused.returncode == 1
    assert "project 'oldlib' is not on this index" in refused.stderr
    assert (cached / "oldlib-1.1-py3-none-any.whl").is_file()


def test_a_fresh_upload_upstream_is_not_offered(pair: Pair, tmp_path: Path) -> None:
    page = pair.page("freshlib")
    assert [f["filename"] for f in page.json()["files"]] == ["freshlib-1.0-py3-none-any.whl"]
    assert "1 files withheld" in page.headers["x-releasekit-withheld"]
    result = pip_install(pair.url, tmp_path / "pip", "freshlib")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(tmp_path / "pip", "freshlib") == "1.0"
    refused = pip_install(pair.url, tmp_path / "pip2", "newonly")
    assert refused.returncode != 0
    # Asked for by its name, the fresh file is not served either.
    direct = httpx2.get(f"{pair.url}/packages/freshlib-2.0-py3-none-any.whl")
    assert direct.status_code == 404


def test_a_local_name_never_comes_from_upstream_even_at_a_higher_version(
    pair: Pair, tmp_path: Path
) -> None:
    before = pair.upstream_requests("/simple/shadowed/")
    result = uv_install(pair, tmp_path / "uv", tmp_path / "uv-cache", "shadowed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(tmp_path / "uv", "shadowed") == "1.0"
    assert [f["filename"] for f in pair.page("shadowed").json()["files"]] == [
        "shadowed-1.0-py3-none-any.whl"
    ]
    missing = httpx2.get(f"{pair.url}/packages/shadowed-9.0-py3-none-any.whl")
    assert missing.status_code == 404
    assert pair.upstream_requests("/simple/shadowed/") == before == 0


@pytest.mark.parametrize("spelling", ["aegis-core", "Aegis_Core", "AEGIS.core", "aegis__core"])
def test_a_reserved_name_is_404_without_any_upstream_request(
    pair: Pair, tmp_path: Path, spelling: str
) -> None:
    response = httpx2.get(f"{pair.url}/simple/{spelling}/", follow_redirects=True)
    assert response.status_code == 404
    assert response.json()["code"] == "reserved-name"
    assert "'aegis-*'" in response.json()["detail"]
    direct = httpx2.get(f"{pair.url}/packages/{spelling.replace('-', '_')}-1.0-py3-none-any.whl")
    assert direct.status_code == 404
    result = pip_install(pair.url, tmp_path / "pip", spelling)
    assert result.returncode != 0
    assert pair.upstream_requests("/simple/aegis-core/") == 0
    assert "aegis" not in pair.upstream_log.read_text().lower()


def test_an_upstream_yank_is_mirrored(pair: Pair, tmp_path: Path) -> None:
    assert all(f["yanked"] is False for f in pair.page("yanklib").json()["files"])
    yank = [sys.executable, "-m", "releasekit", "server", "yank", "yanklib", "1.1"]
    result = run(*yank, "--reason", "broken build", "-D", pair.upstream_packages)
    assert result.returncode == 0, result.stdout + result.stderr

    def yanked() -> bool:
        files = pair.page("yanklib").json()["files"]
        return {f["filename"]: f["yanked"] for f in files}.get(
            "yanklib-1.1-py3-none-any.whl"
        ) == "broken build"

    wait_for(yanked)
    html = httpx2.get(f"{pair.url}/simple/yanklib/", headers={"accept": "text/html"}).text
    assert 'data-yanked="broken build"' in html
    result = pip_install(pair.url, tmp_path / "pip", "yanklib")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(tmp_path / "pip", "yanklib") == "1.0"


def test_concurrent_first_downloads_all_get_the_verified_bytes_and_one_copy(pair: Pair) -> None:
    name = "racelib-1.0-py3-none-any.whl"
    expected = (pair.upstream_packages / name).read_bytes()
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: httpx2.get(f"{pair.url}/packages/{name}", timeout=60), range(8))
        )
    assert {(a.status_code, hashlib.sha256(a.content).hexdigest()) for a in answers} == {
        (200, hashlib.sha256(expected).hexdigest())
    }
    cache = pair.packages / ".upstream" / "root"
    assert [p.name for p in cache.iterdir() if p.name.startswith("racelib")] == [name]
    assert not [p for p in cache.iterdir() if p.name.startswith(".releasekit-upload-")]


def test_metrics_count_upstream_fetches(pair: Pair) -> None:
    pair.page("oldlib")
    text = httpx2.get(f"{pair.url}/metrics").text
    assert 'releasekit_upstream_fetches_total{index="root",kind="page",outcome="ok"}' in text


def test_offline_installs_what_is_cached_and_stale_pages_outlive_the_upstream(
    tmp_path: Path,
) -> None:
    pair = start_pair(tmp_path, "--ttl", "0")
    try:
        warm = pip_install(pair.url, tmp_path / "warm", "cachedlib")
        assert warm.returncode == 0, warm.stdout + warm.stderr
        configure(pair.packages, "--offline")
        wait_for(lambda: pair.page("not-anywhere").json()["code"] == "offline-not-cached")
        before = pair.upstream_log.read_text()
        result = pip_install(pair.url, tmp_path / "offline", "cachedlib")
        assert result.returncode == 0, result.stdout + result.stderr
        assert installed_version(tmp_path / "offline", "cachedlib") == "1.0"
        refused = pip_install(pair.url, tmp_path / "refused", "uncachedlib")
        assert refused.returncode != 0
        problem = pair.page("uncachedlib").json()
        assert problem["code"] == "offline-not-cached"
        assert "offline" in problem["detail"]
        assert pair.upstream_log.read_text() == before  # offline: upstream never contacted

        configure(pair.packages, "--online")
        stop_server(pair.upstream)
        wait_for(lambda: "x-releasekit-stale" in pair.page("cachedlib").headers)
        stale = pair.page("cachedlib")
        assert stale.status_code == 200
        assert stale.headers["warning"].startswith("110")
        assert [f["filename"] for f in stale.json()["files"]] == ["cachedlib-1.0-py3-none-any.whl"]
        result = pip_install(pair.url, tmp_path / "stale", "cachedlib")
        assert result.returncode == 0, result.stdout + result.stderr
        down = pair.page("oldlib")  # never fetched: nothing stale to fall back on
        assert down.status_code == 502
        assert pair.upstream_url in down.json()["detail"]
    finally:
        stop_server(pair.ours)
        stop_server(pair.upstream)
