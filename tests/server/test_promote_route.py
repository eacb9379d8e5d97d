"""`POST /_/promote`: in process for the answers and refusals, a real server for the races.

Named indexes are not served on this branch yet (branch `indexes`), so the route is driven on
the root app; its stores are the real ones (`<packages>/.indexes/<name>/`).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from releasekit.server.indexes import IndexConfig, create_index
from releasekit.server.localstore import LocalStorage
from releasekit.server.maintenance import set_yanked
from releasekit.server.promote import promote_between
from releasekit.server.tokens import ACTIONS, create_token
from tests.server.conftest import (
    Users,
    launch_server,
    make_sdist,
    make_wheel,
    snapshot,
    stop_server,
    upload_form,
    wait_for,
)

WHEEL = "alpha-1.0-py3-none-any.whl"
SDIST = "alpha-1.0.tar.gz"
UPLOADED_NS = 1_700_000_000_000_000_000
JSON_PAGE = "application/vnd.pypi.simple.v1+json"
# A token that may promote: its own `promote` scope once branch `indexes` (index-scoped tokens)
# has landed; until then the stand-in in acl.py maps promoting onto `update`.
PROMOTE_SCOPE = ["promote"] if "promote" in ACTIONS else ["update"]
ASK = {"project": "alpha", "version": "1.0", "from": "staging", "to": "prod"}


def _with_staging(packages: Path, dists: Path) -> dict[str, str]:
    """Indexes staging and prod, alpha 1.0 (wheel + sdist) in staging; returns the sha256s."""
    root = LocalStorage(packages)
    root.prepare()
    for name in ("staging", "prod"):
        create_index(root, IndexConfig(name))
        LocalStorage(packages / ".indexes" / name).prepare()
    hashes = {}
    for made in (make_wheel(dists, "alpha", "1.0"), make_sdist(dists, "alpha", "1.0")):
        stored = packages / ".indexes/staging" / made.name
        stored.write_bytes(made.read_bytes())
        os.utime(stored, ns=(UPLOADED_NS, UPLOADED_NS))
        hashes[made.name] = hashlib.sha256(made.read_bytes()).hexdigest()
    return hashes


@pytest.fixture
def staged(packages: Path, tmp_path: Path) -> dict[str, str]:
    dists = tmp_path / "dists"
    dists.mkdir()
    return _with_staging(packages, dists)


def test_promotes_into_the_root_index_which_lists_the_files_at_once(
    client: TestClient, packages: Path, staged: dict[str, str]
) -> None:
    answer = client.post("/_/promote", json={**ASK, "to": "root"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["from"] == "staging" and body["to"] == "root"
    assert {f["filename"]: (f["sha256"], f["action"]) for f in body["files"]} == {
        name: (sha256, "copied") for name, sha256 in staged.items()
    }
    page = client.get("/simple/alpha/", headers={"accept": JSON_PAGE}).json()  # no poll wait
    assert {f["filename"]: f["hashes"]["sha256"] for f in page["files"]} == staged
    assert {f["upload-time"] for f in page["files"]} == {"2023-11-14T22:13:20.000000Z"}

    again = client.post("/_/promote", json={**ASK, "to": "root"}).json()
    assert [f["action"] for f in again["files"]] == ["present", "present"]
    onward = client.post("/_/promote", json={**ASK, "from": "root"})
    assert onward.status_code == 200, onward.text
    assert (packages / ".indexes/prod" / WHEEL).read_bytes() == (packages / WHEEL).read_bytes()


def _refused(
    client: TestClient,
    packages: Path,
    status: int,
    message: str,
    *,
    body: Any = None,
    content: bytes | None = None,
    **request: Any,
) -> dict[str, Any]:
    """POST; check the problem's status and message, and that no store changed."""
    _settle(client)
    before = snapshot(packages)
    if content is not None:
        answer = client.post("/_/promote", content=content, **request)
    else:
        answer = client.post("/_/promote", json=ASK if body is None else body, **request)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = answer.json()
    assert message in problem["detail"], problem
    assert snapshot(packages) == before
    return problem


