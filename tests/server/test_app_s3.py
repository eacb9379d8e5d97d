"""The index app on `S3Storage` (moto in server mode): uploads, pages, files, ranges, conflicts,
and a bucket that goes away answering 503 problems, never 500."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from releasekit.server.app import create_app
from releasekit.server.s3 import S3Settings
from releasekit.server.s3store import S3Storage
from releasekit.server.settings import load_settings
from tests.server.conftest import Dists, upload_form
from tests.server.moto_s3 import MotoS3, start_moto

WHEEL = "alpha-1.0-py3-none-any.whl"


def _app(moto: MotoS3, bucket: str, tmp_path: Path) -> TestClient:
    settings = load_settings(
        {"packages_dir": tmp_path / "unused", "authenticate": ".", "poll_interval": 0.05}, env={}
    )
    storage = S3Storage(
        S3Settings(
            bucket=bucket,
            prefix="index",
            endpoint=moto.endpoint,
            access_key_id="testing",
            secret_access_key="testing",
        ),
        spool=tmp_path / "spool",
    )
    return TestClient(create_app(storage, settings))


def test_upload_serve_range_conflict_on_s3(moto_s3: MotoS3, dists: Dists, tmp_path: Path) -> None:
    bucket = moto_s3.create_bucket()
    wheel = dists.path(WHEEL).read_bytes()
    with _app(moto_s3, bucket, tmp_path) as client:
        data, files = upload_form(dists.path(WHEEL))
        assert client.post("/legacy/", data=data, files=files).status_code == 200
        data, files = upload_form(dists.path(WHEEL))
        assert client.post("/legacy/", data=data, files=files).status_code == 200  # retry
        page = client.get("/simple/alpha/")
        assert page.status_code == 200 and WHEEL in page.text
        assert hashlib.sha256(wheel).hexdigest() in page.text
        got = client.get(f"/packages/{WHEEL}")
        assert got.status_code == 200 and got.content == wheel
        part = client.get(f"/packages/{WHEEL}", headers={"Range": "bytes=10-29"})
        assert part.status_code == 206 and part.content == wheel[10:30]
        other = tmp_path / "other" / WHEEL
        other.parent.mkdir()
        other.write_bytes(dists.path("alpha-1.1-py3-none-any.whl").read_bytes())
        data, files = upload_form(dists.path(WHEEL))
        files = {"content": (WHEEL, b"different bytes entirely", "application/octet-stream")}
        refused = client.post("/legacy/", data=data, files=files)
        assert refused.status_code in (400, 409)
        assert client.get(f"/packages/{WHEEL}").content == wheel  # nothing changed
    # A second replica on the same bucket serves the same file from its first request.
    with _app(moto_s3, bucket, tmp_path / "second") as second:
        assert WHEEL in second.get("/simple/alpha/").text
        assert second.get(f"/packages/{WHEEL}").content == wheel


def test_a_bucket_that_goes_away_is_a_503_problem(
    dists: Dists, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    process, moto = start_moto()
    try:
        bucket = moto.create_bucket()
        client = _app(moto, bucket, tmp_path)
        client.__enter__()
        data, files = upload_form(dists.path(WHEEL))
        assert client.post("/legacy/", data=data, files=files).status_code == 200
        process.kill()  # our own moto, by its handle
        process.wait()
        got = client.get(f"/packages/{WHEEL}")
        assert got.status_code == 503, got.text
        assert got.headers["content-type"] == "application/problem+json"
        assert got.json()["code"] == "storage-unavailable" and got.headers["retry-after"]
        data, files = upload_form(dists.path("alpha-1.1-py3-none-any.whl"))
        up = client.post("/legacy/", data=data, files=files)
        assert up.status_code == 503 and up.json()["code"] == "storage-unavailable"
        assert not list((tmp_path / "spool").iterdir())  # the refused upload left no spool file
        with caplog.at_level(logging.INFO):
            client.get("/simple/alpha/")  # pages answer from memory; files need the bucket
            assert client.get(f"/packages/{WHEEL}").status_code == 503
        logged = [r.getMessage() for r in caplog.records if r.name == "releasekit.server.access"]
        assert any(f"/packages/{WHEEL}" in m and "status=503" in m for m in logged), logged
        client.__exit__(None, None, None)  # the catalogue cannot be saved: logged, not raised
        assert "the catalogue was not saved on the way out" in caplog.text
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.stdout.close()
