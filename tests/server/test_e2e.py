"""End to end: `releasekit server run` on 127.0.0.1 (port 0), driven by the real clients."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from releasekit.server.tokens import create_token
from tests.server.conftest import Dists, Users, launch_server, make_wheel, stop_server

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
JSON = "application/vnd.pypi.simple.v1+json"


@dataclass
class Server:
    """A server process, its URL and its packages directory."""

    url: str
    process: subprocess.Popen[bytes]
    packages: Path

    def files(self, project: str) -> list[str]:
        response = httpx2.get(f"{self.url}/simple/{project}/", headers={"accept": JSON})
        if response.status_code == 404:
            return []
        return sorted(f["filename"] for f in response.json()["files"])

    def stop(self) -> None:
        stop_server(self.process)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start `releasekit server run PACKAGES -p 0 ARGS...`; wait for its port and /health."""
    started: list[Server] = []

    def start(packages: Path, *args: str) -> Server:
        log = tmp_path / f"server-{len(started)}.log"
        process, url = launch_server(packages, log, *args)
        server = Server(url, process, packages)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    path = tmp_path / "packages"
    path.mkdir()
    return path


@pytest.fixture
def index(start_server: Callable[..., Server], packages: Path, users: Users) -> Server:
    """Uploads need a user (-a update), reads are anonymous."""
    return start_server(packages, "-P", str(users.passwords), "-a", "update")