def _settle(client: TestClient) -> None:
    """Let the app serve every index of the registry, index their files and save its caches, so
    that nothing the app does on its own clock lands between two snapshots."""
    indexes = client.app.state.indexes  # type: ignore[attr-defined]
    indexes.refresh()
    served = [indexes.root, *indexes.states.values()]
    wait_for(lambda: not any(state.catalogue.pending for state in served))
    for state in served:
        state.catalogue.flush()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({**ASK, "to": "staging"}, 400, "cannot promote index 'staging' into itself"),
        ({**ASK, "to": "qa"}, 404, "there is no index 'qa'"),
        ({**ASK, "from": ".."}, 400, "'..' cannot name an index"),
        ({**ASK, "to": "../../etc"}, 400, "'../../etc' cannot name an index"),
        ({**ASK, "from": "staging/../prod"}, 400, "cannot name an index"),
        ({**ASK, "version": "9.9"}, 404, "alpha 9.9 has no files on the source index"),
        ({**ASK, "project": "beta"}, 404, "beta 1.0 has no files on the source index"),
        ({**ASK, "project": "../alpha"}, 400, "'../alpha' is not a project name"),
        ({**ASK, "version": "1.0 ; rm"}, 400, "'1.0 ; rm' is not a version"),
        ({**ASK, "version": "1.0.dev.x.y"}, 400, "is not a valid PEP 440 version"),
        ({k: v for k, v in ASK.items() if k != "to"}, 400, "the field 'to' is missing"),
        ({**ASK, "to": 7}, 400, "the field 'to' is missing or not a string"),
        ({**ASK, "include_yanked": "yes"}, 400, "'include_yanked' is missing or not true or"),
        ({**ASK, "form": "staging"}, 400, "unknown fields: 'form'"),
        ([ASK], 400, "the body is not a JSON object"),
    ],
)
def test_malformed_and_impossible_requests_change_nothing(
    client: TestClient,
    packages: Path,
    staged: dict[str, str],
    body: Any,
    status: int,
    message: str,
) -> None:
    _refused(client, packages, status, message, body=body)


def test_bodies_that_are_not_json_or_too_large(
    client: TestClient, packages: Path, staged: dict[str, str]
) -> None:
    _refused(client, packages, 400, "the body is not JSON", content=b"project=alpha")
    _refused(client, packages, 400, "the body is not JSON", content=b"\xff\xfe{}")
    _refused(client, packages, 400, "the body is not JSON", content=b"")
    padded = json.dumps({**ASK, "project": "a" * 10_000}).encode()
    _refused(client, packages, 413, "larger than 4096 bytes", content=padded)

    def chunks() -> Any:  # no Content-Length: the cap holds while streaming
        for _ in range(1000):
            yield b" " * 1024

    _refused(client, packages, 413, "larger than 4096 bytes", content=chunks())


