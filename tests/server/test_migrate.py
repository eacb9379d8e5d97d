"""`releasekit server migrate`: directory -> S3 -> directory, resumable, verified, conflicts kept."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from releasekit.errors import IndexServerError
from releasekit.server.localstore import LocalStorage
from releasekit.server.migrate import MigrateStep, migrate
from releasekit.server.s3 import S3Settings
from releasekit.server.s3store import S3Storage
from tests.server.moto_s3 import MotoS3

NAMES = [f"pkg{n}-1.0-py3-none-any.whl" for n in range(5)]


def _filled(root: Path) -> LocalStorage:
    root.mkdir()
    for n, name in enumerate(NAMES):
        (root / name).write_bytes(os.urandom(1000 + n))
    store = LocalStorage(root)
    store.prepare()
    store.write_state("yanked.json", b'{"pkg0-1.0-py3-none-any.whl": "broken"}')
    return store


def _s3(moto: MotoS3, tmp_path: Path) -> S3Storage:
    settings = S3Settings(
        bucket=moto.create_bucket(),
        prefix="m",
        endpoint=moto.endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )
    return S3Storage(settings, spool=tmp_path / "spool")


def _hashes(store: LocalStorage | S3Storage) -> dict[str, str]:
    return {
        f.filename: hashlib.sha256(b"".join(store.read_range(f.filename))).hexdigest()
        for f in store.scan()
    }


class _Stop(Exception):
    pass


def test_there_and_back_resuming_after_an_interruption(moto_s3: MotoS3, tmp_path: Path) -> None:
    source = _filled(tmp_path / "src")
    bucket = _s3(moto_s3, tmp_path)

    def stop_after_two(step: MigrateStep) -> None:
        if step.done == 2:
            raise _Stop

    with pytest.raises(_Stop):
        migrate(source, bucket, stop_after_two)
    assert len(bucket.scan()) == 2
    steps: list[MigrateStep] = []
    report = migrate(source, bucket, steps.append)
    assert (report.copied, report.present, report.conflicts) == (3, 2, ())
    assert [s.done for s in steps] == [1, 2, 3, 4, 5] and {s.total for s in steps} == {5}
    assert _hashes(bucket) == _hashes(source)
    assert bucket.read_state("yanked.json") == source.read_state("yanked.json")
    assert {f.filename: f.mtime_ns for f in bucket.scan()} == {
        f.filename: f.mtime_ns for f in source.scan()
    }
    (tmp_path / "back").mkdir()
    back = LocalStorage(tmp_path / "back")
    assert migrate(bucket, back).copied == 5
    assert _hashes(back) == _hashes(source)
    assert migrate(bucket, back).present == 5  # a second run copies nothing


def test_a_different_file_at_the_destination_is_a_conflict_never_overwritten(
    tmp_path: Path,
) -> None:
    source = _filled(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / NAMES[1]).write_bytes(b"someone else's bytes")
    report = migrate(source, LocalStorage(tmp_path / "dst"))
    assert report.conflicts == (NAMES[1],) and report.copied == 4
    assert (tmp_path / "dst" / NAMES[1]).read_bytes() == b"someone else's bytes"


class _Corrupting(LocalStorage):
    """A destination whose reads come back damaged (a bad disk or a lying store)."""

    def read_range(
        self, filename: str, start: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        for chunk in super().read_range(filename, start, length):
            yield bytes([chunk[0] ^ 1]) + chunk[1:]


def test_a_copy_that_does_not_verify_is_removed_and_reported(tmp_path: Path) -> None:
    source = _filled(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    with pytest.raises(IndexServerError, match="does not hash like the source") as caught:
        migrate(source, _Corrupting(tmp_path / "dst"))
    assert caught.value.hint and "run the migration again" in caught.value.hint
    assert LocalStorage(tmp_path / "dst").scan() == []


def test_a_missing_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dst").mkdir()
    with pytest.raises(IndexServerError, match="does not exist"):
        migrate(LocalStorage(tmp_path / "nowhere"), LocalStorage(tmp_path / "dst"))
    assert list((tmp_path / "dst").iterdir()) == []


def test_the_command(moto_s3: MotoS3, tmp_path: Path) -> None:
    _filled(tmp_path / "src")
    bucket = moto_s3.create_bucket()
    releasekit = str(Path(sys.executable).parent / "releasekit")
    env = {**os.environ, **moto_s3.env()}
    result = subprocess.run(
        [releasekit, "server", "migrate", "--from", str(tmp_path / "src"), "--to",
         f"s3://{bucket}/idx"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "copied 5 files" in result.stdout and "[5/5] copied" in result.stderr
    again = subprocess.run(
        [releasekit, "server", "migrate", "--from", f"s3://{bucket}/idx", "--to",
         str(tmp_path / "src")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0 and "5 already there" in again.stdout


def test_reindex_against_s3(moto_s3: MotoS3, tmp_path: Path) -> None:
    """The bucket is the truth: reindex rebuilds its catalogue and pages from the files."""
    from tests.server.conftest import make_wheel

    bucket = moto_s3.create_bucket()
    dists = tmp_path / "dists"
    dists.mkdir()
    make_wheel(dists, "alpha", "1.0")
    releasekit = str(Path(sys.executable).parent / "releasekit")
    env = {**os.environ, **moto_s3.env()}
    subprocess.run(
        [releasekit, "server", "migrate", "--from", str(dists), "--to", f"s3://{bucket}/r"],
        check=True, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    result = subprocess.run(
        [releasekit, "server", "reindex", "--storage", f"s3://{bucket}/r"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "indexed 1 files in 1 projects" in result.stdout
    store = _s3_at(moto_s3, bucket, "r", tmp_path)
    page = store.read_state("simple/alpha/index.html")
    assert page is not None and b"alpha-1.0-py3-none-any.whl" in page


def _s3_at(moto: MotoS3, bucket: str, prefix: str, tmp_path: Path) -> S3Storage:
    settings = S3Settings(
        bucket=bucket,
        prefix=prefix,
        endpoint=moto.endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )
    return S3Storage(settings, spool=tmp_path / "spool2")
