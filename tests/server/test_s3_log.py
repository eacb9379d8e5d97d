"""The S3 change log: dense numbers under racing writers, replicas converging by following it,
repair of a writer that died between claim and log entry, and tampered entries ignored."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from releasekit.server.catalogue import Catalogue
from releasekit.server.changes import ChangeLog
from releasekit.server.s3 import S3Settings
from releasekit.server.s3log import BucketObjects, S3Listing
from releasekit.server.s3store import S3Storage
from releasekit.server.status import ProjectStatus
from tests.server.conftest import Dists
from tests.server.moto_s3 import MotoS3

WHEEL = "alpha-1.0-py3-none-any.whl"


@pytest.fixture
def settings(moto_s3: MotoS3) -> S3Settings:
    return S3Settings(
        bucket=moto_s3.create_bucket(),
        prefix="log-test",
        endpoint=moto_s3.endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )


def _store(settings: S3Settings, tmp_path: Path) -> S3Storage:
    store = S3Storage(settings, spool=tmp_path / "spool")
    store.prepare()
    return store


def _put(store: S3Storage, name: str, data: bytes) -> None:
    with store.new_upload() as upload:
        upload.write(data)
        assert upload.create(name) is not None


def test_racing_appends_take_dense_unique_numbers(settings: S3Settings, tmp_path: Path) -> None:
    logs = [ChangeLog(BucketObjects(_store(settings, tmp_path).bucket)) for _ in range(6)]

    def write(n: int) -> list[int]:
        return [logs[n].append({"op": "put", "filename": f"f{n}-{i}", "size": 1, "mtime_ns": 1})
                for i in range(4)]  # fmt: skip

    with ThreadPoolExecutor(6) as pool:
        numbers = sorted(x for got in pool.map(write, range(6)) for x in got)
    assert numbers == list(range(24))
    reader = S3Listing(logs[0])
    assert reader.follow() and len(reader.files) == 24 and reader.applied == 23


def test_a_replica_follows_another_ones_changes(settings: S3Settings, tmp_path: Path) -> None:
    writer, reader = _store(settings, tmp_path), _store(settings, tmp_path)
    assert reader.scan() == []
    first = reader.stamp()
    _put(writer, WHEEL, b"one")
    assert [f.filename for f in reader.scan()] == [WHEEL] and reader.stamp() != first
    writer.delete(WHEEL)
    assert reader.scan() == []


def test_a_writer_dead_between_claim_and_log_is_repaired(
    settings: S3Settings, tmp_path: Path
) -> None:
    reader = _store(settings, tmp_path)
    assert reader.scan() == []
    writer = _store(settings, tmp_path)
    writer.logged = lambda op, stored, note=None: None  # type: ignore[method-assign]  # dies
    _put(writer, WHEEL, b"claimed, never logged")
    assert reader.stat(WHEEL) is not None  # committed: served on request
    assert reader.scan() == []  # not in the log yet
    reader._reconciled_at = 0.0  # the periodic repair is due
    assert [f.filename for f in reader.scan()] == [WHEEL]


def test_tampered_log_entries_change_nothing(settings: S3Settings, tmp_path: Path) -> None:
    store = _store(settings, tmp_path)
    _put(store, WHEEL, b"real")
    for n, body in enumerate(
        (
            b"not json",
            json.dumps(
                {"op": "put", "filename": "../../escape", "size": 1, "mtime_ns": 1}
            ).encode(),
            json.dumps({"op": "put", "filename": ".hidden", "size": 1, "mtime_ns": 1}).encode(),
            json.dumps({"op": "del", "filename": "a/b"}).encode(),
            json.dumps(["a", "list"]).encode(),
        ),
        start=1,
    ):
        assert store.bucket.put_if_absent(store.bucket.key("log", f"{n:020d}"), body)
    other = _store(settings, tmp_path)
    assert [f.filename for f in other.scan()] == [WHEEL]
    assert [f.filename for f in store.scan()] == [WHEEL]  # the follower skipped them too


def test_yanks_and_statuses_travel_in_the_log(
    settings: S3Settings, tmp_path: Path, dists: Dists
) -> None:
    first, second = _store(settings, tmp_path), _store(settings, tmp_path)
    _put(first, WHEEL, dists.path(WHEEL).read_bytes())
    writer, follower = Catalogue(first), Catalogue(second)
    writer.load()
    follower.load()
    assert follower.files[WHEEL].yanked is None
    writer.set_yanked([WHEEL], "broken")
    assert follower.follow() == {"alpha"}
    assert follower.files[WHEEL].yanked == "broken"
    writer.set_status("alpha", ProjectStatus("archived", "moved"))
    assert follower.follow() == {"alpha"} and follower.statuses["alpha"].status == "archived"
    # The listing needs no HEAD of the yank state per poll any more: the log number covers it.
    assert second.stamp()[0] == second.listing.applied
