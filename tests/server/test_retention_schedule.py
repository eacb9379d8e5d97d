"""The retention schedule: one run per period over several workers (the lease), refusals logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from releasekit.server.indexes import REGISTRY_NAME
from releasekit.server.localstore import LocalStorage
from releasekit.server.retention import make_rules
from releasekit.server.retention_run import set_retention
from releasekit.server.retention_schedule import (
    LEASE_NAME,
    RetentionSchedule,
    default_catalogue,
    read_lease,
)
from releasekit.server.s3 import S3Settings
from releasekit.server.s3store import S3Storage
from releasekit.server.storage import Storage
from tests.server.conftest import wait_for
from tests.server.moto_s3 import MotoS3
from tests.server.test_retention_cli import fill

HOUR = 3600.0
JSON = "application/vnd.pypi.simple.v1+json"
KEPT = [f"alpha-{v}-py3-none-any.whl" for v in ("1.0", "1.1.dev3", "1.1rc2")]


class Workers:
    """Two schedules over one store, as two worker processes would run them, on one clock."""

    def __init__(self, root: Storage) -> None:
        self.now = 1_900_000_000.0
        self.runs: list[tuple[str, str, int]] = []
        self.schedules = [
            RetentionSchedule(
                root,
                lambda name: root,
                default_catalogue,
                on_run=self.counter(who),
                clock=lambda: self.now,
                owner=who,
            )
            for who in ("worker-1", "worker-2")
        ]

    def counter(self, who: str) -> Callable[[str, int], None]:
        return lambda index, files: self.runs.append((who, index, files))

    def check(self) -> None:
        for schedule in self.schedules:
            schedule.check()


@pytest.fixture
def root(packages: Path) -> LocalStorage:
    fill(packages)
    storage = LocalStorage(packages)
    storage.prepare()
    return storage


def test_one_run_per_period_whichever_worker_checks(root: LocalStorage) -> None:
    set_retention(root, "root", make_rules(keep_dev=1, keep_pre=1, every="1h"))
    workers = Workers(root)
    workers.check()
    assert workers.runs == [("worker-1", "root", 4)]
    workers.now += 0.5 * HOUR
    workers.check()
    assert len(workers.runs) == 1
    workers.now += 0.6 * HOUR
    workers.schedules.reverse()  # the other worker happens to look first this time
    workers.check()
    assert workers.runs[1:] == [("worker-2", "root", 0)]
    lease = read_lease(root)
    assert lease is not None and (lease.owner, lease.until) == ("worker-2", workers.now + HOUR)


def test_a_shortened_period_and_a_damaged_lease_apply_at_once(root: LocalStorage) -> None:
    set_retention(root, "root", make_rules(keep_dev=1, keep_pre=None, every="24h"))
    workers = Workers(root)
    workers.check()
    workers.now += 2 * HOUR
    workers.check()
    assert len(workers.runs) == 1
    set_retention(root, "root", make_rules(keep_dev=1, keep_pre=None, every="1h"))
    workers.check()
    assert len(workers.runs) == 2
    restarted = Workers(root)  # a restart within the period: the lease outlives processes
    restarted.now = workers.now + 60
    restarted.check()
    assert restarted.runs == []
    root.write_state(LEASE_NAME, b"{not json")
    restarted = Workers(root)
    restarted.now = workers.now + 60
    restarted.check()
    assert restarted.runs == [("worker-1", "root", 0)]


def test_rules_without_every_run_only_on_demand(root: LocalStorage) -> None:
    set_retention(root, "root", make_rules(keep_dev=0, keep_pre=0))
    workers = Workers(root)
    workers.check()
    assert workers.runs == []
    assert root.read_state(LEASE_NAME) is None


def test_broken_rules_and_registry_are_logged_once_and_nothing_runs(
    root: LocalStorage, packages: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = packages / ".releasekit" / REGISTRY_NAME
    entry = {"name": "root", "retention": {"keep_dev": 1, "every": "1y"}}
    registry.write_text(json.dumps({"version": 1, "indexes": [entry]}))
    workers = Workers(root)
    with caplog.at_level(logging.ERROR, "releasekit.server"):
        workers.check()
        workers.check()
        registry.write_text("{broken")
        workers.check()
        workers.check()
    bad_rule = "retention of index root is off: index 'root': --every '1y' has an unknown unit 'y'"
    bad_registry = (
        "retention is paused: the index registry (indexes.json) is not JSON: Expecting "
        "property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    # Once per worker and problem, not once per check.
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [bad_rule, bad_rule, bad_registry, bad_registry]
    assert workers.runs == []
    assert len(list(packages.glob("alpha*"))) == 7


def test_a_served_index_follows_at_once_and_counts_in_metrics(
    root: LocalStorage, make_client: Callable[..., TestClient]
) -> None:
    set_retention(root, "root", make_rules(keep_dev=1, keep_pre=1, every="1h"))
    client = make_client()

    def listed() -> list[str]:
        data = client.get("/simple/alpha/", headers={"accept": JSON}).json()
        return sorted(f["filename"] for f in data["files"])

    wait_for(lambda: listed() == KEPT)
    runs = 'releasekit_retention_runs_total{index="root"} 1.0'
    wait_for(lambda: runs in client.get("/metrics").text)  # counted once the run is over
    body = client.get("/metrics").text
    assert 'releasekit_retention_deleted_files_total{index="root"} 4.0' in body


def test_the_lease_and_the_run_work_on_s3(moto_s3: MotoS3, tmp_path: Path) -> None:
    settings = S3Settings(
        bucket=moto_s3.create_bucket(),
        prefix="index",
        endpoint=moto_s3.endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )
    replicas = [S3Storage(settings, spool=tmp_path / f"spool{n}") for n in (1, 2)]
    for replica in replicas:
        replica.prepare()
    for path in sorted(fill(tmp_path / "dists").iterdir()):
        with replicas[0].new_upload() as upload:
            upload.write(path.read_bytes())
            assert upload.create(path.name) is not None
    set_retention(replicas[0], "root", make_rules(keep_dev=1, keep_pre=1, every="1h"))
    workers = [Workers(replica) for replica in replicas]  # two replicas, one bucket
    for replica_workers in workers:
        replica_workers.now = workers[0].now
        replica_workers.check()
    assert [w.runs for w in workers] == [[("worker-1", "root", 4)], []]
    assert sorted(f.filename for f in replicas[1].scan()) == KEPT
    lease = read_lease(replicas[1])
    assert lease is not None and lease.owner == "worker-1"
