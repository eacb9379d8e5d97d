"""The change log on a directory, and hostile entries: two apps on one packages directory play
two workers (each follows the other's entries; the second is never the leader)."""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from releasekit.cli.server_cmds import server
from releasekit.errors import IndexServerError
from releasekit.server.app import create_app
from releasekit.server.changes import ChangeLog, DirectoryObjects
from releasekit.server.localstore import LocalStorage, make_dirs
from releasekit.server.settings import load_settings
from tests.server.conftest import Dists, make_wheel, snapshot, upload_form, wait_for

WHEEL = "alpha-1.0-py3-none-any.whl"
JSON = "application/vnd.pypi.simple.v1+json"


def _log(packages: Path) -> Path:
    return packages / ".releasekit" / "log"


def _listed(client: TestClient, project: str) -> set[str]:
    page = client.get(f"/simple/{project}/", headers={"accept": JSON})
    return {f["filename"] for f in page.json()["files"]} if page.status_code == 200 else set()


def _upload(client: TestClient, path: Path) -> None:
    data, files = upload_form(path)
    response = client.post("/", data=data, files=files)
    assert response.status_code == 200, response.text


def _write_entry(packages: Path, number: int, body: bytes) -> Path:
    path = _log(packages) / f"{number:020d}"
    path.write_bytes(body)
    return path


def _without_locks(files: dict[str, bytes]) -> dict[str, bytes]:
    """The upload took its filename's lock stripe (an empty, private lock file)."""
    return {k: v for k, v in files.items() if not k.startswith(".releasekit/locks/")}


def _tail(packages: Path) -> int:
    return ChangeLog(DirectoryObjects(_log(packages), make_dirs)).tail()


def _append_many(directory: str) -> list[int]:
    log = ChangeLog(DirectoryObjects(Path(directory), make_dirs))
    return [log.append({"op": "yank", "filenames": [], "reason": None}) for _ in range(20)]


