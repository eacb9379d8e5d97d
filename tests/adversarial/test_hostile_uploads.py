"""The seeded hostile-upload campaign, in process: no 5xx, nothing stored from a refusal.

RELEASEKIT_ADVERSARIAL_COUNT (default 10,000) and RELEASEKIT_ADVERSARIAL_SEED replay or widen it.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from releasekit.server.app import create_app
from releasekit.server.localstore import TEMP_PREFIX, LocalStorage
from releasekit.server.settings import load_settings
from tests.adversarial.generator import generate

JSON = "application/vnd.pypi.simple.v1+json"
COUNT = int(os.environ.get("RELEASEKIT_ADVERSARIAL_COUNT", "10000"))
SEED = int(os.environ.get("RELEASEKIT_ADVERSARIAL_SEED", "8"))


def visible(packages: Path) -> dict[str, int]:
    """Distribution files (name -> size) and temp files (which must never stay)."""
    return {e.name: e.stat().st_size for e in os.scandir(packages) if e.is_file()}


def check_listing(client: TestClient) -> int:
    """Every listed file's sha256 and size match the bytes served; returns the files checked."""
    checked = 0
    for project in client.get("/simple/", headers={"accept": JSON}).json()["projects"]:
        page = client.get(f"/simple/{project['name']}/", headers={"accept": JSON}).json()
        for entry in page["files"]:
            served = client.get(f"/packages/{entry['filename']}").content
            assert hashlib.sha256(served).hexdigest() == entry["hashes"]["sha256"], entry
            assert len(served) == entry["size"]
            checked += 1
    return checked


@pytest.fixture
def counting_client(packages: Path) -> Iterator[TestClient]:
    """An open index whose unhandled errors are answered 500 (counted), not raised."""
    settings = load_settings({"packages_dir": packages, "authenticate": "."}, env={})
    app = create_app(LocalStorage(settings.packages_dir), settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_hostile_uploads_never_5xx_and_never_store_a_refusal(
    counting_client: TestClient, packages: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = counting_client
    statuses: Counter[tuple[str, int]] = Counter()
    server_errors: list[str] = []
    stored_from_refusals: list[str] = []
    for n, case in enumerate(generate(SEED, COUNT)):
        before = visible(packages)
        response = client.post(
            "/legacy/", content=case.body, headers={"content-type": case.content_type}
        )
        after = visible(packages)
        statuses[(case.family, response.status_code)] += 1
        assert not [name for name in after if name.startswith(TEMP_PREFIX)], case
        if response.status_code >= 500:
            server_errors.append(f"case {n} ({case.family}): {response.text[:200]}")
        elif response.status_code != 200:
            assert response.headers["content-type"] == "application/problem+json", case
            assert response.json()["detail"], case
            if after != before:
                stored_from_refusals.append(f"case {n} ({case.family})")
        elif response.json()["stored"]:
            new = set(after) - set(before)
            assert new == {response.json()["filename"]}, case
            served = client.get(f"/packages/{response.json()['filename']}").content
            assert hashlib.sha256(served).hexdigest() == response.json()["sha256"]
        else:
            assert after == before
    listed = check_listing(client)
    with capsys.disabled():
        refused = sum(v for (_, status), v in statuses.items() if status != 200)
        print(
            f"\nhostile uploads: seed {SEED}, {COUNT} tried, {refused} refused, "
            f"{len(server_errors)} answered 5xx, {len(stored_from_refusals)} files stored from "
            f"refusals, {listed} listed files checked against the served bytes"
        )
        for family in sorted({f for f, _ in statuses}):
            by_status = {s: v for (f, s), v in sorted(statuses.items()) if f == family}
            print(f"  {family}: {by_status}")
    assert not server_errors, server_errors[:20]
    assert not stored_from_refusals, stored_from_refusals[:20]
