"""A hostile or broken upstream: what our index answers, and that it caches nothing bad.

The upstream here is a small HTTP stub on 127.0.0.1 (a real releasekit index cannot be made to
lie: huge pages, slow drips, redirect loops, wrong hashes, `../` names, links to other hosts).
Our index runs in process over a real packages directory.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from releasekit.server.localstore import LocalStorage
from releasekit.server.maintenance import set_project_status
from releasekit.server.status import parse_status
from releasekit.server.upstream import UpstreamChange, configure_upstream
from tests.server.conftest import Users, make_wheel
from tests.server.upstream_stub import JSON, Handler, Stub, entry, page, reply
from tests.server.upstream_stub import stub as stub  # the fixture


@pytest.fixture
def wheel(tmp_path: Path) -> bytes:
    return make_wheel(tmp_path, "goodlib", "1.0").read_bytes()


@pytest.fixture
def index(
    stub: Stub, packages: Path, make_client: Callable[..., TestClient]
) -> Callable[..., TestClient]:
    def build(*, cooldown: str = "1d", **change: object) -> TestClient:
        update = UpstreamChange(url=f"{stub.url}/simple/", cooldown=cooldown, ttl="0", **change)  # type: ignore[arg-type]
        configure_upstream(LocalStorage(packages), "root", update)
        return make_client()

    return build


def cached(packages: Path) -> list[str]:
    root = packages / ".upstream" / "root"
    return sorted(p.name for p in root.iterdir() if p.is_file()) if root.is_dir() else []


def test_a_page_over_the_size_cap_is_refused(
    stub: Stub, index: Callable[..., TestClient], wheel: bytes
) -> None:
    big = [entry("goodlib-1.0-py3-none-any.whl", wheel, pad="x" * 4096)] * 400
    stub.routes["/simple/goodlib/"] = page(big)
    client = index(max_page_size=1024 * 1024)
    response = client.get("/simple/goodlib/", headers={"accept": JSON})
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert "sent more than 1048576 bytes" in response.json()["detail"]
    assert stub.url in response.json()["detail"]


def test_a_gzip_bomb_is_counted_after_decoding(
    stub: Stub, index: Callable[..., TestClient]
) -> None:
    bomb = gzip.compress(b'{"files": [' + b" " * (8 * 1024 * 1024) + b"]}")
    stub.routes["/simple/goodlib/"] = reply(200, bomb, headers={"content-encoding": "gzip"})
    client = index(max_page_size=1024 * 1024)
    response = client.get("/simple/goodlib/", headers={"accept": JSON})
    assert response.status_code == 502
    assert "sent more than 1048576 bytes" in response.json()["detail"]


def test_a_slow_drip_hits_the_deadline(stub: Stub, index: Callable[..., TestClient]) -> None:
    def drip(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("content-type", JSON)
        request.end_headers()
        for _ in range(100):  # bounded: at most 20 s, ends early when we hang up
            try:
                request.wfile.write(b" ")
                request.wfile.flush()
            except OSError:
                return
            time.sleep(0.2)

    stub.routes["/simple/goodlib/"] = drip
    client = index(timeout=1.0)
    response = client.get("/simple/goodlib/", headers={"accept": JSON})
    assert response.status_code == 504
    assert response.json()["code"] == "upstream-timeout"
    assert "within 1 s" in response.json()["detail"]


def test_an_upstream_that_never_answers_hits_the_deadline(
    stub: Stub, index: Callable[..., TestClient]
) -> None:
    def silent(request: BaseHTTPRequestHandler) -> None:
        time.sleep(3)  # bounded; the deadline is 1 s

    stub.routes["/simple/goodlib/"] = silent
    response = index(timeout=1.0).get("/simple/goodlib/", headers={"accept": JSON})
    assert response.status_code == 504
    assert stub.url in response.json()["detail"]


def test_a_redirect_loop_and_a_redirect_elsewhere_are_refused(
    stub: Stub, index: Callable[..., TestClient]
) -> None:
    stub.routes["/simple/loop/"] = reply(302, headers={"location": "/simple/loop/"})
    stub.routes["/simple/away/"] = reply(
        302, headers={"location": "http://169.254.169.254/latest/meta-data/"}
    )
    client = index()
    loop = client.get("/simple/loop/", headers={"accept": JSON})
    assert loop.status_code == 502
    assert "redirected more than 5 times" in loop.json()["detail"]
    assert stub.paths().count("/simple/loop/") == 6
    away = client.get("/simple/away/", headers={"accept": JSON})
    assert away.status_code == 502
    assert "a host or scheme this index does not fetch from" in away.json()["detail"]


def test_a_file_whose_bytes_do_not_match_its_hash_is_refused_and_not_cached(
    stub: Stub, index: Callable[..., TestClient], wheel: bytes, packages: Path
) -> None:
    name = "goodlib-1.0-py3-none-any.whl"
    stub.routes["/simple/goodlib/"] = page([entry(name, wheel)])
    stub.routes[f"/files/{name}"] = reply(200, wheel[:-1] + b"!", "application/octet-stream")
    client = index()
    assert client.get("/simple/goodlib/", headers={"accept": JSON}).status_code == 200
    response = client.get(f"/packages/{name}")
    assert response.status_code == 502
    assert response.json()["code"] == "upstream-hash-mismatch"
    assert "nothing was cached" in response.json()["detail"]
    assert cached(packages) == []
    assert not (packages / ".upstream" / "root" / ".releasekit" / "sha256" / name).exists()
    assert sorted(p.name for p in packages.iterdir() if p.is_file()) == []

    stub.routes[f"/files/{name}"] = reply(200, wheel, "application/octet-stream")
    good = client.get(f"/packages/{name}")
    assert good.status_code == 200
    assert good.content == wheel
    assert cached(packages) == [name]


def test_bad_entries_in_a_page_are_dropped(
    stub: Stub, index: Callable[..., TestClient], wheel: bytes, packages: Path
) -> None:
    good = "goodlib-1.0-py3-none-any.whl"
    stub.routes["/simple/goodlib/"] = page(
        [
            entry(good, wheel),
            entry("../../goodlib-2.0-py3-none-any.whl", wheel, url="/files/..%2F..%2Fx.whl"),
            entry("goodlib-3.0-py3-none-any.whl", wheel, url="/files/..%2F..%2Fgoodlib-3.0-py3-none-any.whl"),
            entry("goodlib-4.0-py3-none-any.whl", wheel, url="http://127.0.0.2:9/goodlib-4.0-py3-none-any.whl"),
            entry("goodlib-5.0-py3-none-any.whl", wheel, url="file:///etc/goodlib-5.0-py3-none-any.whl"),
            entry("otherlib-1.0-py3-none-any.whl", wheel),
            {**entry("goodlib-6.0-py3-none-any.whl", wheel), "hashes": {"md5": "0" * 32}},
            {"filename": 7, "url": None},
            entry(f"goodlib-1.0.{'1' * 250}-py3-none-any.whl", wheel),
        ]
    )  # fmt: skip
    client = index()
    response = client.get("/simple/goodlib/", headers={"accept": JSON})
    assert [f["filename"] for f in response.json()["files"]] == [good]
    assert response.json()["files"][0]["url"] == f"../../packages/{good}"
    for name in ("goodlib-4.0-py3-none-any.whl", "otherlib-1.0-py3-none-any.whl", "..%2Fx.whl"):
        assert client.get(f"/packages/{name}").status_code == 404
    assert not any("127.0.0.2" in path or "etc" in path for path in stub.paths())
    assert cached(packages) == []


def test_an_html_upstream_is_read_and_a_cooldown_withholds_files_without_upload_times(
    stub: Stub, index: Callable[..., TestClient], wheel: bytes
) -> None:
    name = "goodlib-1.0-py3-none-any.whl"
    digest = hashlib.sha256(wheel).hexdigest()
    html = (
        f'<html><body><a href="/files/{name}#sha256={digest}" data-requires-python="&gt;=3.8" '
        f'data-yanked="old">{name}</a></body></html>'
    )
    stub.routes["/simple/goodlib/"] = reply(200, html.encode(), "text/html; charset=utf-8")
    stub.routes[f"/files/{name}"] = reply(200, wheel, "application/octet-stream")
    client = index(cooldown="0")
    response = client.get("/simple/goodlib/", headers={"accept": JSON})
    [offered] = response.json()["files"]
    assert offered["requires-python"] == ">=3.8"
    assert offered["yanked"] == "old"
    assert offered["hashes"] == {"sha256": digest}
    assert client.get(f"/packages/{name}").content == wheel
    assert stub.seen[0][1]["accept"].startswith("application/vnd.pypi.simple.v1+json")

    client = index(cooldown="7d")
    held = client.get("/simple/goodlib/", headers={"accept": JSON})
    assert held.json()["files"] == []
    assert "1 files withheld" in held.headers["x-releasekit-withheld"]


def test_credentials_are_never_forwarded_upstream(
    stub: Stub, packages: Path, make_client: Callable[..., TestClient], users: Users
) -> None:
    stub.routes["/simple/goodlib/"] = page([])
    update = UpstreamChange(url=f"{stub.url}/simple/", ttl="0")
    configure_upstream(LocalStorage(packages), "root", update)
    client = make_client(passwords=users.passwords, authenticate="download,list,update")
    assert client.get("/simple/goodlib/").status_code == 401
    assert stub.seen == []  # refused before anything was asked upstream
    response = client.get("/simple/goodlib/", auth=users.credentials["reader"])
    assert response.status_code == 200
    assert [headers.get("authorization") for _, headers in stub.seen] == [None]


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (reply(200, b"{}", "application/octet-stream"), "not a simple-API page"),
        (page([], version="2.0"), "speaks API 2.0"),
        (reply(200, b"not json"), "is not JSON"),
        (reply(500, b"oops"), "answered 500"),
    ],
)
def test_an_unusable_answer_is_a_502_naming_the_upstream(
    stub: Stub, index: Callable[..., TestClient], handler: Handler, message: str, packages: Path
) -> None:
    stub.routes["/simple/goodlib/"] = handler
    response = index().get("/simple/goodlib/", headers={"accept": JSON})
    assert response.status_code == 502
    assert message in response.json()["detail"]
    assert stub.url in response.json()["detail"]
    assert not (packages / ".upstream" / "root" / ".releasekit" / "pages").exists()


def test_a_failing_upstream_leaves_the_cached_page_in_service(
    stub: Stub, index: Callable[..., TestClient], wheel: bytes
) -> None:
    stub.routes["/simple/goodlib/"] = page([entry("goodlib-1.0-py3-none-any.whl", wheel)])
    client = index()
    assert "warning" not in client.get("/simple/goodlib/").headers
    stub.routes["/simple/goodlib/"] = reply(503, b"down")
    stale = client.get("/simple/goodlib/", headers={"accept": JSON})
    assert stale.status_code == 200
    assert stale.headers["warning"] == '110 releasekit "Response is Stale"'
    assert "answered 503" in stale.headers["x-releasekit-stale"]
    assert len(stale.json()["files"]) == 1


def test_metadata_is_verified_against_the_listed_hash(
    stub: Stub, index: Callable[..., TestClient], wheel: bytes
) -> None:
    name = "goodlib-1.0-py3-none-any.whl"
    metadata = b"Metadata-Version: 2.1\nName: goodlib\nVersion: 1.0\n\n"
    digest = hashlib.sha256(metadata).hexdigest()
    listed = {**entry(name, wheel), "core-metadata": {"sha256": digest}}
    stub.routes["/simple/goodlib/"] = page([listed])
    stub.routes[f"/files/{name}.metadata"] = reply(200, metadata + b"evil", "text/plain")
    client = index()
    html = client.get("/simple/goodlib/", headers={"accept": "text/html"}).text
    assert f'data-core-metadata="sha256={digest}"' in html
    assert client.get(f"/packages/{name}.metadata").status_code == 502
    stub.routes[f"/files/{name}.metadata"] = reply(200, metadata, "text/plain")
    assert client.get(f"/packages/{name}.metadata").content == metadata


def test_a_quarantined_local_project_never_falls_through_to_upstream(
    stub: Stub, index: Callable[..., TestClient], packages: Path, wheel: bytes
) -> None:
    name = "goodlib-1.0-py3-none-any.whl"
    stub.routes["/simple/goodlib/"] = page([entry(name, wheel)])
    (packages / "goodlib-0.1-py3-none-any.whl").write_bytes(wheel)
    set_project_status(LocalStorage(packages), "goodlib", parse_status("quarantined", "bad"))
    client = index()
    response = client.get("/simple/goodlib/", headers={"accept": JSON})
    assert response.json()["files"] == []
    assert response.json()["project-status"]["status"] == "quarantined"
    assert client.get(f"/packages/{name}").status_code == 404
    assert stub.seen == []


def test_the_reserve_holds_for_every_spelling(stub: Stub, index: Callable[..., TestClient]) -> None:
    client = index(reserve=("Aegis_*",))
    for spelling in ("Aegis_Core", "aegis.core", "AEGIS-core"):
        response = client.get(f"/simple/{spelling}/", headers={"accept": JSON})
        assert response.status_code == 404, spelling
        assert response.json()["code"] == "reserved-name"
        file = client.get(f"/packages/{spelling.replace('-', '_')}-1.0-py3-none-any.whl")
        assert file.json()["code"] == "reserved-name"
    assert stub.seen == []


def test_a_local_file_that_cannot_be_read_still_keeps_its_name_local(
    stub: Stub, index: Callable[..., TestClient], packages: Path, wheel: bytes
) -> None:
    stub.routes["/simple/goodlib/"] = page([entry("goodlib-1.0-py3-none-any.whl", wheel)])
    (packages / "goodlib-0.1-py3-none-any.whl").write_bytes(b"not a zip")
    client = index()
    response = client.get("/simple/goodlib/", headers={"accept": JSON})
    assert response.status_code == 404
    assert response.json()["code"] == "unknown-project"
    assert stub.seen == []


def test_an_upstream_quarantine_is_mirrored_and_its_files_are_not_served(
    stub: Stub, index: Callable[..., TestClient], wheel: bytes
) -> None:
    name = "goodlib-1.0-py3-none-any.whl"
    body = {
        "meta": {"api-version": "1.4"},
        "project-status": {"status": "quarantined", "reason": "malware"},
        "files": [entry(name, wheel)],
    }
    stub.routes["/simple/goodlib/"] = reply(200, json.dumps(body).encode())
    stub.routes[f"/files/{name}"] = reply(200, wheel, "application/octet-stream")
    client = index()
    served = client.get("/simple/goodlib/", headers={"accept": JSON}).json()
    assert served["files"] == []
    assert served["project-status"] == {"status": "quarantined", "reason": "malware"}
    assert client.get(f"/packages/{name}").status_code == 404
    assert f"/files/{name}" not in stub.paths()


def test_an_html_status_marker_is_mirrored(stub: Stub, index: Callable[..., TestClient]) -> None:
    html = '<html><head><meta name="pypi:project-status" content="deprecated"></head></html>'
    stub.routes["/simple/goodlib/"] = reply(200, html.encode(), "text/html")
    page_html = index().get("/simple/goodlib/", headers={"accept": "text/html"}).text
    assert '<meta name="pypi:project-status" content="deprecated">' in page_html
