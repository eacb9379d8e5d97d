"""The fast indexing path (whole small files in memory, plain headers without the email parser,
groups of projects installed at once, sidecars at first request) gives the records and pages the
streaming, email-parser, one-project-at-a-time path gives, on a varied corpus."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from releasekit.server import catalogue as catalogue_module
from releasekit.server import metadata as metadata_module
from releasekit.server import records as records_module
from releasekit.server.app import create_app
from releasekit.server.catalogue import Catalogue
from releasekit.server.localstore import LocalStorage
from releasekit.server.pages import PageSet, render_project_html, render_project_json
from releasekit.server.settings import load_settings
from tests.server.conftest import make_sdist, make_wheel

JSON = "application/vnd.pypi.simple.v1+json"
PKG_INFO = (
    "Metadata-Version: {mv}\nName: {name}\nVersion: {version}\n{extra}"
    "Summary: a test\n  folded onto a second line\n\nLong description\n"
)


def _pkg_info(name: str, version: str, mv: str = "2.2", extra: str = "") -> bytes:
    return PKG_INFO.format(mv=mv, name=name, version=version, extra=extra).encode()


def tar_sdist(directory: Path, name: str, version: str, fmt: int, *, dot: bool = False,
              extra: str = "") -> Path:  # fmt: skip
    """A .tar.gz sdist in the given tarfile format (ustar, GNU, PAX), maybe with `./` names."""
    top = f"{'./' if dot else ''}{name}-{version}"
    members = {
        f"{top}/PKG-INFO": _pkg_info(name, version, extra=extra),
        f"{top}/pyproject.toml": b"[project]\nname = 'x'\n",
        f"{top}/src/{'deep/' * 30}mod.py": b"x = 1\n",  # a long name: GNU/PAX headers
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", format=fmt) as archive:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    target = directory / f"{name}-{version}.tar.gz"
    target.write_bytes(raw.getvalue())
    return target


def zip_sdist(directory: Path, name: str, version: str, *, mv: str = "2.2") -> Path:
    """A .zip sdist (PEP 625 allows only .tar.gz for new ones; the index still accepts .zip)."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}-{version}/PKG-INFO", _pkg_info(name, version, mv))
        archive.writestr(f"{name}-{version}/setup.py", b"")
    target = directory / f"{name}-{version}.zip"
    target.write_bytes(raw.getvalue())
    return target


