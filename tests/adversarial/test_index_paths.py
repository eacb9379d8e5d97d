"""Hostile paths against named indexes on a real server: dot segments, encoded dots and slashes,
NUL bytes, huge names and names shadowing routes. Requests go out raw (http.client does not
normalize paths); every answer is a 4xx problem, nothing leaks, nothing changes."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from releasekit.server.indexes import IndexConfig, create_index, set_acl
from releasekit.server.localstore import LocalStorage
from tests.adversarial.conftest import Index
from tests.server.conftest import Users, make_wheel, snapshot

pytestmark = pytest.mark.e2e


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET `path` exactly as written."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def guarded(tmp_path: Path, users: Users, start_index: Callable[..., Index]) -> Index:
    """staging (ACL: ci reads) holding a wheel; prod open to everybody; root with a wheel."""
    packages = tmp_path / "packages"
    root = LocalStorage(packages)
    root.prepare()
    create_index(root, IndexConfig("prod"))
    create_index(root, IndexConfig("staging", bases=("prod",)))
    set_acl(root, "staging", "ci", frozenset({"read"}))
    set_acl(root, "prod", ":anonymous:", frozenset({"read"}))
    (packages / ".indexes" / "staging").mkdir(parents=True)
    make_wheel(packages / ".indexes" / "staging", "secret", "1.0")
    make_wheel(packages, "public", "1.0")
    return start_index(packages, "-P", str(users.passwords), "-a", "update")


HOSTILE = [
    ("/../simple/", 404, b"there is no index '..'"),
    ("/%2e%2e/simple/", 404, b"there is no index '..'"),
    ("/%2E%2E%2Fsimple%2F", 404, b"there is no index '..'"),
    ("/.indexes/staging/secret-1.0-py3-none-any.whl", 404, b"there is no index '.indexes'"),
    ("/staging%2Fsimple%2F", 401, b"credentials are required"),  # decoded: ACL still applies
    ("/staging%2fsimple/secret/", 401, b"credentials are required"),
    ("/staging/packages/secret-1.0-py3-none-any.whl", 401, b"credentials are required"),
    ("/prod/packages/..%2Fstaging%2Fsecret-1.0-py3-none-any.whl", 404, b"nothing at"),
    ("/prod/packages/%2e%2e/%2e%2e/staging/packages/secret-1.0-py3-none-any.whl", 404, b""),
    ("/prod%2F..%2Fstaging/simple/", 404, b"nothing at"),
    ("/prod/../staging/simple/secret/", 404, b"nothing at"),
    ("/prod/simple/secret/", 404, b"not on this index"),  # staging's name, not prod's
    ("/packages/.indexes%2Fstaging%2Fsecret-1.0-py3-none-any.whl", 404, b""),
    ("/packages/..%2F.indexes%2Fstaging%2Fsecret-1.0-py3-none-any.whl", 404, b""),
    ("/prod/packages/..%2F..%2F.releasekit%2Ftokens.json", 404, b"nothing at"),
    ("/staging%00/simple/", 404, b"there is no index 'staging\\\\x00'"),
    ("/" + "a" * 8000 + "/simple/", 404, b"there is no index 'aaaa"),
    ("/prod/" + "b" * 8000, 404, b"nothing at /prod/bbbb"),
]


def stored(packages: Path) -> dict[str, bytes]:
    """The package files of every index (the server's caches under .releasekit/ left out: its
    background indexing writes them on its own clock)."""
    return {k: v for k, v in snapshot(packages).items() if ".releasekit" not in Path(k).parts}


def test_hostile_paths_leak_nothing(guarded: Index, tmp_path: Path) -> None:
    before = stored(guarded.packages)
    for path, status, says in HOSTILE:
        got, body = raw_get(guarded.url, path)
        assert got == status, (path, got, body[:200])
        assert says in body, (path, body[:300])
        assert b"sha256" not in body and b"PK\x03\x04" not in body, path  # no page, no file
        assert len(body) < 600, path  # a huge name is never echoed back
    assert raw_get(guarded.url, "/prod/simple/")[0] == 200
    assert stored(guarded.packages) == before