def test_other_bytes_in_the_target_are_a_409_and_nothing_is_copied(
    client: TestClient, packages: Path, staged: dict[str, str], tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (packages / ".indexes/prod" / SDIST).write_bytes(
        make_sdist(other, "alpha", "1.0", requires_python=">=3.12").read_bytes()
    )
    problem = _refused(client, packages, 409, f"{SDIST} (target ")
    assert problem["code"] == "file-exists"
    assert not (packages / ".indexes/prod" / WHEEL).exists()


def test_who_may_promote(
    make_client: Callable[..., TestClient],
    packages: Path,
    staged: dict[str, str],
    users: Users,
) -> None:
    tokens = packages / ".releasekit/tokens.json"
    other_project = create_token(tokens, owner="ci", projects=["beta"], actions=PROMOTE_SCOPE).value
    read_only = create_token(tokens, owner="ci", actions=["download"]).value
    promoter = create_token(tokens, owner="ci", projects=["alpha"], actions=PROMOTE_SCOPE).value
    client = make_client(passwords=users.passwords, authenticate="update,download,list")

    _refused(client, packages, 401, "credentials are required")
    _refused(client, packages, 401, "wrong password", auth=("ci", "nope"))
    _refused(client, packages, 403, "has the role 'read'", auth=users.credentials["reader"])
    bearer = {"authorization": f"Bearer {other_project}"}
    _refused(client, packages, 403, "scoped to the projects beta", headers=bearer)
    bearer = {"authorization": f"Bearer {read_only}"}
    _refused(client, packages, 403, "scoped to the actions download", headers=bearer)

    answer = client.post("/_/promote", json=ASK, headers={"authorization": f"Bearer {promoter}"})
    assert answer.status_code == 200, answer.text
    answer = client.post("/_/promote", json=ASK, auth=users.credentials["ci"])
    assert [f["action"] for f in answer.json()["files"]] == ["present", "present"]


def _post_all(url: str, bodies: list[tuple[str, dict[str, Any]]]) -> list[httpx2.Response]:
    """Send every request from its own thread, released together."""
    answers: list[httpx2.Response | None] = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def send(slot: int, path: str, payload: dict[str, Any]) -> None:
        start.wait()
        if "json" in payload:
            answers[slot] = httpx2.post(f"{url}{path}", json=payload["json"], timeout=60)
        else:
            answers[slot] = httpx2.post(f"{url}{path}", timeout=60, **payload)

    threads = [
        threading.Thread(target=send, args=(n, path, payload))
        for n, (path, payload) in enumerate(bodies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def test_racing_promotions_and_a_racing_upload_of_other_bytes(
    packages: Path, staged: dict[str, str], tmp_path: Path
) -> None:
    process, url = launch_server(packages, tmp_path / "server.log", "-a", ".")
    try:
        answers = _post_all(url, [("/_/promote", {"json": ASK})] * 5)
        assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
        actions = [(f["filename"], f["action"]) for a in answers for f in a.json()["files"]]
        for name, sha256 in staged.items():
            assert actions.count((name, "copied")) == 1, actions
            assert actions.count((name, "present")) == 4, actions
            assert hashlib.sha256((packages / ".indexes/prod" / name).read_bytes()).hexdigest() == (
                sha256
            )

        for round_ in range(4):  # each round: a new version, promote vs. an upload of other bytes
            version = f"2.{round_}"
            ours = make_wheel(tmp_path / "dists", "alpha", version)
            (packages / ".indexes/staging" / ours.name).write_bytes(ours.read_bytes())
            theirs_dir = tmp_path / f"theirs{round_}"
            theirs_dir.mkdir()
            theirs = make_wheel(theirs_dir, "alpha", version, payload=b"# other bytes\n")
            data, files = upload_form(theirs)
            promote_answer, upload_answer = _post_all(
                url,
                [
                    ("/_/promote", {"json": {**ASK, "version": version, "to": "root"}}),
                    ("/legacy/", {"data": data, "files": files}),
                ],
            )
            stored = (packages / ours.name).read_bytes()
            if promote_answer.status_code == 200:
                assert upload_answer.status_code == 409, upload_answer.text
                assert stored == ours.read_bytes()
            else:
                assert promote_answer.status_code == 409, promote_answer.text
                assert "other bytes" in promote_answer.json()["detail"]
                assert upload_answer.status_code == 200, upload_answer.text
                assert stored == theirs.read_bytes()
    finally:
        stop_server(process)


def test_yanked_files_need_include_yanked_and_arrive_yanked(
    client: TestClient, packages: Path, staged: dict[str, str]
) -> None:
    staging = LocalStorage(packages / ".indexes/staging")
    set_yanked(staging, "alpha", "1.0", "broken wheel tags")
    problem = _refused(client, packages, 409, "are yanked on the source index")
    assert problem["code"] == "yanked" and "--include-yanked" in problem["hint"]

    answer = client.post("/_/promote", json={**ASK, "to": "root", "include_yanked": True})

    assert answer.status_code == 200, answer.text
    page = client.get("/simple/alpha/", headers={"accept": JSON_PAGE}).json()
    assert {f["yanked"] for f in page["files"]} == {"broken wheel tags"}


def test_a_running_index_shows_provenance_promoted_behind_its_back(
    make_client: Callable[..., TestClient], packages: Path, staged: dict[str, str]
) -> None:
    """The CLI writes the stores directly: the server's poll finds the files and their
    provenance (the provenance index is re-read when files change behind its back)."""
    client = make_client()
    staging = LocalStorage(packages / ".indexes/staging")
    record = {"sha256": staged[WHEEL], "provenance": {"version": 1, "attestation_bundles": []}}
    staging.write_state(f"provenance/{WHEEL}.json", json.dumps(record).encode())
    staging.write_state("provenance/index.json", json.dumps({WHEEL: staged[WHEEL]}).encode())
    root = LocalStorage(packages)

    promote_between(root, lambda n: LocalStorage(packages / ".indexes" / n), "alpha", "1.0",
                    "staging", "root")  # fmt: skip

    def listed() -> bool:
        page = client.get("/simple/alpha/", headers={"accept": JSON_PAGE})
        return page.status_code == 200 and len(page.json()["files"]) == 2

    wait_for(listed)
    page = client.get("/simple/alpha/", headers={"accept": JSON_PAGE}).json()
    links = {f["filename"]: f["provenance"] for f in page["files"]}
    assert links == {WHEEL: f"../../integrity/alpha/1.0/{WHEEL}/provenance", SDIST: None}
    kept = client.get(f"/integrity/alpha/1.0/{WHEEL}/provenance")
    assert kept.status_code == 200 and kept.json() == record["provenance"]
