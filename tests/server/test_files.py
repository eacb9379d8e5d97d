"""The download fast path: same answers as the regular route, never stale, bounded memory."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from releasekit.server import files
from releasekit.server.app import create_app
from releasekit.server.files import SmallFileCache
from releasekit.server.localstore import LocalStorage
from releasekit.server.settings import load_settings
from tests.server.conftest import Dists, Users, make_wheel, wait_for

WHEEL = "alpha-1.0-py3-none-any.whl"


@pytest.fixture
def indexed(packages: Path, dists: Dists, make_client: Callable[..., TestClient]) -> TestClient:
    shutil.copy(dists.path(WHEEL), packages)
    client = make_client()
    client.get("/simple/alpha/")  # index alpha, as pip would before downloading
    return client


def test_fast_path_answers_like_the_regular_route(indexed: TestClient, dists: Dists) -> None:
    raw = dists.path(WHEEL).read_bytes()
    fast = indexed.get(f"/packages/{WHEEL}")
    again = indexed.get(f"/packages/{WHEEL}")  # from memory this time
    regular = indexed.get(f"/packages/{WHEEL}", headers={"range": f"bytes=0-{len(raw) - 1}"})
    assert fast.content == again.content == regular.content == raw
    for header in ("content-type", "etag", "cache-control", "last-modified", "accept-ranges"):
        assert fast.headers[header] == regular.headers[header], header
    assert fast.headers["content-length"] == str(len(raw))
    assert fast.headers["etag"] == f'"{hashlib.sha256(raw).hexdigest()}"'
    head = indexed.head(f"/packages/{WHEEL}")
    assert head.content == b"" and head.headers["content-length"] == str(len(raw))
    not_modified = indexed.get(
        f"/packages/{WHEEL}", headers={"if-none-match": fast.headers["etag"]}
    )
    assert not_modified.status_code == 304 and not_modified.headers["etag"] == fast.headers["etag"]


def test_a_file_replaced_by_hand_never_mismatches_its_etag(
    indexed: TestClient, packages: Path
) -> None:
    """Until the poller re-indexes it, the old bytes (matching the advertised sha256) are served;
    then the new ones, under their new hash. A body never disagrees with its ETag."""
    assert indexed.get(f"/packages/{WHEEL}").status_code == 200  # now cached
    (packages.parent / "other").mkdir()
    replacement = make_wheel(
        packages.parent / "other", "alpha", "1.0", requires_python=">=3.12", payload=b"x" * 100
    )
    shutil.copy(replacement, packages / ".incoming")
    (packages / ".incoming").replace(packages / WHEEL)  # as `mv` does it
    new = replacement.read_bytes()

    def consistent_and_new() -> bool:
        indexed.get("/simple/alpha/")  # what pip does first; indexes the file once it is seen
        response = indexed.get(f"/packages/{WHEEL}")
        etag = response.headers["etag"].strip('"')
        if len(etag) == 64:  # a sha256 ETag (a file not indexed yet has a size-mtime one)
            assert etag == hashlib.sha256(response.content).hexdigest()
        assert response.headers["content-length"] == str(len(response.content))
        return response.content == new and etag == hashlib.sha256(new).hexdigest()

    wait_for(consistent_and_new)


def test_large_files_take_the_regular_route(
    indexed: TestClient, dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "SMALL_FILE", 10)
    response = indexed.get(f"/packages/{WHEEL}")
    assert response.content == dists.path(WHEEL).read_bytes()


def test_downloads_still_need_credentials(
    packages: Path, dists: Dists, users: Users, make_client: Callable[..., TestClient]
) -> None:
    shutil.copy(dists.path(WHEEL), packages)
    client = make_client(authenticate="download,list", passwords=users.passwords)
    client.get("/simple/alpha/", auth=users.credentials["reader"])  # indexed: the fast path applies
    response = client.get(f"/packages/{WHEEL}")
    assert response.status_code == 401
    assert "www-authenticate" in response.headers
    assert response.headers["content-type"] == "application/problem+json"
    allowed = client.get(f"/packages/{WHEEL}", auth=users.credentials["reader"])
    assert allowed.status_code == 200 and allowed.content == dists.path(WHEEL).read_bytes()


def test_cache_stays_within_its_limit() -> None:
    cache = SmallFileCache(limit=10)
    cache.put(("a", "1"), b"12345")
    cache.put(("b", "2"), b"12345")
    assert cache.get(("a", "1")) == b"12345"  # a is now the most recent
    cache.put(("c", "3"), b"123")
    assert cache.size <= 10
    assert cache.get(("b", "2")) is None and cache.get(("a", "1")) == b"12345"
    cache.put(("huge", "4"), b"x" * 11)
    assert cache.get(("huge", "4")) is None


def test_cache_files_are_flushed_before_the_catalogue_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[str] = []
    monkeypatch.setattr("os.sync", lambda: syncs.append("sync"))
    storage = LocalStorage(tmp_path)
    storage.write_state("metadata/a.whl.metadata", b"Name: a\n", durable=False)
    storage.write_state("metadata/b.whl.metadata", b"Name: b\n", durable=False)
    assert syncs == []
    storage.write_state("catalogue.json", b"{}")
    assert syncs == ["sync"]  # one flush covers both sidecars, before the catalogue lands
    storage.write_state("catalogue.json", b"{}")
    assert syncs == ["sync"]  # nothing unsynced since
    assert storage.read_state("metadata/a.whl.metadata") == b"Name: a\n"


class _NoLocalFiles(LocalStorage):
    """A backend without the local-file capability (as S3 will be): every byte is streamed."""

    def local_path(self, filename: str) -> str | None:
        return None


@pytest.mark.parametrize(
    ("header", "status", "part"),
    [
        (None, 200, slice(None)),
        ("bytes=10-19", 206, slice(10, 20)),
        ("bytes=-5", 206, slice(-5, None)),
        ("bytes=100-", 206, slice(100, None)),
        ("bytes=0-1,5-6", 200, slice(None)),  # several ranges: the whole file, as allowed
        ("bytes=" + "9" * 5000 + "-", 200, slice(None)),  # hostile: no huge-int parsing, no 500
        ("lines=1-2", 200, slice(None)),  # a unit we do not serve: ignored
    ],
)
def test_a_backend_without_local_files_streams_whole_files_and_ranges(
    packages: Path,
    dists: Dists,
    monkeypatch: pytest.MonkeyPatch,
    header: str | None,
    status: int,
    part: slice,
) -> None:
    monkeypatch.setattr(files, "SMALL_FILE", 10)  # past the memory cache: the streaming path
    shutil.copy(dists.path(WHEEL), packages)
    raw = dists.path(WHEEL).read_bytes()
    settings = load_settings({"packages_dir": packages, "authenticate": "."}, env={})
    with TestClient(create_app(_NoLocalFiles(packages), settings)) as client:
        client.get("/simple/alpha/")
        response = client.get(f"/packages/{WHEEL}", headers={"range": header} if header else {})
        assert response.status_code == status
        assert response.content == raw[part]
        assert response.headers["content-length"] == str(len(raw[part]))
        assert response.headers["etag"] == f'"{hashlib.sha256(raw).hexdigest()}"'
        if status == 206:
            start = range(len(raw))[part][0]
            assert response.headers["content-range"] == (
                f"bytes {start}-{start + len(raw[part]) - 1}/{len(raw)}"
            )
        head = client.head(f"/packages/{WHEEL}")
        assert head.content == b"" and head.headers["content-length"] == str(len(raw))
        beyond = client.get(f"/packages/{WHEEL}", headers={"range": f"bytes={len(raw)}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{len(raw)}"
        assert beyond.headers["content-type"] == "application/problem+json"