def run(
    *command: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a client; the caller asserts on returncode and output."""
    full_env = {
        **os.environ,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "UV_NO_CONFIG": "1",
        **(env or {}),
    }
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, env=full_env, timeout=180
    )


def post_file(server: Server, path: Path, auth: tuple[str, str]) -> httpx2.Response:
    return httpx2.post(
        f"{server.url}/legacy/",
        data={":action": "file_upload", "protocol_version": "1"},
        files={"content": (path.name, path.read_bytes(), "application/octet-stream")},
        auth=auth,
    )


def test_twine_upload_with_password_and_scoped_token(
    start_server: Callable[..., Server], packages: Path, dists: Dists, users: Users
) -> None:
    tokens = packages / ".releasekit" / "tokens.json"
    tokens.parent.mkdir()
    token = create_token(tokens, owner="ci", projects=["beta-lib"], actions=["update"]).value
    index = start_server(packages, "-P", str(users.passwords), "-a", "update")
    user, password = users.credentials["ci"]
    files = [dists.path("alpha-1.0-py3-none-any.whl"), dists.path("alpha-1.0.tar.gz")]
    twine: list[str | Path] = [
        BIN / "twine",
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        f"{index.url}/legacy/",
    ]
    result = run(*twine, "-u", user, "-p", password, *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert index.files("alpha") == ["alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz"]
    again = run(*twine, "-u", user, "-p", password, *files)
    assert again.returncode == 0, "an identical re-upload is a no-op (idempotent CI)"

    beta = dists.path("Beta_Lib-2.0-py3-none-any.whl")
    with_token = run(*twine, "-u", "__token__", "-p", token, beta)
    assert with_token.returncode == 0, with_token.stdout + with_token.stderr
    assert index.files("beta-lib") == ["Beta_Lib-2.0-py3-none-any.whl"]
    out_of_scope = run(
        *twine, "-u", "__token__", "-p", token, dists.path("alpha-1.1-py3-none-any.whl")
    )
    assert out_of_scope.returncode != 0
    assert "403" in out_of_scope.stdout + out_of_scope.stderr
    no_credentials = run(
        *twine, "-u", user, "-p", "wrong", dists.path("alpha-1.1-py3-none-any.whl")
    )
    assert no_credentials.returncode != 0
    assert index.files("alpha") == ["alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz"]


def test_uv_publish(index: Server, dists: Dists, users: Users, tmp_path: Path) -> None:
    user, password = users.credentials["ci"]
    result = run(
        BIN / "uv",
        "publish",
        "--publish-url",
        f"{index.url}/legacy/",
        "--username",
        user,
        "--password",
        password,
        dists.path("alpha-1.1-py3-none-any.whl"),
        env={"UV_CACHE_DIR": str(tmp_path / "uv-cache")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert index.files("alpha") == ["alpha-1.1-py3-none-any.whl"]


def test_the_seed_curl_form(index: Server, dists: Dists, users: Users) -> None:
    user, password = users.credentials["ci"]
    sdist = dists.path("alpha-1.0.tar.gz")
    result = run(
        "curl",
        "-sS",
        "--fail-with-body",
        "-u",
        f"{user}:{password}",
        "-F",
        f"content=@{sdist}",
        "-F",
        ":action=file_upload",
        "-F",
        "protocol_version=1",
        f"{index.url}/",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert index.files("alpha") == ["alpha-1.0.tar.gz"]


@pytest.fixture
def chain(index: Server, users: Users, tmp_path: Path) -> Server:
    """app-one 1.0 -> lib-core>=1.1; lib-core 1.0, 1.1 and 2.0 (2.0 needs Python >= 4)."""
    built = tmp_path / "built"
    built.mkdir()
    wheels = [
        make_wheel(built, "lib-core", "1.0"),
        make_wheel(built, "lib-core", "1.1", requires_python=">=3.8"),
        make_wheel(built, "lib-core", "2.0", requires_python=">=4"),
        make_wheel(built, "app-one", "1.0", requires=("lib-core>=1.1",)),
    ]
    for wheel in wheels:
        assert post_file(index, wheel, users.credentials["ci"]).status_code == 200
    return index


@pytest.fixture(scope="session")
def pip_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway venv with pip (created once)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    return venv


def test_pip_download_and_install_honour_requires_python(
    chain: Server, pip_venv: Path, tmp_path: Path
) -> None:
    simple = f"{chain.url}/simple/"
    downloaded = tmp_path / "downloaded"
    result = run(
        pip_venv / "bin" / "pip", "download", "--index-url", simple, "-d", downloaded, "app-one"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in downloaded.iterdir()) == [
        "app_one-1.0-py3-none-any.whl",
        "lib_core-1.1-py3-none-any.whl",
    ]
    installed = run(pip_venv / "bin" / "pip", "install", "--index-url", simple, "app-one")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    check = run(pip_venv / "bin" / "python", "-c", "import lib_core; print(lib_core.__version__)")
    assert check.stdout.strip() == "1.1"


def test_uv_pip_install(chain: Server, tmp_path: Path) -> None:
    venv = tmp_path / "uv-env"
    env = {"UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    assert run(BIN / "uv", "venv", "--quiet", venv, env=env).returncode == 0
    result = run(
        BIN / "uv",
        "pip",
        "install",
        "--python",
        venv / "bin" / "python",
        "--index-url",
        f"{chain.url}/simple/",
        "app-one",
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    check = run(venv / "bin" / "python", "-c", "import lib_core; print(lib_core.__version__)")
    assert check.stdout.strip() == "1.1"


def test_pip_install_require_hashes(chain: Server, pip_venv: Path, tmp_path: Path) -> None:
    data = httpx2.get(f"{chain.url}/simple/lib-core/", headers={"accept": JSON}).json()
    digest = next(f["hashes"]["sha256"] for f in data["files"] if "1.0-" in f["filename"])
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text(f"lib-core==1.0 --hash=sha256:{digest}\n")
    bad.write_text(f"lib-core==1.0 --hash=sha256:{'0' * 64}\n")
    pip: list[str | Path] = [
        pip_venv / "bin" / "pip",
        "install",
        "--index-url",
        f"{chain.url}/simple/",
        "--require-hashes",
        "--no-deps",
        "--force-reinstall",
        "-r",
    ]
    refused = run(*pip, bad)
    assert refused.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in refused.stdout + refused.stderr
    accepted = run(*pip, good)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def test_sigkill_mid_upload_leaves_nothing_listed_or_served(
    start_server: Callable[..., Server], packages: Path, tmp_path: Path
) -> None:
    server = start_server(packages, "-a", ".")
    wheel = make_wheel(
        tmp_path, "partial", "1.0", payload=b"#" + os.urandom(1_500_000).hex().encode()
    )
    boundary = "releasekit-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="protocol_version"\r\n\r\n1\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{wheel.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    body = head + wheel.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
        )
        sent = 0
        while sent < len(body) * 3 // 4:  # most of the body, in small pieces
            sock.sendall(body[sent : sent + 65536])
            sent += 65536
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    assert not (packages / wheel.name).exists()
    restarted = start_server(packages, "-a", ".")
    assert restarted.files("partial") == []
    assert httpx2.get(f"{restarted.url}/packages/{wheel.name}").status_code == 404
    assert [p.name for p in packages.iterdir() if not p.name.startswith(".")] == []
    complete = post_file(restarted, wheel, ("", ""))
    assert complete.status_code == 200
    served = httpx2.get(f"{restarted.url}/packages/{wheel.name}")
    assert (
        hashlib.sha256(served.content).hexdigest() == hashlib.sha256(wheel.read_bytes()).hexdigest()
    )
