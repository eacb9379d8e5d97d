"""`S3Storage` against the storage contract on moto in server mode, plus S3-only hostile cases."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from releasekit.server.s3 import S3Settings, S3Unavailable
from releasekit.server.s3store import CorruptClaim, S3Storage, S3Upload
from releasekit.server.storage import Storage
from tests.server.moto_s3 import MotoS3
from tests.server.storage_contract import WHEEL, StorageContract


def _settings(moto: MotoS3, bucket: str, prefix: str = "idx") -> S3Settings:
    return S3Settings(
        bucket=bucket,
        prefix=prefix,
        endpoint=moto.endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )


class TestS3Storage(StorageContract):
    @pytest.fixture
    def make_storage(self, moto_s3: MotoS3, tmp_path: Path) -> Callable[[], Storage]:
        settings = _settings(moto_s3, moto_s3.create_bucket())
        return lambda: S3Storage(settings, spool=tmp_path / "spool")


@pytest.fixture
def s3(moto_s3: MotoS3, tmp_path: Path) -> S3Storage:
    store = S3Storage(_settings(moto_s3, moto_s3.create_bucket()), spool=tmp_path / "spool")
    store.prepare()
    return store


def _put(store: S3Storage, name: str, data: bytes) -> None:
    with store.new_upload() as upload:
        upload.write(data)
        assert upload.create(name) is not None


def test_keys_stay_under_the_prefix(s3: S3Storage) -> None:
    for bad in ("../escape.whl", "a/../../b", "..", ".", "x/y"):
        assert s3.stat(bad) is None
        with pytest.raises(FileNotFoundError):
            s3.open(bad)
    for bad_state in ("../outside", "simple/../../x", "/abs"):
        with pytest.raises(ValueError, match="not a safe object key"):
            s3.write_state(bad_state, b"x")
    with s3.new_upload() as upload:
        upload.write(b"x")
        with pytest.raises(FileNotFoundError):
            upload.create("../../evil-1.0.tar.gz")
    keys = [k for k, *_ in s3.bucket.list("idx")]
    assert all(k.startswith("idx/") for k in keys) and not any("evil" in k for k in keys)


def test_a_tampered_claim_is_a_storage_fault_naming_the_object(s3: S3Storage) -> None:
    _put(s3, WHEEL, b"good bytes")
    key = s3.claim_key(WHEEL)
    real = json.loads(s3.bucket.get(key))
    for tampered in (
        b"not json",
        json.dumps({**real, "blob": "../../other-bucket-key"}).encode(),
        json.dumps({**real, "sha256": "0" * 63}).encode(),
        json.dumps({**real, "size": -1}).encode(),
    ):
        s3.bucket.put(key, tampered)
        with pytest.raises(CorruptClaim, match=key):
            s3.stat(WHEEL)
        with pytest.raises(CorruptClaim):
            b"".join(s3.read_range(WHEEL))


def test_a_dead_upload_before_its_claim_leaves_nothing_visible(s3: S3Storage) -> None:
    upload = S3Upload(s3)
    upload.write(b"bytes that never get a claim")
    # The blob is sent, then the process dies before the claim: simulate by sending only.
    upload._send(None)
    upload.abort()
    assert s3.scan() == [] and s3.stat(WHEEL) is None
    blobs = list(s3.bucket.list(s3.bucket.key("blobs")))
    assert len(blobs) == 1  # invisible, collected once older than the grace period


def test_an_unreachable_bucket_is_s3_unavailable_fast(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3Storage(
        S3Settings(
            bucket="gone",
            endpoint=f"http://127.0.0.1:{port}",
            access_key_id="a",
            secret_access_key="b",
        ),
        spool=tmp_path / "spool",
    )
    with pytest.raises(S3Unavailable, match="check the endpoint"):
        store.stat(WHEEL)
    with pytest.raises(S3Unavailable):
        store.scan()


def test_a_missing_bucket_does_not_exist(moto_s3: MotoS3, tmp_path: Path) -> None:
    store = S3Storage(_settings(moto_s3, "no-such-bucket-here"), spool=tmp_path / "spool")
    assert not store.exists()
    assert "s3://no-such-bucket-here/idx" in store.describe()


def test_a_dead_holders_lease_and_a_garbage_lock_do_not_block_forever(s3: S3Storage) -> None:
    import hashlib
    import time

    key = s3.bucket.key("locks", hashlib.sha256(WHEEL.encode()).hexdigest())
    for stale in (json.dumps({"owner": "dead", "until": time.time() - 1}).encode(), b"garbage"):
        s3.bucket.put(key, stale)
        with s3.lock(WHEEL):
            assert json.loads(s3.bucket.get(key))["owner"] != "dead"
        assert s3.bucket.head(key) is None  # released


def test_a_live_lease_is_respected(s3: S3Storage) -> None:
    import threading

    order: list[str] = []
    with s3.lock(WHEEL):
        waiter = threading.Thread(target=_locked_append, args=(s3, order))
        waiter.start()
        waiter.join(0.5)  # it polls the lease meanwhile, and must still be waiting
        assert waiter.is_alive() and order == []
        order.append("holder")
    waiter.join(30)
    assert order == ["holder", "waiter"]


def _locked_append(store: S3Storage, order: list[str]) -> None:
    with store.lock(WHEEL):
        order.append("waiter")
