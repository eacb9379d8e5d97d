"""deploy/nginx/releasekit.conf on a stock nginx whose workers are www-data, as Debian runs it."""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
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
from tests.test_publish import Index

pytestmark = pytest.mark.e2e
JSON = "application/vnd.pypi.simple.v1+json"


def downloads(index: Index, version: str) -> str:
    """The releasekit_downloads_total sample line of tiny-lib `version`, straight from the index."""
    body = get(index.url + "metrics", headers={"Authorization": basic()})[2].decode()
    wanted = f'releasekit_downloads_total{{project="tiny-lib",version="{version}"}}'
    return next((line for line in body.splitlines() if line.startswith(wanted)), "")


def wait_for_page(url: str, index: Index, auth: dict[str, str]) -> None:
    page = index.packages / ".releasekit" / "simple" / "tiny-lib" / "index.v1_json"
    deadline = time.monotonic() + 10
    while not page.exists() and time.monotonic() < deadline:
        get(url + "simple/tiny-lib/", JSON, auth)  # a miss goes to releasekit, which renders it
        time.sleep(0.05)


def test_open_reads_pages_from_disk_files_counted_by_releasekit(
    start_index: Callable[..., Index], tmp_path: Path
) -> None:
    index = start_index(authenticate="update", extra=("--accel-redirect", ACCEL))
    with nginx_in_front(index, tmp_path) as url:
        twine_upload(url, build_dists(tmp_path, "1.0.0"))  # through nginx to releasekit
        wait_for_page(url, index, {})
        # Everything the index wrote for serving is world-readable; nginx (www-data) reads it.
        for path in [index.packages, *index.packages.rglob("*")]:
            if path.name == "tokens.json" or "locks" in path.relative_to(index.packages).parts:
                continue  # a secret, and upload lock files: neither is served
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))
        page = index.packages / ".releasekit" / "simple" / "tiny-lib" / "index.v1_json"
        status, headers, body = get(url + "simple/tiny-lib/", JSON)
        assert status == 200 and headers["Content-Type"] == JSON and headers["Vary"] == "Accept"
        assert body == page.read_bytes()  # the page releasekit rendered, sent by nginx
        status, headers, body = get(url + "simple/tiny-lib/", "text/html")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b"tiny_lib-1.0.0" in body
        status, headers, _ = get(url + "simple/Tiny_Lib/")  # releasekit's redirect, followed
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert get(url + "simple/tiny-lib/?format=" + JSON)[1]["Content-Type"] == JSON
        missing = get(url + "simple/nothing-here/", JSON)
        assert missing[0] == 404 and missing[1]["Content-Type"] == "application/problem+json"
        wheel = next(p.name for p in index.packages.iterdir() if p.name.endswith(".whl"))
        # Hostile: the internal location, the state directory and the auth endpoint from outside.
        assert get(url + ACCEL.lstrip("/") + wheel)[0] == 404
        assert get(url + ACCEL.lstrip("/") + ".releasekit/catalogue.json")[0] == 404
        assert get(url + "packages/.releasekit/catalogue.json")[0] == 404
        assert get(url + "packages/../.releasekit/catalogue.json")[0] in (400, 404)
        assert get(url + "-/auth", headers={"X-Original-URI": "/simple/"})[0] == 404
        # A range read is served by nginx (206) and is not a download.
        status, headers, body = get(url + "packages/" + wheel, headers={"Range": "bytes=0-9"})
        assert status == 206 and len(body) == 10
        assert downloads(index, "1.0.0") == ""
        status, headers, body = get(url + "packages/" + wheel)
        assert status == 200 and body == (index.packages / wheel).read_bytes()
        assert headers["Content-Type"] == "application/octet-stream"
        metadata = get(url + "packages/" + wheel + ".metadata")
        assert metadata[0] == 200 and b"Name: tiny-lib" in metadata[2]
        assert downloads(index, "1.0.0").endswith(" 1.0")
        pip_install(tmp_path, url + "simple/", "tiny-lib==1.0.0")
        assert downloads(index, "1.0.0").endswith(" 2.0")  # pip's download, counted once


def test_closed_reads_need_credentials_for_pages_and_files(
    start_index: Callable[..., Index], tmp_path: Path
) -> None:
    index = start_index(authenticate="update,download,list", extra=("--accel-redirect", ACCEL))
    with nginx_in_front(index, tmp_path) as url:
        twine_upload(url, build_dists(tmp_path, "2.0.0"))
        auth = {"Authorization": basic()}
        wait_for_page(url, index, auth)
        wheel = next(p.name for p in index.packages.iterdir() if p.name.endswith(".whl"))
        # Anonymous and wrong credentials: refused for pages (asked by nginx) and files.
        for path in ("simple/", "simple/tiny-lib/", "packages/" + wheel, "packages/"):
            status, headers, _ = get(url + path)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Basic"), path
            wrong = get(url + path, headers={"Authorization": basic(USER, "wrong")})
            assert wrong[0] == 401, path
        assert downloads(index, "2.0.0") == ""
        status, headers, body = get(url + "simple/tiny-lib/", JSON, auth)
        assert status == 200 and headers["Content-Type"] == JSON
        assert body == (index.packages / ".releasekit/simple/tiny-lib/index.v1_json").read_bytes()
        host = url.removeprefix("http://")
        output = pip_install(
            tmp_path, f"http://{USER}:{quote(PASSWORD, safe='')}@{host}simple/", "tiny-lib"
        )
        assert "Successfully installed tiny-lib-2.0.0" in output
        assert downloads(index, "2.0.0").endswith(" 1.0")
        listing = get(url + "packages/", headers=auth)
        assert listing[0] == 200 and wheel.encode() in listing[2]
