"""The ACL matrix: every principal x index x action of tests/server/acl_grants.py against a real
server (list, download, upload, admin over HTTP) and `authorize_index` (promote), and the
rendered table in docs/indexes.md equal to the one checked here."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx2
import pytest
from starlette.requests import Request

from releasekit.server.acl import authorize_index
from releasekit.server.app import create_app
from releasekit.server.auth import AuthError
from releasekit.server.indexes import IndexConfig, create_index, parse_actions, set_acl
from releasekit.server.localstore import LocalStorage
from releasekit.server.settings import load_settings
from releasekit.server.tokens import create_token
from tests.server.acl_grants import ACL, ACTIONS, INDEXES, PRINCIPALS, expected, render_matrix
from tests.server.conftest import launch_server, make_wheel, stop_server

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ROLES = {"root": "admin", "ci": "upload", "reader": "read", "releaser": "upload"}
AUTHENTICATE = "update,download,list"
Auth = tuple[str, str] | None


@dataclass(frozen=True)
class Setup:
    packages: Path
    passwords: Path
    credentials: dict[str, Auth]
    files: dict[str, str]  # index -> the file it holds


def _prefix(index: str) -> str:
    return "" if index == "root" else f"/{index}"


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    packages = tmp_path / "packages"
    root = LocalStorage(packages)
    root.prepare()
    passwords = tmp_path / "htpasswd"
    lines = [
        f"{name}:{bcrypt.hashpw(f'{name}-pw'.encode(), bcrypt.gensalt(rounds=4)).decode()}"
        for name in ROLES
    ]
    passwords.write_text("\n".join(lines) + "\n")
    roles = "".join(f'{name} = "{role}"\n' for name, role in ROLES.items())
    passwords.with_name("htpasswd.roles.toml").write_text("[roles]\n" + roles)
    create_index(root, IndexConfig("prod"))
    create_index(root, IndexConfig("staging", bases=("prod",)))
    for index, entries in ACL.items():
        for principal, actions in entries.items():
            set_acl(root, index, principal, parse_actions(actions))
    tokens = packages / ".releasekit" / "tokens.json"
    staging = create_token(
        tokens, owner="ci", actions=["list", "download", "update"], indexes=["staging"]
    )
    prod = create_token(
        tokens, owner="releaser", actions=["list", "download", "promote"], indexes=["prod"]
    )
    credentials: dict[str, Auth] = {name: (name, f"{name}-pw") for name in ROLES}
    credentials["anonymous"] = None
    credentials["token-staging"] = ("__token__", staging.value)
    credentials["token-prod"] = ("__token__", prod.value)
    files = {}
    for number, index in enumerate(INDEXES, start=1):
        directory = packages if index == "root" else packages / ".indexes" / index
        directory.mkdir(parents=True, exist_ok=True)
        files[index] = make_wheel(directory, "matrix", f"{number}.0").name
    return Setup(packages, passwords, credentials, files)


@pytest.fixture
def server(setup: Setup, tmp_path: Path) -> Iterator[str]:
    process, url = launch_server(
        setup.packages, tmp_path / "server.log", "-P", str(setup.passwords), "-a", AUTHENTICATE
    )
    yield url
    stop_server(process)


def _outcome(status: int, allowed: set[int]) -> str:
    if status in allowed:
        return "ok"
    assert status in (401, 403), status
    return str(status)


def _http(url: str, setup: Setup, wheel: Path, index: str, action: str, auth: Auth) -> str:
    base = url + _prefix(index)
    if action == "list":
        return _outcome(httpx2.get(f"{base}/simple/matrix/", auth=auth).status_code, {200})
    if action == "download":
        got = httpx2.get(f"{base}/packages/{setup.files[index]}", auth=auth)
        return _outcome(got.status_code, {200})
    form = {":action": "file_upload", "protocol_version": "1"}
    if action == "upload":
        files = {"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")}
        return _outcome(
            httpx2.post(f"{base}/legacy/", data=form, files=files, auth=auth).status_code, {200}
        )
    # admin: remove_pkg of a version nobody has: allowed means "404 no files", nothing removed
    form = {":action": "remove_pkg", "name": "matrix", "version": "9.9"}
    removed = httpx2.post(f"{base}/legacy/", data=form, auth=auth)
    return _outcome(removed.status_code, {404})


def _promote(setup: Setup) -> dict[tuple[str, str, str], str]:
    """`authorize_index(..., "promote", ...)` for every principal and index, in process over the
    same directory, password file and tokens."""
    settings = load_settings(
        {
            "packages_dir": setup.packages,
            "passwords": setup.passwords,
            "authenticate": AUTHENTICATE,
        },
        env={},
    )
    app = create_app(LocalStorage(setup.packages), settings)

    async def ask(auth: Auth, index: str) -> str:
        headers = []
        if auth is not None:
            pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode())
            headers.append((b"authorization", b"Basic " + pair))
        scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "app": app}
        scope["client"] = ("127.0.0.1", 1)
        try:
            await authorize_index(Request(scope), index, "promote", "matrix")
        except AuthError as exc:
            return str(exc.status)
        return "ok"

    async def every() -> dict[tuple[str, str, str], str]:
        return {
            (principal, index, "promote"): await ask(setup.credentials[principal], index)
            for principal in PRINCIPALS
            for index in INDEXES
        }

    try:
        return asyncio.run(every())
    finally:
        app.state.index.authorizer.close()


def test_the_acl_matrix(server: str, setup: Setup, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "uploaded", "1.0")
    observed = _promote(setup)
    for principal in PRINCIPALS:
        auth = setup.credentials[principal]
        for index in INDEXES:
            for action in ACTIONS:
                if action != "promote":
                    observed[(principal, index, action)] = _http(
                        server, setup, wheel, index, action, auth
                    )
    print("\n" + render_matrix(observed))  # the table as tested, for the closing note
    wrong = {
        cell: answer
        for cell, answer in observed.items()
        if answer != expected(*cell)  # principal, index, action
    }
    assert wrong == {}
    assert len(observed) == len(PRINCIPALS) * len(INDEXES) * len(ACTIONS)


def test_docs_carry_the_matrix_as_granted() -> None:
    docs = (ROOT / "docs" / "indexes.md").read_text(encoding="utf-8")
    assert render_matrix() in docs, "regenerate with `python -m tests.server.acl_grants`"
