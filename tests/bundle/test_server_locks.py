"""The index serves imported bundle locks at /bundles/<id|latest>/<target>.txt, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from releasekit.server.app import create_app
from releasekit.server.localstore import LocalStorage
from releasekit.server.settings import load_settings
from tests.server.conftest import Users

LOCK = b"app==1.0 --hash=sha256:" + b"0" * 64 + b"\n"


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    """A packages directory holding one imported lock and a secret beside it."""
    root = tmp_path / "packages"
    state = root / ".releasekit"
    (state / "bundles" / "latest").mkdir(parents=True)
    (state / "bundles" / "latest" / "win_amd64-py313.txt").write_bytes(LOCK)
    (state / "bundles" / "latest" / "notes.toml").write_bytes(b"not a lock")
    (state / "yanked.json").write_text('{"do-not-serve": ""}')
    (state / "outside-py313.txt").write_text("SECRET-OUTSIDE")
    (tmp_path / "outside-py313.txt").write_text("SECRET-OUTSIDE")
    return root


@pytest.fixture
def make_client(packages: Path) -> Callable[..., TestClient]:
    def build(**overrides: object) -> TestClient:
        values: dict[str, object] = {"packages_dir": packages, "authenticate": ".", **overrides}
        settings = load_settings(values, env={})
        return TestClient(create_app(LocalStorage(packages), settings))

    return build


def test_an_imported_lock_is_served_as_text(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    response = client.get("/bundles/latest/win_amd64-py313.txt")
    assert response.status_code == 200 and response.content == LOCK
    assert response.headers["content-type"].startswith("text/plain")
    assert client.head("/bundles/latest/win_amd64-py313.txt").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/bundles/latest/..%2Fyanked.json",
        "/bundles/latest/..%2F..%2Foutside-py313.txt",
        "/bundles/..%2F..%2F..%2Foutside/x-py313.txt",
        "/bundles/%2E%2E/yanked.json",
        "/bundles/latest/%2E%2E%2Fyanked-py313.txt",
        "/bundles/latest/notes.toml",
        "/bundles/latest/win_amd64-py313.txt%00",
        "/bundles/latest/win_amd64-py313.txt.bak",
        "/bundles/LATEST/win_amd64-py313.txt",
        "/bundles/latest/WIN_AMD64-py313.txt",
        "/bundles/0123456789abcdef0123456z/win_amd64-py313.txt",
        "/bundles/latest/" + "a" * 5000 + "-py313.txt",
        "/bundles/latest/win_amd64-py313.txt/",
        "/bundles/latest/",
        "/bundles/latest/%ff-py313.txt",
    ],
)
def test_hostile_lock_names_get_a_404_problem(
    make_client: Callable[..., TestClient], path: str
) -> None:
    response = make_client().get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert b"do-not-serve" not in response.content and b"SECRET-OUTSIDE" not in response.content


def test_only_get_and_head_are_allowed(make_client: Callable[..., TestClient]) -> None:
    response = make_client().post("/bundles/latest/win_amd64-py313.txt", content=b"x")
    assert response.status_code == 405


def test_locks_need_the_same_credentials_as_a_listing(
    make_client: Callable[..., TestClient], users: Users
) -> None:
    client = make_client(passwords=users.passwords, authenticate="download,list")
    assert client.get("/bundles/latest/win_amd64-py313.txt").status_code == 401
    wrong = client.get("/bundles/latest/win_amd64-py313.txt", auth=("reader", "nope"))
    assert wrong.status_code == 401
    # an unknown name answers 401 too: nothing about what exists leaks before authentication
    assert client.get("/bundles/latest/x-py313.txt").status_code == 401
    ok = client.get("/bundles/latest/win_amd64-py313.txt", auth=users.credentials["reader"])
    assert ok.status_code == 200 and ok.content == LOCK
