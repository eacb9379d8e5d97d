"""The read API in process: PEP 503/629/691/700/658/714/592 pages, negotiation, files, redirects."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.server.conftest import Dists, make_sdist, make_wheel, wait_for

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
PIP_ACCEPT = f"{JSON}, {HTML}; q=0.1, text/html; q=0.01"


@pytest.fixture
def loaded(packages: Path, dists: Dists, make_client: Callable[..., TestClient]) -> TestClient:
    """An index whose directory was filled by hand before start (pypiserver habit)."""
    for file in dists.directory.iterdir():
        shutil.copy(file, packages)
    return make_client()


def test_root_page_lists_normalized_projects_in_both_formats(loaded: TestClient) -> None:
    page = loaded.get("/simple/", headers={"accept": JSON})
    assert page.status_code == 200
    assert page.headers["content-type"] == JSON
    assert page.json() == {
        "meta": {"api-version": "1.4"},
        "projects": [{"name": "alpha"}, {"name": "beta-lib"}],
    }
    html = loaded.get("/simple/", headers={"accept": "text/html"})
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert '<meta name="pypi:repository-version" content="1.4">' in html.text
    assert '<a href="beta-lib/">beta-lib</a>' in html.text


def test_project_json_has_pep700_fields_and_core_metadata(loaded: TestClient, dists: Dists) -> None:
    data = loaded.get("/simple/alpha/", headers={"accept": PIP_ACCEPT}).json()
    assert data["meta"] == {"api-version": "1.4"}
    assert data["name"] == "alpha"
    assert data["versions"] == ["1.0", "1.1"]
    files = {f["filename"]: f for f in data["files"]}
    wheel = files["alpha-1.1-py3-none-any.whl"]
    raw = dists.path("alpha-1.1-py3-none-any.whl").read_bytes()
    assert wheel["hashes"] == {"sha256": hashlib.sha256(raw).hexdigest()}
    assert wheel["size"] == len(raw)
    assert wheel["requires-python"] == ">=3.8"
    assert wheel["url"] == "../../packages/alpha-1.1-py3-none-any.whl"
    assert wheel["upload-time"].endswith("Z")
    assert wheel["yanked"] is False
    assert "dist-info-metadata" not in wheel  # PEP 714: the old JSON key broke pip
    metadata = loaded.get("/packages/alpha-1.1-py3-none-any.whl.metadata")
    assert metadata.status_code == 200
    assert wheel["core-metadata"] == {"sha256": hashlib.sha256(metadata.content).hexdigest()}
    assert b"Requires-Python: >=3.8" in metadata.content


def test_project_html_escapes_requires_python_and_carries_both_metadata_names(
    loaded: TestClient,
) -> None:
    page = loaded.get("/simple/alpha/", headers={"accept": HTML})
    assert page.headers["content-type"] == HTML
    line = next(li for li in page.text.splitlines() if "alpha-1.1-py3-none-any.whl<" in li)
    assert 'data-requires-python="&gt;=3.8"' in line
    assert 'data-core-metadata="sha256=' in line
    assert 'data-dist-info-metadata="sha256=' in line
    assert "#sha256=" in line


def test_sdist_metadata_served_only_when_static(
    packages: Path, make_client: Callable[..., TestClient]
) -> None:
    make_sdist(packages, "static-one", "1.0", metadata_version="2.2")
    make_sdist(packages, "dynamic-one", "1.0", metadata_version="2.2", dynamic=("Requires-Dist",))
    make_sdist(packages, "old-one", "1.0", metadata_version="2.1")
    client = make_client()
    for project, served in (("static-one", True), ("dynamic-one", False), ("old-one", False)):
        entry = client.get(f"/simple/{project}/", headers={"accept": JSON}).json()["files"][0]
        assert bool(entry["core-metadata"]) is served
        status = client.get(f"/packages/{entry['filename']}.metadata").status_code
        assert status == (200 if served else 404)


@pytest.mark.parametrize(
    ("accept", "query", "expected"),
    [
        (JSON, "", JSON),
        ("application/vnd.pypi.simple.latest+json", "", JSON),
        ("application/vnd.pypi.simple.latest+html", "", HTML),
        ("text/html", "", "text/html; charset=utf-8"),
        (f"{JSON};q=0.2, {HTML};q=0.9", "", HTML),
        ("*/*", "", "text/html; charset=utf-8"),
        ("application/*", "", JSON),
        (f"{JSON}, */*", "", JSON),
        (f"text/html, {JSON};q=0.9", "", "text/html; charset=utf-8"),
        (f"{JSON}, {HTML}, text/html", "", JSON),
        ("text/*", "", "text/html; charset=utf-8"),
        (None, "", "text/html; charset=utf-8"),
        ("text/html", f"?format={JSON}", JSON),
    ],
)
def test_content_negotiation(
    loaded: TestClient, accept: str | None, query: str, expected: str
) -> None:
    headers = {"accept": accept} if accept else {}
    if accept is None:
        headers = {"accept": ""}
    response = loaded.get(f"/simple/alpha/{query}", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == expected
    assert response.headers["vary"] == "Accept"


@pytest.mark.parametrize(
    ("accept", "query"),
    [("application/json", ""), (f"{JSON};q=0, text/html;q=0", ""), (JSON, "?format=text/plain")],
)
def test_nothing_acceptable_is_406(loaded: TestClient, accept: str, query: str) -> None:
    response = loaded.get(f"/simple/alpha/{query}", headers={"accept": accept})
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/problem+json"
    assert "application/vnd.pypi.simple.v1+json" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple", "/simple/"),
        ("/simple/alpha", "/simple/alpha/"),
        ("/simple/Beta.Lib/", "/simple/beta-lib/"),
        ("/simple/Beta_Lib", "/simple/beta-lib/"),
        ("/simple/ALPHA/?format=text/html", "/simple/alpha/?format=text/html"),
    ],
)
def test_redirects_to_normalized_name_and_trailing_slash(
    loaded: TestClient, path: str, location: str
) -> None:
    response = loaded.get(path, follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == location


def test_redirects_keep_the_url_prefix_and_forwarded_prefix(
    packages: Path, dists: Dists, make_client: Callable[..., TestClient]
) -> None:
    shutil.copy(dists.path("alpha-1.0-py3-none-any.whl"), packages)
    client = make_client(url_prefix="/pypi/")
    response = client.get("/pypi/simple/Alpha/", follow_redirects=False)
    assert response.headers["location"] == "/pypi/simple/alpha/"
    behind = client.get(
        "/pypi/simple/Alpha", headers={"x-forwarded-prefix": "/edge"}, follow_redirects=False
    )
    assert behind.headers["location"] == "/edge/pypi/simple/alpha/"
    assert client.get("/pypi/simple/alpha/").status_code == 200
    assert client.get("/simple/alpha/").status_code == 404
    welcome = client.get("/pypi/", headers={"x-forwarded-proto": "https", "host": "idx.corp"})
    assert "https://idx.corp/pypi/simple/" in welcome.text


def test_head_and_odd_paths_under_simple(loaded: TestClient) -> None:
    get = loaded.get("/simple/alpha/", headers={"accept": JSON})
    head = loaded.head("/simple/alpha/", headers={"accept": JSON})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["etag"] == get.headers["etag"]
    assert loaded.get("/simple/alpha/extra").status_code == 404
    assert loaded.get("/simplex/").status_code == 404


def test_unknown_project_is_404_without_fallback(loaded: TestClient) -> None:
    response = loaded.get("/simple/requests/", follow_redirects=False)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "no fallback" in response.json()["detail"]


def test_fallback_only_for_projects_missing_locally(
    packages: Path, dists: Dists, make_client: Callable[..., TestClient]
) -> None:
    shutil.copy(dists.path("alpha-1.0-py3-none-any.whl"), packages)
    client = make_client(fallback_url="https://pypi.org/simple/")
    missing = client.get("/simple/requests/", follow_redirects=False)
    assert missing.status_code == 303
    assert missing.headers["location"] == "https://pypi.org/simple/requests/"
    assert client.get("/simple/alpha/", follow_redirects=False).status_code == 200


def test_pages_revalidate_by_etag(loaded: TestClient) -> None:
    first = loaded.get("/simple/alpha/", headers={"accept": JSON})
    etag = first.headers["etag"]
    again = loaded.get("/simple/alpha/", headers={"accept": JSON, "if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    html = loaded.get("/simple/alpha/", headers={"accept": HTML, "if-none-match": etag})
    assert html.status_code == 200  # another representation, another validator


def test_files_have_length_etag_cache_control_head_and_range(
    loaded: TestClient, dists: Dists
) -> None:
    name = "alpha-1.0-py3-none-any.whl"
    raw = dists.path(name).read_bytes()
    loaded.get("/simple/alpha/")  # indexes alpha: until then the ETag is size and mtime
    full = loaded.get(f"/packages/{name}")
    assert full.content == raw
    assert full.headers["content-length"] == str(len(raw))
    assert full.headers["etag"] == f'"{hashlib.sha256(raw).hexdigest()}"'
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    head = loaded.head(f"/packages/{name}")
    assert head.headers["content-length"] == str(len(raw)) and head.content == b""
    part = loaded.get(f"/packages/{name}", headers={"range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == raw[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(raw)}"
    assert part.headers["content-length"] == "10"
    tail = loaded.get(f"/packages/{name}", headers={"range": "bytes=-5"})
    assert tail.content == raw[-5:]
    bad = loaded.get(f"/packages/{name}", headers={"range": f"bytes={len(raw) + 5}-"})
    assert bad.status_code == 416
    cached = loaded.get(f"/packages/{name}", headers={"if-none-match": full.headers["etag"]})
    assert cached.status_code == 304


def test_cache_control_flag_sets_file_max_age(
    packages: Path, dists: Dists, make_client: Callable[..., TestClient]
) -> None:
    shutil.copy(dists.path("alpha-1.0-py3-none-any.whl"), packages)
    client = make_client(cache_control=600)
    response = client.get("/packages/alpha-1.0-py3-none-any.whl")
    assert response.headers["cache-control"] == "public, max-age=600, immutable"


@pytest.mark.parametrize(
    "path",
    ["/packages/nothing-1.0.tar.gz", "/packages/..%2Fetc%2Fpasswd", "/packages/.releasekit"],
)
def test_unknown_files_are_404(loaded: TestClient, path: str) -> None:
    response = loaded.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_hand_copied_and_removed_files_show_up_without_restart(
    packages: Path, client: TestClient
) -> None:
    assert client.get("/simple/gamma/").status_code == 404
    make_wheel(packages, "gamma", "0.1")

    def listed() -> bool:
        return client.get("/simple/gamma/").status_code == 200

    wait_for(listed)
    (packages / "gamma-0.1-py3-none-any.whl").unlink()
    # A file removed behind the index's back is noticed by a poll: the project page can answer
    # 404 (its file is gone) a moment before the poll drops the name from the root page.
    wait_for(lambda: not listed())
    wait_for(lambda: client.get("/simple/", headers={"accept": JSON}).json()["projects"] == [])


def test_a_broken_file_copied_in_is_skipped_then_listed_once_fixed(
    packages: Path, client: TestClient, tmp_path: Path
) -> None:
    target = packages / "delta-1.0-py3-none-any.whl"
    target.write_bytes(b"half a file")
    good = make_wheel(tmp_path, "delta", "1.0")
    client.get("/simple/")
    shutil.copy(good, target)
    wait_for(lambda: client.get("/simple/delta/").status_code == 200)


def test_pages_are_also_written_to_disk_for_a_static_server(
    loaded: TestClient, packages: Path
) -> None:
    state = packages / ".releasekit" / "simple"
    served = loaded.get("/simple/alpha/", headers={"accept": JSON}).json()
    page = state / "alpha" / "index.v1_json"
    # Written by whoever indexed alpha (this request or the background indexer).
    wait_for(lambda: page.exists() and json.loads(page.read_bytes()) == served)
    root = loaded.get("/simple/", headers={"accept": "text/html"})
    assert (state / "index.html").read_bytes() == root.content


def test_health_ready_metrics_and_welcome(loaded: TestClient) -> None:
    assert loaded.get("/health").text == "ok\n"
    assert loaded.get("/ready").status_code == 200

    def indexed() -> bool:
        return bool(loaded.get("/ready").json()["indexing"] == {"done": 4, "total": 4})

    wait_for(indexed)  # the four files copied in before the start are indexed in the background
    loaded.get("/packages/alpha-1.0-py3-none-any.whl")
    metrics = loaded.get("/metrics").text
    assert 'releasekit_downloads_total{project="alpha",version="1.0"} 1.0' in metrics
    assert "releasekit_files_stored 4.0" in metrics
    welcome = loaded.get("/")
    assert "beta-lib" in welcome.text and "1.1" in welcome.text
    for client in (
        "pip install --index-url http://testserver/simple/",
        "uv publish",
        "poetry",
        "twine",
    ):
        assert client in welcome.text


def test_metrics_count_requests_by_route_and_status(loaded: TestClient) -> None:
    loaded.get("/simple/alpha/")
    loaded.get("/simple/nothing/")
    text = loaded.get("/metrics").text
    assert (
        'releasekit_http_requests_total{method="GET",route="simple_project",status="200"} 1.0'
        in text
    )
    assert (
        'releasekit_http_requests_total{method="GET",route="simple_project",status="404"} 1.0'
        in text
    )
    assert "releasekit_http_request_duration_seconds_bucket" in text


def test_custom_health_endpoint(make_client: Callable[..., TestClient]) -> None:
    client = make_client(health_endpoint="/-/alive")
    assert client.get("/-/alive").status_code == 200
    assert client.get("/health").status_code == 404


def test_two_apps_in_one_process_share_nothing(
    tmp_path: Path, dists: Dists, make_client: Callable[..., TestClient]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(dists.path("alpha-1.0-py3-none-any.whl"), other)
    first, second = make_client(), make_client(packages_dir=other)
    assert first.get("/simple/alpha/").status_code == 404
    assert second.get("/simple/alpha/").status_code == 200
    second.get("/packages/alpha-1.0-py3-none-any.whl")
    assert "releasekit_downloads_total{" not in first.get("/metrics").text
