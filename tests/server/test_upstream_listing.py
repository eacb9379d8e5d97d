"""Reading an upstream page (pure): what is kept, what is dropped, what the cooldown offers."""

from __future__ import annotations

import json

import pytest

from releasekit.server.upstream import UpstreamConfig
from releasekit.server.upstream_fetch import Fetched, allowed
from releasekit.server.upstream_listing import Listing, UpstreamFile, offered, parse_page

CONFIG = UpstreamConfig(url="https://up.example/simple/", allow_hosts=("files.example",))
SHA = "a" * 64
PAGE_URL = "https://up.example/simple/demo/"


def fetched(files: list[dict[str, object]]) -> Fetched:
    body = json.dumps({"meta": {"api-version": "1.1"}, "files": files}).encode()
    return Fetched(PAGE_URL, "application/vnd.pypi.simple.v1+json", body, "", len(body))


@pytest.mark.parametrize(
    ("url", "after", "ok"),
    [
        ("https://up.example/x", None, True),
        ("https://files.example/x", None, True),
        ("https://other.example/x", None, False),
        ("http://up.example/x", "https://up.example/simple/", False),  # no downgrade
        ("https://user:pw@up.example/x", None, False),
        ("ftp://up.example/x", None, False),
        ("https://up.example:8443/x", None, False),  # another port is another origin
    ],
)
def test_allowed(url: str, after: str | None, ok: bool) -> None:
    assert allowed(url, CONFIG, after=after) is ok


def test_links_resolve_against_the_page_and_other_hosts_need_allowing() -> None:
    listing = parse_page(
        "demo",
        fetched(
            [
                {"filename": "demo-1.0.tar.gz", "url": "../../f/demo-1.0.tar.gz", "hashes": {"sha256": SHA}},
                {"filename": "demo-1.1.tar.gz", "url": "https://files.example/demo-1.1.tar.gz", "hashes": {"sha256": SHA}},
                {"filename": "demo-1.2.tar.gz", "url": "https://evil.example/demo-1.2.tar.gz", "hashes": {"sha256": SHA}},
                {"filename": "demo-1.3.tar.gz", "url": "/f/other-name.tar.gz", "hashes": {"sha256": SHA}},
                {"filename": "demo-1.0.tar.gz", "url": "/f/demo-1.0.tar.gz", "hashes": {"sha256": SHA}},
            ]
        ),
        CONFIG,
        now=0.0,
    )  # fmt: skip
    assert [(f.filename, f.url) for f in listing.files] == [
        ("demo-1.0.tar.gz", "https://up.example/f/demo-1.0.tar.gz"),
        ("demo-1.1.tar.gz", "https://files.example/demo-1.1.tar.gz"),
    ]
    assert listing.dropped == 3


def test_upload_times_yanks_and_metadata_are_read() -> None:
    [kept] = parse_page(
        "demo",
        fetched(
            [
                {
                    "filename": "demo-1.0-py3-none-any.whl",
                    "url": "/f/demo-1.0-py3-none-any.whl",
                    "hashes": {"sha256": SHA.upper(), "md5": "x"},
                    "upload-time": "2024-01-02T03:04:05.000006Z",
                    "yanked": True,
                    "size": 12,
                    "requires-python": ">=3.9",
                    "dist-info-metadata": {"sha256": "b" * 64},
                }
            ]
        ),
        CONFIG,
        now=0.0,
    ).files
    assert kept.sha256 == SHA
    assert kept.uploaded == 1704164645.000006
    assert (kept.yanked, kept.size, kept.requires_python) == ("", 12, ">=3.9")
    assert kept.metadata_sha256 == "b" * 64


def test_the_cooldown_offers_old_files_only() -> None:
    def file(name: str, uploaded: float | None) -> UpstreamFile:
        return UpstreamFile(name, f"https://up.example/{name}", SHA, "1", uploaded=uploaded)

    listing = Listing(
        "demo",
        0.0,
        "json",
        (file("old", 100.0), file("new", 990.0), file("unknown", None)),
    )
    assert [f.filename for f in offered(listing, 0, 1000.0)[0]] == ["old", "new", "unknown"]
    kept, withheld = offered(listing, 500, 1000.0)
    assert ([f.filename for f in kept], withheld) == (["old"], 2)


def test_a_damaged_cache_entry_is_not_trusted() -> None:
    assert Listing.from_bytes(b"{not json") is None
    assert Listing.from_bytes(b'{"project": "x"}') is None
    listing = Listing("demo", 1.0, "json", ())
    assert Listing.from_bytes(listing.to_bytes()) == listing
