"""Real nginx (unprivileged workers) and real Prometheus in front of a real index.

Files live under a world-traversable temporary directory (pytest's own is 0700), so nginx's
www-data workers meet the same permissions they would in production.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pwd
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from tests.test_build import tiny_project
from tests.test_publish import PASSWORD, USER, Index, free_port, start_index

__all__ = ["PASSWORD", "USER", "start_index"]  # start_index: the fixture, imported for pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
ACCEL = "/_releasekit_files/"


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """Like pytest's, but 0755 so unprivileged nginx workers can traverse it."""
    base = Path(tempfile.mkdtemp(prefix="releasekit-deploy-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def basic(user: str = USER, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def get(
    url: str,
    accept: str | None = None,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    context: ssl.SSLContext | None = None,
) -> tuple[int, Message, bytes]:
    """(status, headers, body) for every status (headers case-insensitive); 0: nothing listens."""
    sent = dict(headers or {})
    if accept:
        sent["Accept"] = accept
    request = urllib.request.Request(url, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()
    except urllib.error.URLError:
        return 0, Message(), b""


def worker_user() -> tuple[str, str]:
    """The user Debian's nginx package runs its workers as (www-data), else nobody."""
    for user, group in (("www-data", "www-data"), ("nobody", "nogroup")):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            return user, group
    pytest.skip("neither www-data nor nobody exists to run nginx workers as")


@contextlib.contextmanager
def nginx_in_front(index: Index, workdir: Path, tls: Path | None = None) -> Iterator[str]:
    """Run nginx with deploy/nginx/releasekit.conf in front of `index`; yields its base URL.

    With `tls` (a directory with cert.pem and key.pem), the compose stack's TLS file instead.
    """
    if NGINX is None or not Path("/etc/nginx/proxy_params").exists():
        pytest.skip("nginx (Debian's package) is not installed: run `make install` as root")
    port = free_port()
    prefix = workdir / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    upstream = index.url.removeprefix("http://").rstrip("/")
    if tls is None:
        conf = DEPLOY / "nginx" / "releasekit.conf"
        site = conf.read_text().replace("127.0.0.1:8080", upstream)
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    else:
        conf = DEPLOY / "compose" / "nginx" / "releasekit-tls.conf"
        site = conf.read_text().replace("server index:8080;", f"server {upstream};")
        site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
        site = site.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
        site = site.replace("/etc/nginx/tls", str(tls))
    site = site.replace("/srv/pypi/packages", str(index.packages))
    (prefix / "site.conf").write_text(site)
    user = ""
    if os.geteuid() == 0:
        # Master as root, workers unprivileged: exactly what Debian's nginx.conf does.
        name, group = worker_user()
        user = f"user {name} {group};"
        entry = pwd.getpwnam(name)
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / "tmp" / kind).mkdir()
            os.chown(prefix / "tmp" / kind, entry.pw_uid, entry.pw_gid)
    temp = " ".join(
        f"{kind}_temp_path {prefix}/tmp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"{user} worker_processes 1; daemon off; pid {prefix}/nginx.pid;"
        f" error_log {prefix}/error.log warn;\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{ access_log off; {temp} include {prefix}/site.conf; }}\n"
    )
    command = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    command += ["-e", str(prefix / "error.log")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/"
    context = ssl.create_default_context(cafile=str(tls / "cert.pem")) if tls else None
    try:
        deadline = time.monotonic() + 20
        while get(url + "health", context=context)[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not start: {(prefix / 'error.log').read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def build_dists(workdir: Path, version: str) -> list[Path]:
    """sdist and wheel of tiny-lib `version`."""
    dist = workdir / f"dist-{version}"
    project = tiny_project(workdir / f"lib-{version}", version)
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(project)],
        check=True,
        capture_output=True,
    )
    return sorted(dist.iterdir())


def twine_upload(url: str, files: list[Path]) -> None:
    twine = str(Path(sys.executable).parent / "twine")
    command = [twine, "upload", "--repository-url", url, "-u", USER, "-p", PASSWORD]
    upload = subprocess.run(
        [*command, *map(str, files)], capture_output=True, text=True, check=False
    )
    assert upload.returncode == 0, upload.stdout + upload.stderr


def pip_install(workdir: Path, index_url: str, requirement: str) -> str:
    """Install into a fresh venv with pip from `index_url`; returns pip's output."""
    venv = workdir / f"venv-{requirement.replace('=', '-')}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir"]
    install = subprocess.run(
        [*pip, "--index-url", index_url, requirement], capture_output=True, text=True, check=False
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return install.stdout
