"""The catalogue cache, the admin commands (reindex, yank, unyank, remove) and the access log."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from releasekit.cli.server_cmds import server
from releasekit.errors import IndexServerError
from tests.server.conftest import Dists, snapshot, wait_for

JSON = "application/vnd.pypi.simple.v1+json"
WHEEL = "alpha-1.0-py3-none-any.whl"


@pytest.fixture
def filled(packages: Path, dists: Dists) -> Path:
    for file in dists.directory.iterdir():
        shutil.copy(file, packages)
    return packages


def files_of(client: TestClient, project: str) -> dict[str, dict[str, object]]:
    data = client.get(f"/simple/{project}/", headers={"accept": JSON}).json()
    return {f["filename"]: f for f in data["files"]}


def cached(packages: Path) -> set[str]:
    """The filenames in the catalogue cache (a running server writes it within a second)."""
    path = packages / ".releasekit" / "catalogue.json"
    if not path.exists():
        return set()
    data = json.loads(path.read_bytes())
    at = data["fields"].index("filename")
    return {row[at] for row in data["files"]}


def test_restart_reuses_the_cache_instead_of_rehashing(
    filled: Path, make_client: Callable[..., TestClient]
) -> None:
    first = files_of(make_client(), "alpha")[WHEEL]["hashes"]
    wait_for(lambda: WHEEL in cached(filled))
    # Same size and mtime, different bytes: a cached record is trusted, so the hash stays.
    target = filled / WHEEL
    stat = target.stat()
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert files_of(make_client(), "alpha")[WHEEL]["hashes"] == first


def test_a_damaged_cache_is_rebuilt_from_the_files(
    filled: Path, make_client: Callable[..., TestClient]
) -> None:
    make_client()
    (filled / ".releasekit" / "catalogue.json").write_text("{not json", encoding="utf-8")
    assert len(files_of(make_client(), "alpha")) == 3


def test_reindex_rebuilds_everything_from_the_files(
    filled: Path, make_client: Callable[..., TestClient]
) -> None:
    result = CliRunner().invoke(server, ["reindex", str(filled)])
    assert result.exit_code == 0, result.output
    assert "indexed 4 files in 2 projects" in result.output
    state = filled / ".releasekit"
    assert (state / "simple" / "alpha" / "index.v1_json").is_file()
    # PEP 658 sidecars are written at their first request, from the recorded bytes.
    assert not (state / "metadata").exists()
    client = make_client()
    metadata = client.get(f"/packages/{WHEEL}.metadata")
    assert metadata.status_code == 200 and b"Name: alpha" in metadata.content
    assert (state / "metadata" / f"{WHEEL}.metadata").read_bytes() == metadata.content
    (filled / "junk-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    again = CliRunner().invoke(server, ["reindex", str(filled)])
    assert "skipped junk-1.0-py3-none-any.whl: " in again.output
    assert "is not a readable zip archive" in again.output


def test_yank_and_unyank_reach_a_running_server(
    filled: Path, make_client: Callable[..., TestClient]
) -> None:
    client = make_client()
    runner = CliRunner()
    result = runner.invoke(
        server, ["yank", "ALPHA", "1.0", "--reason", "broken build", "-D", str(filled)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(result.output.split()) == sorted(["yanked", WHEEL, "yanked", "alpha-1.0.tar.gz"])
    wait_for(lambda: files_of(client, "alpha")[WHEEL]["yanked"] == "broken build")
    html = client.get("/simple/alpha/", headers={"accept": "text/html"}).text
    assert 'data-yanked="broken build"' in html
    assert files_of(client, "alpha")["alpha-1.1-py3-none-any.whl"]["yanked"] is False
    runner.invoke(server, ["unyank", "alpha", "1.0", "-D", str(filled)])
    wait_for(lambda: files_of(client, "alpha")[WHEEL]["yanked"] is False)
    # The yank state survives a reindex: it is not derivable from the files.
    runner.invoke(server, ["yank", "alpha", "1.1", "-D", str(filled)])
    runner.invoke(server, ["reindex", str(filled)])
    assert files_of(make_client(), "alpha")["alpha-1.1-py3-none-any.whl"]["yanked"] is True


def test_remove_deletes_a_release_and_its_sidecars(
    filled: Path, make_client: Callable[..., TestClient]
) -> None:
    client = make_client()
    result = CliRunner().invoke(server, ["remove", "alpha", "1.0", "-D", str(filled)])
    assert result.exit_code == 0, result.output
    assert not (filled / WHEEL).exists()
    assert not (filled / ".releasekit" / "metadata" / f"{WHEEL}.metadata").exists()
    wait_for(lambda: list(files_of(client, "alpha")) == ["alpha-1.1-py3-none-any.whl"])
    assert client.get(f"/packages/{WHEEL}").status_code == 404


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["yank", "nothing", "1.0"], "project 'nothing' is not on this index"),
        (["remove", "alpha", "9.0"], "alpha has no release 9.0"),
        (["unyank", "alpha", "not-a-version"], "is not a valid PEP 440 version"),
    ],
)
def test_admin_commands_refuse_unknown_releases(
    filled: Path, args: list[str], message: str
) -> None:
    CliRunner().invoke(server, ["reindex", str(filled)])  # the cache exists, as on a live index
    before = snapshot(filled)
    result = CliRunner().invoke(server, [*args, "-D", str(filled)])
    assert isinstance(result.exception, IndexServerError)
    assert message in result.exception.message
    assert snapshot(filled) == before


def test_cli_imports_without_the_server_extra() -> None:
    code = (
        "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
        "import releasekit.cli.server_cmds as c; print(sorted(c.server.commands))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "'reindex', 'remove', 'retention', 'run'" in result.stdout


def test_access_log_has_one_key_value_line_per_request(
    filled: Path, make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    with caplog.at_level(logging.INFO, logger="releasekit.server.access"):
        client.get("/simple/alpha/", headers={"accept": JSON})
        client.get(f"/packages/{WHEEL}")
    lines = [r.getMessage() for r in caplog.records if r.name == "releasekit.server.access"]
    assert len(lines) == 2
    assert 'method=GET path="/simple/alpha/" status=200' in lines[0]
    assert "route=simple_project" in lines[0]
    assert f'path="/packages/{WHEEL}" status=200' in lines[1]
    size = (filled / WHEEL).stat().st_size
    assert f"bytes={size}" in lines[1]


def test_catalogue_cache_lives_in_a_dot_dir(
    filled: Path, make_client: Callable[..., TestClient]
) -> None:
    make_client()
    visible = sorted(p.name for p in filled.iterdir() if not p.name.startswith("."))
    assert visible == sorted(p.name for p in filled.iterdir() if p.suffix in (".whl", ".gz"))
    wait_for(lambda: cached(filled) == set(visible))
