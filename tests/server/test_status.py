"""PEP 792 project status: set by `releasekit server status`, served in HTML and JSON, enforced."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from releasekit.cli.server_cmds import server
from releasekit.errors import IndexServerError
from tests.server.conftest import Dists, snapshot, upload_form, wait_for

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
WHEEL = "alpha-1.0-py3-none-any.whl"


@pytest.fixture
def filled(packages: Path, dists: Dists) -> Path:
    for file in dists.directory.iterdir():
        shutil.copy(file, packages)
    return packages


def set_status(packages: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(server, ["status", *args, "--packages-dir", str(packages)])
    error = result.exception if isinstance(result.exception, IndexServerError) else None
    return result.exit_code, result.output + (f"{error.message} {error.hint}" if error else "")


def test_statuses_in_json_and_html_and_what_they_do(
    filled: Path, make_client: Callable[..., TestClient], dists: Dists
) -> None:
    client = make_client()
    page = client.get("/simple/alpha/", headers={"accept": JSON}).json()
    assert page["meta"]["api-version"] == "1.4"
    assert "project-status" not in page  # active is the default and is left out

    code, out = set_status(filled, "Alpha", "archived", "--reason", 'moved to "beta"')
    assert code == 0 and out == 'alpha is now archived (moved to "beta")\n'
    wait_for(
        lambda: "project-status" in client.get("/simple/alpha/", headers={"accept": JSON}).json()
    )
    page = client.get("/simple/alpha/", headers={"accept": JSON}).json()
    assert page["project-status"] == {"status": "archived", "reason": 'moved to "beta"'}
    assert WHEEL in {f["filename"] for f in page["files"]}  # archived files are still served
    html = client.get("/simple/alpha/", headers={"accept": HTML}).text
    assert '<meta name="pypi:project-status" content="archived">' in html
    assert '<meta name="pypi:project-status-reason" content="moved to &quot;beta&quot;">' in html
    assert client.get(f"/packages/{WHEEL}").status_code == 200
    data, files = upload_form(dists.path("alpha-1.1-py3-none-any.whl"))
    (filled / "alpha-1.1-py3-none-any.whl").unlink()
    before = sorted(p.name for p in filled.iterdir())
    refused = client.post("/legacy/", data=data, files=files)
    assert refused.status_code == 403
    assert "project 'alpha' is archived on this index" in refused.json()["detail"]
    assert sorted(p.name for p in filled.iterdir()) == before

    assert set_status(filled, "alpha", "quarantined", "--reason", "malware")[0] == 0
    wait_for(lambda: not client.get("/simple/alpha/", headers={"accept": JSON}).json()["files"])
    page = client.get("/simple/alpha/", headers={"accept": JSON}).json()
    assert page["project-status"] == {"status": "quarantined", "reason": "malware"}
    assert page["versions"] == []
    assert "href" not in client.get("/simple/alpha/", headers={"accept": HTML}).text
    for path in (f"/packages/{WHEEL}", f"/packages/{WHEEL}.metadata"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert answer.json()["code"] == "quarantined"
    assert client.post("/legacy/", data=data, files=files).status_code == 403

    assert set_status(filled, "alpha", "deprecated")[0] == 0
    wait_for(lambda: client.get(f"/packages/{WHEEL}").status_code == 200)
    page = client.get("/simple/alpha/", headers={"accept": JSON}).json()
    assert page["project-status"] == {"status": "deprecated"}
    assert client.post("/legacy/", data=data, files=files).status_code == 200

    assert set_status(filled, "alpha", "active")[0] == 0
    wait_for(
        lambda: (
            "project-status" not in client.get("/simple/alpha/", headers={"accept": JSON}).json()
        )
    )
    # A restart keeps what status.json says (the state file is the truth, pages are caches).
    assert set_status(filled, "alpha", "quarantined")[0] == 0
    fresh = make_client()
    assert fresh.get(f"/packages/{WHEEL}").status_code == 404


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["nothing-here", "archived"], "project 'nothing-here' is not on this index"),
        (["alpha", "archived", "--reason", "two\nlines"], "one line"),
        (["alpha", "broken"], "'broken' is not one of 'active'"),
    ],
)
def test_refused_status_changes_change_nothing(filled: Path, args: list[str], words: str) -> None:
    assert CliRunner().invoke(server, ["reindex", str(filled)]).exit_code == 0
    before = snapshot(filled)
    code, out = set_status(filled, *args)
    assert code != 0 and words in out
    assert snapshot(filled) == before
