"""A start on a directory the cache does not cover: list now, index per request and behind."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from releasekit.server import state as state_module
from releasekit.server.app import create_app
from releasekit.server.catalogue import Progress, filename_project
from releasekit.server.localstore import LocalStorage
from releasekit.server.maintenance import reindex
from releasekit.server.metadata import ArchiveError, parse_filename
from releasekit.server.settings import Settings, load_settings
from releasekit.server.state import IndexState
from tests.server.conftest import make_sdist, make_wheel, upload_form, wait_for

JSON = "application/vnd.pypi.simple.v1+json"


class CountingStorage(LocalStorage):
    """A real LocalStorage that counts how often each package file is opened (indexing opens
    each file once; its PEP 658 sidecar is written at its first request)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: dict[str, int] = {}
        self._count_lock = threading.Lock()

    def open(self, filename: str) -> BinaryIO:
        with self._count_lock:
            self.reads[filename] = self.reads.get(filename, 0) + 1
        return super().open(filename)


def fill(directory: Path, projects: int, versions: int) -> None:
    """`projects` x `versions` releases, each a wheel and an sdist."""
    for p in range(projects):
        for v in range(versions):
            make_wheel(directory, f"proj-{p:03d}", f"1.{v}")
            make_sdist(directory, f"proj-{p:03d}", f"1.{v}")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 files: 30 projects of 5 releases (wheel + sdist), generated once."""
    directory = tmp_path_factory.mktemp("corpus")
    fill(directory, 30, 5)
    return directory


@pytest.fixture
def fresh(packages: Path, corpus: Path) -> Path:
    """A packages directory holding the corpus and no `.releasekit/` state at all."""
    for file in corpus.iterdir():
        (packages / file.name).write_bytes(file.read_bytes())
    return packages


def settings_for(packages: Path) -> Settings:
    return load_settings(
        {"packages_dir": packages, "authenticate": ".", "poll_interval": 0.05}, env={}
    )


def index_of(app: Starlette) -> IndexState:
    state: IndexState = app.state.index
    return state


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_start_lists_without_indexing_and_a_page_indexes_its_project(fresh: Path) -> None:
    storage = CountingStorage(fresh)
    app = create_app(storage, settings_for(fresh))
    state = index_of(app)
    assert state.catalogue.progress() == Progress(0, 300)
    assert not (fresh / ".releasekit" / "metadata").exists()
    assert storage.reads == {}
    # No lifespan here: no background indexer, so every index below is the request's own.
    client = TestClient(app)
    data = client.get("/simple/proj-007/", headers={"accept": JSON}).json()
    assert len(data["files"]) == 10
    for entry in data["files"]:
        assert entry["hashes"] == {"sha256": sha256_of(fresh / entry["filename"])}
    assert data["versions"] == ["1.0", "1.1", "1.2", "1.3", "1.4"]
    wheel = next(f for f in data["files"] if f["filename"].endswith(".whl"))
    metadata = client.get(f"/packages/{wheel['filename']}.metadata")
    assert wheel["core-metadata"] == {"sha256": hashlib.sha256(metadata.content).hexdigest()}
    html = client.get("/simple/proj-007/", headers={"accept": "text/html"}).text
    assert html.count("#sha256=") == 10
    # Exactly that project's files were read; the other 290 are still pending.
    assert state.catalogue.progress() == Progress(10, 300)
    assert {n.split("-")[0] for n in storage.reads} == {"proj_007"}
    assert (fresh / ".releasekit" / "metadata" / f"{wheel['filename']}.metadata").is_file()
    on_disk = json.loads((fresh / ".releasekit/simple/proj-007/index.v1_json").read_bytes())
    assert on_disk == data


def test_root_lists_pending_projects_at_once(fresh: Path) -> None:
    client = TestClient(create_app(LocalStorage(fresh), settings_for(fresh)))
    names = [p["name"] for p in client.get("/simple/", headers={"accept": JSON}).json()["projects"]]
    assert names == [f"proj-{p:03d}" for p in range(30)]
    assert '<a href="proj-029/">proj-029</a>' in client.get("/simple/").text
    assert client.get("/simple/nothing/").status_code == 404


def test_pending_files_download_with_a_size_and_mtime_etag(fresh: Path) -> None:
    app = create_app(LocalStorage(fresh), settings_for(fresh))
    client = TestClient(app)
    name = "proj_003-1.2.tar.gz"
    path = fresh / name
    response = client.get(f"/packages/{name}")
    assert response.status_code == 200
    assert response.content == path.read_bytes()
    stat = path.stat()
    assert response.headers["etag"] == f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    again = client.get(f"/packages/{name}", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304
    part = client.get(f"/packages/{name}", headers={"range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == path.read_bytes()[:10]
    # Serving bytes indexed nothing; once indexed, the ETag is the sha256 the pages carry.
    assert index_of(app).catalogue.progress().done == 0
    client.get("/simple/proj-003/")
    assert client.get(f"/packages/{name}").headers["etag"] == f'"{sha256_of(path)}"'


def test_metadata_of_a_pending_wheel_indexes_its_project_first(fresh: Path) -> None:
    app = create_app(LocalStorage(fresh), settings_for(fresh))
    client = TestClient(app)
    response = client.get("/packages/proj_004-1.3-py3-none-any.whl.metadata")
    assert response.status_code == 200
    assert b"Version: 1.3" in response.content
    assert index_of(app).catalogue.progress() == Progress(10, 300)
    assert client.get("/packages/proj_004-9.9-py3-none-any.whl.metadata").status_code == 404


def test_concurrent_requests_for_a_pending_project_index_it_once(fresh: Path) -> None:
    storage = CountingStorage(fresh)
    app = create_app(storage, settings_for(fresh))
    barrier = threading.Barrier(2)
    pages: list[dict[str, object]] = []

    def fetch() -> None:
        client = TestClient(app)
        barrier.wait()
        pages.append(client.get("/simple/proj-011/", headers={"accept": JSON}).json())

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(pages) == 2 and pages[0] == pages[1]
    assert len(pages[0]["files"]) == 10  # type: ignore[arg-type]
    assert len(storage.reads) == 10  # five wheels and five sdists, each read once
    assert all(n.startswith("proj_011-") for n in storage.reads)
    assert set(storage.reads.values()) == {1}
    assert index_of(app).catalogue.progress() == Progress(10, 300)


def test_background_indexing_completes_and_writes_the_cache(
    fresh: Path, make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="releasekit.server")
    client = make_client()
    wait_for(lambda: client.get("/ready").json()["indexing"] == {"done": 300, "total": 300})
    assert "releasekit_files_pending 0.0" in client.get("/metrics").text
    wait_for(lambda: "indexed 300/300 files" in caplog.text)
    state = fresh / ".releasekit"

    def cached() -> int:
        path = state / "catalogue.json"
        return len(json.loads(path.read_bytes())["files"]) if path.exists() else 0

    wait_for(lambda: cached() == 300)
    assert len(list((state / "simple").glob("proj-*/index.html"))) == 30
    page = json.loads((state / "simple" / "proj-029" / "index.v1_json").read_bytes())
    assert all(f["hashes"]["sha256"] == sha256_of(fresh / f["filename"]) for f in page["files"])


def test_ready_reports_progress_while_files_are_pending(fresh: Path) -> None:
    client = TestClient(create_app(LocalStorage(fresh), settings_for(fresh)))
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "indexing": {"done": 0, "total": 300}}
    assert "releasekit_files_pending 300.0" in client.get("/metrics").text


def test_a_restart_with_the_cache_has_nothing_pending(
    fresh: Path, make_client: Callable[..., TestClient]
) -> None:
    client = make_client()
    wait_for(lambda: client.get("/ready").json()["indexing"]["done"] == 300)
    client.__exit__(None, None, None)  # shutdown flushes the cache
    app = create_app(LocalStorage(fresh), settings_for(fresh))
    assert index_of(app).catalogue.progress() == Progress(0, 0)
    assert len(index_of(app).catalogue.files) == 300


def test_uploads_are_listed_at_once_and_saved_debounced(
    packages: Path,
    make_client: Callable[..., TestClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state_module, "SAVE_INTERVAL", 3600.0)
    client = make_client()
    cache = packages / ".releasekit" / "catalogue.json"
    for version in ("1.0", "1.1", "1.2"):
        data, files = upload_form(make_wheel(tmp_path, "gamma", version))
        assert client.post("/", data=data, files=files).status_code == 200
    listed = client.get("/simple/gamma/", headers={"accept": JSON}).json()["files"]
    assert len(listed) == 3
    assert not cache.exists()  # not rewritten per upload: saved at most every SAVE_INTERVAL
    client.__exit__(None, None, None)
    data = json.loads(cache.read_bytes())
    saved = {row[data["fields"].index("filename")] for row in data["files"]}
    assert saved == {f["filename"] for f in listed}


def test_reindex_reports_progress(fresh: Path) -> None:
    seen: list[Progress] = []
    report = reindex(LocalStorage(fresh), progress=seen.append)
    assert report.files == 300
    assert seen[-1] == Progress(300, 300)
    assert all(a.done < b.done for a, b in itertools.pairwise(seen))


@pytest.mark.parametrize(
    "filename",
    [
        "Foo.Bar_baz-1.0-py3-none-any.whl",
        "foo_bar-2.0-1build-cp311-cp311-manylinux_2_17_x86_64.whl",
        "foo-bar-baz-1.0.tar.gz",
        "Foo_Bar-1.0rc1.zip",
        "x-1.tar.gz",
    ],
)
def test_filename_project_agrees_with_the_full_parse(filename: str) -> None:
    assert filename_project(filename) == parse_filename(filename).project


@pytest.mark.parametrize("filename", ["README.txt", "foo.tar.gz", "foo.whl", "-1.0.tar.gz"])
def test_filename_project_refuses_non_distributions(filename: str) -> None:
    with pytest.raises(ArchiveError, match="filename"):
        filename_project(filename)


@pytest.mark.e2e
def test_server_answers_at_once_on_a_fresh_directory_of_2000_files(packages: Path) -> None:
    fill(packages, 200, 5)
    log = packages.parent / "server.log"
    command = [sys.executable, "-m", "releasekit", "server", "run", str(packages)]
    begin = time.monotonic()
    deadline = begin + 10
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "-p", "0", "-i", "127.0.0.1", "-a", ".", "-P", "."],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        listening = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
        while not (match := listening.search(log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        url = f"http://127.0.0.1:{match.group(1)}/simple/proj-123/"
        response = httpx2.get(url, headers={"accept": JSON})
        elapsed = time.monotonic() - begin
        assert response.status_code == 200 and elapsed < 10, (response.status_code, elapsed)
        files = response.json()["files"]
        assert len(files) == 10
        for entry in files:
            assert entry["hashes"]["sha256"] == sha256_of(packages / entry["filename"])
        print(f"first 200 on a fresh directory of 2000 files after {elapsed:.2f} s")
    finally:
        process.terminate()
        process.wait(timeout=10)
