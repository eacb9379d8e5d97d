"""The conditional-create probe: the race logic on a filesystem that is atomic, on moto, and a
store that ignores `If-None-Match`, which multi-replica mode must refuse with a usable message."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.errors import IndexServerError
from releasekit.server.probe import (
    RACERS,
    ProbeResult,
    link_create,
    probe_directory,
    race,
    refuse_unless_honoured,
)
from releasekit.server.s3 import S3Bucket, S3Settings
from releasekit.server.s3store import S3Storage, probe_conditional_create
from tests.server.moto_s3 import MotoS3


def test_link_creates_race_with_exactly_one_winner_every_round(tmp_path: Path) -> None:
    """O_EXCL/link is atomic in the kernel: this is where the one-winner logic is proven."""
    for round_ in range(25):
        target = tmp_path / f"claim-{round_}"
        result = race(link_create(target), target.read_bytes, racers=RACERS)
        assert result == ProbeResult(1, True, True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"claim-{n}" for n in range(25))


def test_the_directory_probe_passes_and_leaves_nothing(tmp_path: Path) -> None:
    assert probe_directory(tmp_path).honoured
    assert list(tmp_path.iterdir()) == []


def test_moto_passes_the_probe(moto_s3: MotoS3, tmp_path: Path) -> None:
    """moto checks then writes (no lock), so passing shows the header is honoured, not atomicity."""
    settings = S3Settings(
        bucket=moto_s3.create_bucket(),
        prefix="p",
        endpoint=moto_s3.endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )
    storage = S3Storage(settings, spool=tmp_path)
    assert probe_conditional_create(storage).honoured
    assert list(storage.bucket.list("p")) == []  # the probe object is gone


class _IgnoresIfNoneMatch(S3Bucket):
    """A real bucket behind a store that drops the condition (as some S3 clones have)."""

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self.put(key, data)
        return True


def test_a_store_that_ignores_the_condition_is_refused_for_several_replicas(
    moto_s3: MotoS3, tmp_path: Path
) -> None:
    settings = S3Settings(
        bucket=moto_s3.create_bucket(),
        endpoint=moto_s3.endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )
    storage = S3Storage(settings, spool=tmp_path)
    storage.bucket = _IgnoresIfNoneMatch(settings)
    result = probe_conditional_create(storage)
    assert result.winners == RACERS and not result.honoured
    with pytest.raises(IndexServerError) as caught:
        refuse_unless_honoured(result, storage.describe(), "--single-replica")
    assert f"s3://{settings.bucket}/" in caught.value.message
    assert f"{RACERS} of {RACERS} racing creates won" in caught.value.message
    assert caught.value.hint is not None and "--single-replica" in caught.value.hint


def test_each_failure_is_named() -> None:
    for result, words in (
        (ProbeResult(2, False, True), "2 of"),
        (ProbeResult(1, True, False), "a create after the race was accepted"),
        (ProbeResult(1, False, True), "not the winner's"),
    ):
        with pytest.raises(IndexServerError, match=words):
            refuse_unless_honoured(result, "directory /x", "--single-replica")
    refuse_unless_honoured(ProbeResult(1, True, True), "directory /x", "--single-replica")
