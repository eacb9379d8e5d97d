"""Serving upstream projects: revalidation, HEAD, Range, and how often upstream is asked."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from releasekit.server.localstore import LocalStorage
from releasekit.server.upstream import UpstreamChange, configure_upstream
from tests.server.conftest import make_wheel
from tests.server.upstream_stub import JSON, Stub, entry, page, reply
from tests.server.upstream_stub import stub as stub  # the fixture

NAME = "goodlib-1.0-py3-none-any.whl"


@pytest.fixture
def wheel(tmp_path: Path) -> bytes:
    return make_wheel(tmp_path, "goodlib", "1.0").read_bytes()


@pytest.fixture
def client(
    stub: Stub, packages: Path, make_client: Callable[..., TestClient], wheel: bytes
) -> TestClient:
    stub.routes["/simple/goodlib/"] = page([entry(NAME, wheel)])
    stub.routes[f"/files/{NAME}"] = reply(200, wheel, "application/octet-stream")
    change = UpstreamChange(url=f"{stub.url}/simple/", cooldown="1d", ttl="1h")
    configure_upstream(LocalStorage(packages), "root", change)
    return make_client()


def test_pages_revalidate_and_answer_head(client: TestClient) -> None:
    first = client.get("/simple/goodlib/", headers={"accept": JSON})
    assert first.headers["content-type"] == JSON
    assert first.headers["vary"] == "Accept"
    etag = first.headers["etag"]
    again = client.get("/simple/goodlib/", headers={"accept": JSON, "if-none-match": etag})
    assert again.status_code == 304
    head = client.head("/simple/goodlib/", headers={"accept": "text/html"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/html")


def test_files_answer_head_range_and_revalidation(client: TestClient, wheel: bytes) -> None:
    full = client.get(f"/packages/{NAME}")
    assert full.content == wheel
    assert full.headers["etag"] == f'"{hashlib.sha256(wheel).hexdigest()}"'
    assert "immutable" in full.headers["cache-control"]
    assert (
        client.get(f"/packages/{NAME}", headers={"if-none-match": full.headers["etag"]}).status_code
        == 304
    )
    part = client.get(f"/packages/{NAME}", headers={"range": "bytes=5-14"})
    assert (part.status_code, part.content) == (206, wheel[5:15])
    head = client.head(f"/packages/{NAME}")
    assert head.headers["content-length"] == str(len(wheel))


def test_upstream_is_asked_once_per_ttl(client: TestClient, stub: Stub) -> None:
    for _ in range(3):
        assert client.get("/simple/goodlib/").status_code == 200
        assert client.get("/simple/made-up-name/").status_code == 404
        assert client.get(f"/packages/{NAME}").status_code == 200
    assert sorted(stub.paths()) == ["/files/" + NAME, "/simple/goodlib/", "/simple/made-up-name/"]