def test_racing_processes_take_dense_unique_numbers(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        numbers = sorted(n for got in pool.map(_append_many, [str(tmp_path)] * 4) for n in got)
    assert numbers == list(range(80))


def test_a_second_app_sees_an_upload_at_its_next_request_without_polling(
    make_client: Callable[..., TestClient], dists: Dists
) -> None:
    writer, follower = make_client(), make_client(poll_interval=60)
    assert _listed(follower, "alpha") == set()
    _upload(writer, dists.path(WHEEL))
    assert _listed(follower, "alpha") == {WHEEL}  # no poll ran: the request checked the log
    assert follower.get(f"/packages/{WHEEL}.metadata").status_code == 200


def test_garbage_and_escaping_entries_are_skipped_and_change_nothing(
    make_client: Callable[..., TestClient],
    packages: Path,
    dists: Dists,
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer, follower = make_client(), make_client(poll_interval=60)
    _upload(writer, dists.path(WHEEL))
    assert _listed(follower, "alpha") == {WHEEL}
    tail = _tail(packages)
    hostile = [
        b"\x00garbage, not JSON",
        json.dumps(["a", "list"]).encode(),
        json.dumps(
            {"op": "put", "filename": "../escape-1.0-py3-none-any.whl", "size": 1, "mtime_ns": 1}
        ).encode(),
        json.dumps(
            {"op": "del", "filename": WHEEL.replace("alpha", "../alpha"), "size": 1, "mtime_ns": 1}
        ).encode(),
        json.dumps({"op": "yank", "filenames": ["../x", WHEEL], "reason": "forged"}).encode(),
        json.dumps({"op": "index", "records": [{"filename": "/etc/passwd"}]}).encode(),
        json.dumps(
            {"op": "status", "project": "../alpha", "status": "quarantined", "reason": ""}
        ).encode(),
        json.dumps(
            {
                "op": "put",
                "filename": WHEEL,
                "size": 1,
                "mtime_ns": 1,
                "record": {"sha256": "0" * 64},
            }
        ).encode(),
        # Well formed, but for other bytes (size 1): the listed record stays the real one.
        json.dumps(
            {
                "op": "put",
                "filename": WHEEL,
                "size": 1,
                "mtime_ns": 1,
                "record": {
                    "project": "alpha",
                    "name": "alpha",
                    "version": "1.0",
                    "kind": "wheel",
                    "sha256": "0" * 64,
                    "blake2b": "0" * 64,
                    "requires_python": None,
                    "metadata_sha256": None,
                },
            }
        ).encode(),
    ]
    for n, body in enumerate(hostile, start=tail + 1):
        _write_entry(packages, n, body)
    before = snapshot(packages.parent)
    caplog.set_level(logging.WARNING, "releasekit.server")
    assert _listed(follower, "alpha") == {WHEEL}
    page = follower.get("/simple/alpha/", headers={"accept": JSON}).json()
    assert page["files"][0]["yanked"] is False  # the forged yank named a path: all of it skipped
    assert page["files"][0]["hashes"]["sha256"] != "0" * 64
    assert "project-status" not in page
    # Both apps follow the log, so each warns once per entry it skipped.
    skipped = {r.getMessage() for r in caplog.records if "skipped" in r.getMessage()}
    assert len(skipped) == len(hostile) - 1, skipped  # the last one is valid in shape
    assert not (packages.parent / "escape-1.0-py3-none-any.whl").exists()
    assert snapshot(packages.parent) == before
    # The log goes on: the next upload is still seen at once.
    _upload(writer, dists.path("alpha-1.1-py3-none-any.whl"))
    assert _listed(follower, "alpha") == {WHEEL, "alpha-1.1-py3-none-any.whl"}


def test_a_gap_in_the_numbers_is_reported_and_filled_late(
    make_client: Callable[..., TestClient],
    packages: Path,
    dists: Dists,
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer, follower = make_client(poll_interval=60), make_client()
    _upload(writer, dists.path(WHEEL))
    wait_for(lambda: _listed(follower, "alpha") == {WHEEL})
    caplog.set_level(logging.WARNING, "releasekit.server")
    ahead = _tail(packages) + 3  # two numbers missing before it
    # A yank whose entry landed past two lost ones (its snapshot was written first, as always).
    (packages / ".releasekit" / "yanked.json").write_text(json.dumps({WHEEL: "broken"}))
    _write_entry(
        packages,
        ahead,
        json.dumps({"op": "yank", "filenames": [WHEEL], "reason": "broken"}).encode(),
    )
    wait_for(lambda: any("missing" in r.getMessage() for r in caplog.records))
    page = follower.get("/simple/alpha/", headers={"accept": JSON}).json()
    assert page["files"][0]["yanked"] == "broken"
    # The writer had not seen the entry past the gap: its next entry fills the gap, and the
    # follower (already past it) still applies it at its next request.
    _upload(writer, dists.path("alpha-1.1-py3-none-any.whl"))
    assert _listed(follower, "alpha") == {WHEEL, "alpha-1.1-py3-none-any.whl"}


def test_a_log_that_is_not_a_directory_refuses_the_start(packages: Path) -> None:
    make_dirs(packages / ".releasekit")
    _log(packages).write_bytes(b"in the way")
    before = snapshot(packages)
    settings = load_settings({"packages_dir": packages, "authenticate": "."}, env={})
    with pytest.raises(IndexServerError) as caught:
        create_app(LocalStorage(packages), settings)
    assert "change log" in caught.value.message and str(_log(packages)) in caught.value.message
    assert "remove what is in the way" in str(caught.value.hint)
    assert snapshot(packages) == before


def test_a_log_broken_while_running_refuses_uploads_and_stores_nothing(
    make_client: Callable[..., TestClient], packages: Path, dists: Dists, tmp_path: Path
) -> None:
    client = make_client()
    _upload(client, dists.path(WHEEL))
    _log(packages).rename(tmp_path / "moved-log")
    _log(packages).write_bytes(b"in the way")
    before = _without_locks(snapshot(packages))
    wheel = make_wheel(tmp_path, "alpha", "2.0")
    data, files = upload_form(wheel)
    response = client.post("/", data=data, files=files)
    assert response.status_code == 503, response.text
    assert "change log is not writable): nothing was stored" in response.json()["detail"]
    assert str(packages) not in response.text  # no server paths to clients
    assert _without_locks(snapshot(packages)) == before
    assert _listed(client, "alpha") == {WHEEL}


def test_yanks_and_statuses_from_the_cli_are_seen_at_the_next_request(
    make_client: Callable[..., TestClient], packages: Path, dists: Dists
) -> None:
    writer, follower = make_client(), make_client(poll_interval=60)
    _upload(writer, dists.path(WHEEL))
    assert _listed(follower, "alpha") == {WHEEL}
    runner = CliRunner()
    result = runner.invoke(server, ["yank", "alpha", "1.0", "--reason", "bad", "-D", str(packages)])
    assert result.exit_code == 0, result.output
    page = follower.get("/simple/alpha/", headers={"accept": JSON}).json()
    assert page["files"][0]["yanked"] == "bad"  # no poll ran: the yank is a log entry
    result = runner.invoke(
        server, ["status", "alpha", "archived", "--reason", "moved", "-D", str(packages)]
    )
    assert result.exit_code == 0, result.output
    page = follower.get("/simple/alpha/", headers={"accept": JSON}).json()
    assert page["project-status"] == {"status": "archived", "reason": "moved"}
    ops = [json.loads(p.read_bytes())["op"] for p in sorted(_log(packages).iterdir())]
    assert ops[-2:] == ["yank", "status"]


def test_a_store_logged_without_a_record_brings_its_yank_at_the_next_request(
    make_client: Callable[..., TestClient], packages: Path, dists: Dists
) -> None:
    follower = make_client(poll_interval=60)
    assert _listed(follower, "alpha") == set()
    # What a promotion or a bundle import does: the yank snapshot first, then a plain store.
    (packages / ".releasekit" / "yanked.json").write_text(json.dumps({WHEEL: "withdrawn"}))
    storage = LocalStorage(packages)
    with storage.new_upload() as upload:
        upload.write(dists.path(WHEEL).read_bytes())
        assert upload.create(WHEEL) is not None
    page = follower.get("/simple/alpha/", headers={"accept": JSON}).json()
    assert [(f["filename"], f["yanked"]) for f in page["files"]] == [(WHEEL, "withdrawn")]
