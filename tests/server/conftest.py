"""Fixtures for the index server tests: real wheels and sdists, an in-process app, a real server."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import bcrypt
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from releasekit.server.app import create_app
from releasekit.server.localstore import LocalStorage
from releasekit.server.settings import Settings, load_settings
from releasekit.server.state import IndexState
from tests.server.moto_s3 import moto_s3  # noqa: F401 - the S3 fixture, shared by S3 tests


def metadata_text(
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    metadata_version: str = "2.1",
    dynamic: tuple[str, ...] = (),
    requires: tuple[str, ...] = (),
) -> str:
    """A METADATA / PKG-INFO body."""
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Dynamic: {field}" for field in dynamic]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    lines.append("Summary: a test distribution")
    return "\n".join(lines) + "\n\n"


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    metadata_name: str | None = None,
    metadata_version: str | None = None,
    filename: str | None = None,
    payload: bytes = b"",
    requires: tuple[str, ...] = (),
) -> Path:
    """A small but valid, installable pure-Python wheel."""
    dist = name.replace("-", "_").replace(".", "_")
    module = dist.lower()
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode() + payload,
        f"{info}/METADATA": metadata_text(
            metadata_name or name,
            metadata_version or version,
            requires_python=requires_python,
            requires=requires,
        ).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = hashlib.sha256(data).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{path},sha256={encoded},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    target = directory / (filename or f"{dist}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, (2024, 1, 1, 0, 0, 0)), data)
    return target


def make_sdist(
    directory: Path,
    name: str,
    version: str,
    *,
    metadata_version: str = "2.2",
    dynamic: tuple[str, ...] = (),
    requires_python: str | None = None,
) -> Path:
    """A .tar.gz sdist with PKG-INFO at the top level."""
    dist = name.replace("-", "_").replace(".", "_").lower()
    base = f"{dist}-{version}"
    members = {
        f"{base}/PKG-INFO": metadata_text(
            name,
            version,
            requires_python=requires_python,
            metadata_version=metadata_version,
            dynamic=dynamic,
        ).encode(),
        f"{base}/pyproject.toml": f'[project]\nname = "{name}"\nversion = "{version}"\n'.encode(),
    }
    target = directory / f"{base}.tar.gz"
    with tarfile.open(target, "w:gz") as archive:
        for path, data in members.items():
            member = tarfile.TarInfo(path)
            member.size = len(data)
            member.mtime = 1_700_000_000
            archive.addfile(member, io.BytesIO(data))
    return target


@dataclass(frozen=True)
class Dists:
    """Ready-made distribution files shared by a whole session (never modified)."""

    directory: Path

    def path(self, filename: str) -> Path:
        return self.directory / filename


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """alpha 1.0 (wheel + sdist), alpha 1.1 (wheel, requires-python), beta-lib 2.0 (wheel)."""
    directory = tmp_path_factory.mktemp("dists")
    make_wheel(directory, "alpha", "1.0")
    make_sdist(directory, "alpha", "1.0")
    make_wheel(directory, "alpha", "1.1", requires_python=">=3.8")
    make_wheel(directory, "Beta.Lib", "2.0")
    return Dists(directory)


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    """An empty packages directory."""
    path = tmp_path / "packages"
    path.mkdir()
    return path


@pytest.fixture
def open_settings(packages: Path) -> Settings:
    """`-a .` semantics: nobody needs credentials (admin actions still do)."""
    return load_settings({"packages_dir": packages, "authenticate": "."}, env={})


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (including the state dir) with its bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def no_change(packages: Path) -> Iterator[None]:
    """Assert at the end of the test that nothing under the packages dir changed."""
    before = snapshot(packages)
    yield
    assert snapshot(packages) == before


@pytest.fixture
def make_client(packages: Path) -> Iterator[Callable[..., TestClient]]:
    """Build an in-process app over `packages` with settings overrides; runs its lifespan."""
    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        values: dict[str, Any] = {
            "packages_dir": packages,
            "authenticate": ".",
            "poll_interval": 0.05,
        }
        values.update(overrides)
        settings = load_settings(values, env={})
        client = TestClient(create_app(LocalStorage(settings.packages_dir), settings))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """An open index (`-a .`) over an empty packages directory."""
    return make_client()


def upload_form(path: Path, **fields: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The data and files of a twine-like upload of `path` (fields override/extend)."""
    data = {":action": "file_upload", "protocol_version": "1"}
    data.update(fields)
    return data, {"content": (path.name, path.read_bytes(), "application/octet-stream")}


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` until it holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.02)


@dataclass(frozen=True)
class Users:
    """An htpasswd file (bcrypt) with an admin, an uploader and a read-only user."""

    passwords: Path
    credentials: dict[str, tuple[str, str]]


@pytest.fixture(scope="session")
def users(tmp_path_factory: pytest.TempPathFactory) -> Users:
    """root (admin), ci (upload), reader (read); the password is `<name>-secret`."""
    directory = tmp_path_factory.mktemp("users")
    roles = {"root": "admin", "ci": "upload", "reader": "read"}
    lines = []
    for name in roles:
        hashed = bcrypt.hashpw(f"{name}-secret".encode(), bcrypt.gensalt(rounds=4)).decode()
        lines.append(f"{name}:{hashed}")
    passwords = directory / "htpasswd"
    passwords.write_text("\n".join(lines) + "\n", encoding="utf-8")
    roles_file = passwords.with_name("htpasswd.roles.toml")
    roles_file.write_text(
        "[roles]\n" + "".join(f'{n} = "{r}"\n' for n, r in roles.items()), encoding="utf-8"
    )
    return Users(passwords, {name: (name, f"{name}-secret") for name in roles})


def refused(
    client: TestClient,
    packages: Path,
    path: Path,
    status: int,
    message: str,
    *,
    filename: str | None = None,
    **fields: str,
) -> dict[str, object]:
    """Upload; check the problem+json status and message and that nothing changed on disk."""
    # The poller saves the catalogue cache on its own clock (every second): save it now, so
    # that save cannot land between the two snapshots of a slow test.
    index: IndexState = cast(Starlette, client.app).state.index
    index.catalogue.flush()
    before = snapshot(packages)
    data, files = upload_form(path, **fields)
    if filename is not None:
        files = {"content": (filename, path.read_bytes(), "application/octet-stream")}
    response = client.post("/legacy/", data=data, files=files)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert message in str(body["detail"]), body
    assert snapshot(packages) == before
    return body


_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def launch_server(
    packages: Path, log: Path, *args: str, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `releasekit server run PACKAGES -p 0 -i 127.0.0.1 ARGS` with its output in `log`;
    wait (with a deadline) for the port it got and for /health. Returns the process and URL."""
    command = [sys.executable, "-m", "releasekit", "server", "run", str(packages)]
    command += ["-p", "0", "-i", "127.0.0.1", *args]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    deadline = time.monotonic() + 30
    port = None
    while port is None:
        if match := _LISTENING.search(log.read_text(errors="replace")):
            port = int(match.group(1))
        elif process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"server did not start:\n{log.read_text()}")
        else:
            time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    while not _healthy(url):
        # With --workers the parent binds the port and each worker listens once it started.
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            raise AssertionError(f"server never became healthy:\n{log.read_text()}")
        time.sleep(0.05)
    return process, url


def _healthy(url: str) -> bool:
    try:
        return httpx2.get(f"{url}/health").status_code == 200
    except httpx2.TransportError:
        return False  # with --workers the port is announced before a worker accepts on it


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server process, killing it if it does not stop within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
