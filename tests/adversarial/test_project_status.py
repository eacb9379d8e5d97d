"""Hostile requests around PEP 792 statuses: no way around a quarantine, no markup injection."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from releasekit.cli.server_cmds import server
from releasekit.errors import IndexServerError
from releasekit.server.app import create_app
from releasekit.server.localstore import LocalStorage
from releasekit.server.settings import load_settings
from tests.server.conftest import Dists, upload_form

WHEEL = "alpha-1.0-py3-none-any.whl"
HTML = "application/vnd.pypi.simple.v1+html"


@pytest.fixture
def filled(packages: Path, dists: Dists) -> Path:
    for file in dists.directory.iterdir():
        shutil.copy(file, packages)
    return packages


def status(packages: Path, *args: str) -> None:
    result = CliRunner().invoke(server, ["status", *args, "--packages-dir", str(packages)])
    assert result.exit_code == 0, result.output


def test_a_reason_cannot_inject_markup(
    filled: Path, make_client: Callable[..., TestClient]
) -> None:
    status(filled, "alpha", "archived", "--reason", '"><script>alert(1)</script>')
    client = make_client()
    page = client.get("/simple/alpha/", headers={"accept": HTML}).text
    assert "<script>" not in page
    assert 'content="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    on_disk = (filled / ".releasekit/simple/alpha/index.html").read_text()
    assert "<script>" not in on_disk


def test_no_way_around_a_quarantine(
    filled: Path, make_client: Callable[..., TestClient], dists: Dists
) -> None:
    status(filled, "alpha", "quarantined", "--reason", "malware")
    client = make_client()
    for method, path, headers in [
        ("GET", f"/packages/{WHEEL}", {}),
        ("HEAD", f"/packages/{WHEEL}", {}),
        ("GET", f"/packages/{WHEEL}", {"range": "bytes=0-10"}),
        ("GET", f"/packages/{WHEEL}", {"if-none-match": "*"}),
        ("GET", "/packages/alpha-1.0.tar.gz", {}),
        ("GET", f"/packages/{WHEEL}.metadata", {}),
        ("GET", f"/integrity/alpha/1.0/{WHEEL}/provenance", {}),
    ]:
        answer = client.request(method, path, headers=headers)
        assert answer.status_code == 404, (method, path, answer.status_code)
        if method == "GET":
            assert answer.json()["code"] == "quarantined", path
    for alias in ("Alpha", "ALPHA", "alpha_"):  # redirects land on the normalized, empty page
        page = client.get(f"/simple/{alias}/", headers={"accept": HTML})
        assert "href" not in page.text
    wheel = dists.path("alpha-1.1-py3-none-any.whl")
    (filled / wheel.name).unlink()
    for fields in ({"name": "Alpha"}, {}, {"name": "beta-lib"}):
        data, files = upload_form(wheel, **fields)
        answer = client.post("/legacy/", data=data, files=files)
        assert answer.status_code in (400, 403), answer.text
        assert not (filled / wheel.name).exists()


def test_a_damaged_status_file_is_refused_at_start(filled: Path) -> None:
    state = filled / ".releasekit"
    state.mkdir(exist_ok=True)
    (state / "status.json").write_text('{"alpha": {"status": "gone"}}')
    settings = load_settings({"packages_dir": filled}, env={})
    with pytest.raises(IndexServerError, match=r"status\.json in the state directory is malformed"):
        create_app(LocalStorage(filled), settings)
