"""The auth matrix: every `-a` setting x every kind of caller x every action over HTTP.

The expected outcome of each cell comes from two small tables written by hand (what each
caller is granted, which callers carry no valid credentials), not from the server's code.
An allowed upload must store its file; a refused one must store nothing. There is no yank
over HTTP (`releasekit server yank` works on the directory), so `remove_pkg` is the admin cell.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.adversarial.auth_helpers import (
    Accounts,
    basic,
    in_process,
    index_settings,
    make_accounts,
)
from tests.server.conftest import make_wheel

SETTINGS = [
    ".",
    *(",".join(c) for n in (1, 2, 3) for c in combinations(("download", "list", "update"), n)),
]

# What each caller with valid credentials may do: an action, or `action:project` for a scope.
GRANTS: dict[str, frozenset[str]] = {
    "reader": frozenset({"list", "download"}),
    "ci": frozenset({"list", "download", "update"}),
    "root": frozenset({"list", "download", "update", "admin"}),
    "ci-any": frozenset({"list", "download", "update"}),  # token, every project
    "ci-alpha": frozenset({"update:alpha"}),  # token, uploads to alpha only
    "reader-token": frozenset({"list", "download"}),
    "root-token": frozenset({"list", "download", "update", "admin"}),
}
# Callers without valid credentials: 401 wherever credentials are needed.
NO_CREDENTIALS: dict[str, dict[str, str]] = {
    "anonymous": {},
    "wrong-password": basic("ci", "not-the-password"),
    "unknown-user": basic("mallory", "ci-secret"),
    "forged-token": basic("__token__", "rk_000000000000_" + "a" * 32),
    "malformed": {"authorization": "Basic !!not-base64"},
    "other-scheme": {"authorization": "Digest username=ci"},
}
CALLERS = [*GRANTS, "expired", *NO_CREDENTIALS]


@dataclass(frozen=True)
class Action:
    """One thing a client can ask: the auth action it needs, its project, the success status."""

    name: str
    needs: str
    project: str
    allowed: int


ACTIONS = [
    Action("list-root", "list", "", 200),
    Action("list-project", "list", "alpha", 200),
    Action("metrics", "list", "", 200),
    Action("download", "download", "alpha", 200),
    Action("download-metadata", "download", "alpha", 200),
    Action("upload-alpha", "update", "alpha", 200),
    Action("upload-beta", "update", "beta", 200),
    Action("remove", "admin", "alpha", 404),  # allowed, and there is no such version
]


def expected(setting: str, caller: str, action: Action) -> int:
    needed = action.needs == "admin" or action.needs in setting.split(",")
    if not needed:
        return action.allowed
    if caller not in GRANTS:
        return 401
    grants = GRANTS[caller]
    allowed = action.needs in grants or f"{action.needs}:{action.project}" in grants
    return action.allowed if allowed else 403


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Accounts:
    return make_accounts(tmp_path_factory.mktemp("accounts"))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """A wheel of `project` at a version made up for one cell (so each upload is new)."""
    directory = tmp_path_factory.mktemp("wheels")
    made: dict[tuple[str, str], Path] = {}

    def wheel(project: str, version: str) -> Path:
        if (project, version) not in made:
            made[project, version] = make_wheel(directory, project, version)
        return made[project, version]

    return wheel


@pytest.fixture
def packages(tmp_path: Path, wheels: Callable[[str, str], Path]) -> Path:
    path = tmp_path / "packages"
    path.mkdir()
    for project in ("alpha", "beta"):
        source = wheels(project, "1.0")
        (path / source.name).write_bytes(source.read_bytes())  # copied in by hand
    return path


@pytest.fixture(params=SETTINGS, ids=lambda s: f"-a {s}")
def setting(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def index(packages: Path, accounts: Accounts, setting: str) -> Iterator[TestClient]:
    values = index_settings(packages, accounts, authenticate=setting, auth_throttle=False)
    with in_process(values) as client:
        yield client


def headers_of(accounts: Accounts, caller: str) -> dict[str, str]:
    if caller in NO_CREDENTIALS:
        return NO_CREDENTIALS[caller]
    return accounts.header(caller)


def ask(
    client: TestClient,
    action: Action,
    headers: dict[str, str],
    wheel: Callable[[str, str], Path],
    cell: int,
) -> tuple[int, Path | None]:
    """Perform `action`; the status, and for uploads the wheel sent."""
    sent: Path | None = None
    if action.name == "list-root":
        response = client.get("/simple/", headers=headers)
    elif action.name == "list-project":
        response = client.get("/simple/alpha/", headers=headers)
    elif action.name == "metrics":
        response = client.get("/metrics", headers=headers)
    elif action.name == "download":
        response = client.get("/packages/alpha-1.0-py3-none-any.whl", headers=headers)
    elif action.name == "download-metadata":
        response = client.get("/packages/alpha-1.0-py3-none-any.whl.metadata", headers=headers)
    elif action.name.startswith("upload"):
        sent = wheel(action.project, f"2.0.{cell}")
        data = sent.read_bytes()
        fields: dict[str, Any] = {
            ":action": "file_upload",
            "protocol_version": "1",
            "name": action.project,
            "version": f"2.0.{cell}",
            "sha256_digest": hashlib.sha256(data).hexdigest(),
        }
        files = {"content": (sent.name, data, "application/octet-stream")}
        response = client.post("/legacy/", headers=headers, data=fields, files=files)
    else:
        fields = {":action": "remove_pkg", "name": "alpha", "version": "9.9"}
        response = client.post("/legacy/", headers=headers, data=fields)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", response.text
        if response.status_code == 401:
            assert "www-authenticate" in response.headers
    return response.status_code, sent


def test_every_caller_and_action(
    index: TestClient,
    setting: str,
    accounts: Accounts,
    packages: Path,
    wheels: Callable[[str, str], Path],
) -> None:
    wrong: list[str] = []
    cell = 0
    for caller in CALLERS:
        for action in ACTIONS:
            cell += 1
            want = expected(setting, caller, action)
            got, sent = ask(index, action, headers_of(accounts, caller), wheels, cell)
            if got != want:
                wrong.append(f"{caller} {action.name}: {got}, expected {want}")
            if sent is not None and (packages / sent.name).exists() != (want == 200):
                wrong.append(f"{caller} {action.name}: stored={(packages / sent.name).exists()}")
    assert not wrong, f"-a {setting}:\n" + "\n".join(wrong)
    assert cell == len(CALLERS) * len(ACTIONS)