def varied_corpus(directory: Path) -> None:
    """Wheels and sdists of every accepted format, odd metadata, and files that are skipped."""
    for i in range(6):
        make_wheel(directory, f"wheel-{i}", "1.0", requires_python=">=3.8" if i % 2 else None)
        make_wheel(directory, f"wheel-{i}", "1.1", payload=bytes(range(256)) * (50 * i + 1))
        make_sdist(directory, f"wheel-{i}", "1.0", dynamic=("Requires-Dist",) if i == 2 else ())
    make_sdist(directory, "oldmeta", "0.1", metadata_version="2.1")  # no PEP 658 for it
    for fmt, label in ((tarfile.USTAR_FORMAT, "ustar"), (tarfile.GNU_FORMAT, "gnu"),
                       (tarfile.PAX_FORMAT, "pax")):  # fmt: skip
        tar_sdist(directory, f"tar_{label}", "2.0", fmt, dot=fmt == tarfile.GNU_FORMAT)
    tar_sdist(directory, "nonascii", "1.0", tarfile.PAX_FORMAT, extra="Author: J\u00fcrgen\n")
    tar_sdist(directory, "pyreq", "1.0", tarfile.PAX_FORMAT, extra="Requires-Python: >=3.9\n")
    zip_sdist(directory, "zipped", "3.0")
    zip_sdist(directory, "zipped", "3.1", mv="2.1")
    (directory / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    (directory / "broken-1.0.tar.gz").write_bytes(b"\x1f\x8b not gzip")


def slow_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path before the fast one: streamed reads, the email parser, one project per group."""
    monkeypatch.setattr(records_module, "IN_MEMORY", -1)
    monkeypatch.setattr(metadata_module, "_plain_fields", lambda raw: None)
    monkeypatch.setattr(catalogue_module, "GROUP_FILES", 1)


def indexed(directory: Path) -> Catalogue:
    catalogue = Catalogue(LocalStorage(directory))
    catalogue.load()
    return catalogue


def pages_of(catalogue: Catalogue, *, zero_times: bool = False) -> dict[str, tuple[bytes, bytes]]:
    pages = {}
    for project, records in catalogue.projects.items():
        if zero_times:
            records = tuple(replace(r, mtime_ns=0) for r in records)
        pages[project] = (
            render_project_html(project, records),
            render_project_json(project, records),
        )
    return pages


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    directory = tmp_path / "packages"
    directory.mkdir()
    varied_corpus(directory)
    return directory


def test_fast_and_slow_paths_give_the_same_records_pages_and_skips(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = indexed(corpus)
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in corpus.iterdir():
        if file.is_file():
            (copy / file.name).write_bytes(file.read_bytes())
            (copy / file.name).touch()
    with monkeypatch.context() as patch:
        slow_path(patch)
        slow = indexed(copy)

    def comparable(c: Catalogue) -> dict[str, tuple[object, ...]]:
        return {n: (r.project, r.name, r.version, r.kind, r.size, r.sha256, r.blake2b,
                    r.requires_python, r.metadata_sha256) for n, r in c.files.items()}  # fmt: skip

    assert comparable(fast) == comparable(slow)
    assert len(fast.files) == 26
    assert (
        set(fast.skipped)
        == set(slow.skipped)
        == {
            "broken-1.0-py3-none-any.whl",
            "broken-1.0.tar.gz",
        }
    )
    assert fast.skipped == slow.skipped
    assert fast.progress() == slow.progress()
    # Pages differ only by upload time (the copies' mtimes): render both with the same ones.
    assert pages_of(fast, zero_times=True) == pages_of(slow, zero_times=True)


def test_records_match_independent_reads_of_every_archive(corpus: Path) -> None:
    catalogue = indexed(corpus)
    for name, record in catalogue.files.items():
        data = (corpus / name).read_bytes()
        assert record.sha256 == hashlib.sha256(data).hexdigest()
        assert record.blake2b == hashlib.blake2b(data, digest_size=32).hexdigest()
        assert record.size == len(data)
        if name.endswith(".whl"):
            with zipfile.ZipFile(corpus / name) as archive:
                meta = next(archive.read(n) for n in archive.namelist() if n.endswith("/METADATA"))
        elif name.endswith(".zip"):
            with zipfile.ZipFile(corpus / name) as archive:
                meta = next(archive.read(n) for n in archive.namelist() if n.endswith("/PKG-INFO"))
        else:
            with tarfile.open(corpus / name) as archive:
                member = next(m for m in archive.getmembers() if m.name.endswith("/PKG-INFO"))
                extracted = archive.extractfile(member)
                assert extracted is not None
                meta = extracted.read()
        static = name.endswith(".whl") or (
            b"Metadata-Version: 2.2" in meta and b"Dynamic" not in meta
        )
        expected = hashlib.sha256(meta).hexdigest() if static else None
        assert record.metadata_sha256 == expected, name
    assert catalogue.files["pyreq-1.0.tar.gz"].requires_python == ">=3.9"
    assert catalogue.files["nonascii-1.0.tar.gz"].name == "nonascii"


def test_large_files_stream_and_give_the_same_record(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = indexed(corpus).files
    monkeypatch.setattr(records_module, "IN_MEMORY", 1000)  # most files stream now
    streamed = indexed(corpus).files
    assert whole == streamed


def test_the_server_indexes_in_groups_to_the_same_pages(corpus: Path) -> None:
    expected = pages_of(indexed(corpus))
    for file in (corpus / ".releasekit").glob("**/*"):
        if file.is_file():
            file.unlink()  # start fresh: the server indexes in the background, in groups
    settings = load_settings({"packages_dir": corpus, "authenticate": "."}, env={})
    app = create_app(LocalStorage(corpus), settings)
    state = app.state.index
    while state.index_step():
        pass
    with TestClient(app) as client:
        for project, (html, data) in expected.items():
            assert client.get(f"/simple/{project}/").content == html
            json_page = client.get(f"/simple/{project}/", headers={"accept": JSON})
            assert json_page.content == data
            on_disk = corpus / ".releasekit" / "simple" / project / "index.v1_json"
            assert on_disk.read_bytes() == data


def test_sidecars_are_written_at_first_request_and_never_served_stale(corpus: Path) -> None:
    settings = load_settings({"packages_dir": corpus, "authenticate": "."}, env={})
    wheel = "wheel_1-1.0-py3-none-any.whl"
    sidecar = corpus / ".releasekit" / "metadata" / f"{wheel}.metadata"
    with TestClient(create_app(LocalStorage(corpus), settings)) as client:
        page = client.get("/simple/wheel-1/", headers={"accept": JSON}).json()
        entry = next(f for f in page["files"] if f["filename"] == wheel)
        assert not sidecar.exists()
        first = client.get(f"/packages/{wheel}.metadata")
        assert first.status_code == 200
        assert hashlib.sha256(first.content).hexdigest() == entry["core-metadata"]["sha256"]
        assert sidecar.read_bytes() == first.content
    # A damaged or stale sidecar on disk is replaced from the archive, not served.
    sidecar.write_bytes(b"Name: evil\nVersion: 6.6.6\n")
    with TestClient(create_app(LocalStorage(corpus), settings)) as client:
        again = client.get(f"/packages/{wheel}.metadata")
        assert again.content == first.content
    assert sidecar.read_bytes() == first.content
    # No sidecar for an sdist without static metadata: 404, and nothing written.
    with TestClient(create_app(LocalStorage(corpus), settings)) as client:
        assert client.get("/packages/oldmeta-0.1.tar.gz.metadata").status_code == 404
    assert not (corpus / ".releasekit" / "metadata" / "oldmeta-0.1.tar.gz.metadata").exists()


def test_a_cache_of_the_previous_format_is_read(corpus: Path) -> None:
    catalogue = indexed(corpus)
    catalogue.save()
    state = corpus / ".releasekit" / "catalogue.json"
    data = json.loads(state.read_bytes())
    assert data["format"] == 2
    rows = [dict(zip(data["fields"], row, strict=True)) for row in data["files"]]
    state.write_text(json.dumps({"format": 1, "files": rows}))
    again = Catalogue(LocalStorage(corpus))
    again.load(index=False)
    assert again.files == catalogue.files
    assert again.progress().total == 2  # only the two unreadable files are tried again


def test_pages_kept_in_memory_are_bounded(corpus: Path) -> None:
    catalogue = indexed(corpus)
    pages = PageSet(catalogue, LocalStorage(corpus), keep=3)
    for project in catalogue.projects:
        assert pages.project(project) is not None
    assert len(pages.projects) == 3
    first = next(iter(catalogue.projects))
    again = pages.project(first)  # dropped, rendered again: the same bytes
    assert again is not None
    assert again["json"].body == render_project_json(first, catalogue.projects[first])


def test_a_readiness_probe_leaves_the_directory_unchanged(corpus: Path) -> None:
    """/ready proves an upload could start without touching the directory: a changed mtime
    made the poller rescan every file after each probe."""
    settings = load_settings({"packages_dir": corpus, "authenticate": "."}, env={})
    with TestClient(create_app(LocalStorage(corpus), settings)) as client:
        before = corpus.stat().st_mtime_ns  # the state directory exists now
        for _ in range(3):
            assert client.get("/ready").status_code == 200
        assert corpus.stat().st_mtime_ns == before
    (corpus / "ro").mkdir()
    (corpus / "ro").chmod(0o555)
    # root may write anywhere; the refusal is checked where it applies
    if os.geteuid() != 0:
        assert not LocalStorage(corpus / "ro").writable()


def test_metadata_of_a_file_replaced_behind_our_back_is_not_served(corpus: Path) -> None:
    """The sidecar is made from the archive at its first request: if the archive is no longer
    the one that was indexed, its metadata is refused, never served under the old hash."""
    settings = load_settings({"packages_dir": corpus, "authenticate": "."}, env={})
    app = create_app(LocalStorage(corpus), settings)  # no lifespan: no poller notices
    client = TestClient(app)
    wheel = "wheel_2-1.0-py3-none-any.whl"
    page = client.get("/simple/wheel-2/", headers={"accept": JSON}).json()
    assert any(f["filename"] == wheel and f["core-metadata"] for f in page["files"])
    other = corpus.parent / "other"
    other.mkdir()
    replacement = make_wheel(other, "wheel-2", "1.0", requires_python=">=3.99")
    (corpus / wheel).write_bytes(replacement.read_bytes())
    response = client.get(f"/packages/{wheel}.metadata")
    assert response.status_code == 404
    assert not (corpus / ".releasekit" / "metadata" / f"{wheel}.metadata").exists()
