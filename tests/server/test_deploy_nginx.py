"""deploy/nginx/releasekit.conf for real: nginx answers reads from disk, releasekit the rest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.test_build import tiny_project
from tests.test_publish import PASSWORD, USER, Index, free_port, start_index

__all__ = ["start_index"]  # the fixture, imported for pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
JSON = "application/vnd.pypi.simple.v1+json"


def get(url: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except urllib.error.URLError:
        return 0, {}, b""  # not listening yet


@pytest.fixture
def front(start_index: Callable[..., Index], tmp_path: Path) -> Iterator[tuple[str, Index]]:
    """nginx with the deployment file, in front of a real releasekit index."""
    if NGINX is None or not Path("/etc/nginx/proxy_params").exists():
        pytest.skip("nginx (Debian's package) is not installed")
    index = start_index()
    port = free_port()
    prefix = tmp_path / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    site = (
        (ROOT / "deploy" / "nginx" / "releasekit.conf")
        .read_text()
        .replace("/srv/pypi/packages", str(index.packages))
        .replace(
            "server 127.0.0.1:8080;", f"server {index.url.removeprefix('http://').rstrip('/')};"
        )
        .replace("listen 80;", f"listen 127.0.0.1:{port};")
    )
    (prefix / "site.conf").write_text(site)
    user = "user root;" if os.geteuid() == 0 else ""
    temp = " ".join(
        f"{kind}_temp_path {prefix}/tmp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"{user} worker_processes 1; daemon off; pid {prefix}/nginx.pid; error_log {prefix}/error.log warn;\n"
        f"events {{ worker_connections 64; }}\nhttp {{ access_log off; {temp} include {prefix}/site.conf; }}\n"
    )
    command = [
        NGINX,
        "-p",
        str(prefix),
        "-c",
        str(prefix / "nginx.conf"),
        "-e",
        str(prefix / "error.log"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while get(url + "health")[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not start: {(prefix / 'error.log').read_text()}")
            time.sleep(0.05)
        yield url, index
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_reads_from_disk_and_the_rest_through_releasekit(
    front: tuple[str, Index], tmp_path: Path
) -> None:
    url, index = front
    dist = tmp_path / "dist"
    project = tiny_project(tmp_path / "lib", "1.0.0")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(project)],
        check=True,
        capture_output=True,
    )
    upload = subprocess.run(
        [
            str(Path(sys.executable).parent / "twine"),
            "upload",
            "--repository-url",
            url,
            "-u",
            USER,
            "-p",
            PASSWORD,
            *map(str, sorted(dist.iterdir())),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert upload.returncode == 0, upload.stdout + upload.stderr  # through nginx to releasekit
    page = index.packages / ".releasekit" / "simple" / "tiny-lib" / "index.v1_json"
    deadline = time.monotonic() + 10
    while not page.exists() and time.monotonic() < deadline:
        get(url + "simple/tiny-lib/", JSON)  # a miss goes to releasekit, which renders the page
        time.sleep(0.05)
    status, headers, body = get(url + "simple/tiny-lib/", JSON)
    assert status == 200 and headers["Content-Type"] == JSON and headers["Vary"] == "Accept"
    assert body == page.read_bytes()  # the page releasekit rendered, served by nginx
    status, headers, body = get(url + "simple/tiny-lib/", "text/html")
    assert (
        status == 200
        and headers["Content-Type"].startswith("text/html")
        and b"tiny_lib-1.0.0" in body
    )
    status, headers, _ = get(
        url + "simple/Tiny_Lib/"
    )  # releasekit's redirect to the normalized name
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert get(url + "simple/tiny-lib/?format=" + JSON)[1]["Content-Type"] == JSON
    missing = get(url + "simple/nothing-here/", JSON)
    assert missing[0] == 404 and missing[1]["Content-Type"] == "application/problem+json"
    assert get(url + "packages/.releasekit/catalogue.json")[0] == 404
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--index-url",
            url + "simple/",
            "tiny-lib",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
