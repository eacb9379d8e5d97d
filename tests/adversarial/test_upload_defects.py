"""Issue 8's upload and storage defects, one reproduction each (in process, real files)."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from releasekit.server.localstore import LocalStorage
from releasekit.server.upload import UploadRefused, receive_upload
from tests.adversarial.hostile import (
    long_header_sdist,
    many_entries_wheel,
    sdist_with,
    tar_header,
    wheel_with,
)
from tests.server.conftest import Dists, make_wheel, refused, upload_form, wait_for

WHEEL = "alpha-1.0-py3-none-any.whl"
JSON = "application/vnd.pypi.simple.v1+json"


# Defect 1: any malformed form field is a 400 problem, never a 500.
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sha256_digest", "é", "sha256_digest"),
        ("md5_digest", "é" * 32, "md5_digest"),
        ("blake2_256_digest", "٣" * 64, "blake2_256_digest"),
        ("sha256_digest", "٣" * 64, "sha256_digest"),
        ("sha256_digest", "g" * 64, "sha256_digest"),
        ("version", "١.٠", "version"),
        ("name", "al\x00pha", "name"),
        ("name", "ålpha", "name"),
        ("filetype", "bdist_whéel", "filetype"),
        ("protocol_version", "١", "protocol_version"),
        ("pyversion", "x" * 300, "pyversion"),
    ],
)
def test_malformed_fields_are_400_problems(
    client: TestClient, packages: Path, dists: Dists, field: str, value: str, message: str
) -> None:
    refused(client, packages, dists.path(WHEEL), 400, message, **{field: value})


def test_a_non_ascii_content_length_is_not_a_500(client: TestClient, dists: Dists) -> None:
    data, files = upload_form(dists.path(WHEEL))
    request = client.build_request("POST", "/legacy/", data=data, files=files)
    request.headers["content-length"] = "²"
    response = client.send(request)
    assert response.status_code < 500


# Defect 12: a filename carrying a path is refused, never stripped to its last component.
@pytest.mark.parametrize(
    "filename", ["C:\\x\\alpha-1.0-py3-none-any.whl", "\\\\host\\share\\" + WHEEL, "a/" + WHEEL]
)
def test_filenames_with_a_path_are_refused(
    client: TestClient, packages: Path, dists: Dists, filename: str
) -> None:
    refused(
        client,
        packages,
        dists.path(WHEEL),
        400,
        "is not a plain distribution filename",
        filename=filename,
    )


# Defect 5: archive bombs are refused from bounded reads.
@pytest.mark.parametrize(
    ("typeflag", "what"), [(b"L", "long name"), (b"K", "long link name"), (b"x", "PAX header")]
)
def test_huge_tar_headers_are_refused_before_reading_them(
    client: TestClient, packages: Path, tmp_path: Path, typeflag: bytes, what: str
) -> None:
    bomb = long_header_sdist(tmp_path / "alpha-1.0.tar.gz", 8 * 1024 * 1024, typeflag=typeflag)
    refused(client, packages, bomb, 400, what)


@pytest.fixture(scope="session")
def entry_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200,000-entry wheel (the issue's case)."""
    return many_entries_wheel(tmp_path_factory.mktemp("entries") / WHEEL, 200_000)


def test_zip_entry_count_is_bounded(client: TestClient, packages: Path, entry_bomb: Path) -> None:
    refused(client, packages, entry_bomb, 400, "more than 100000 entries")


def test_a_zip64_wheel_under_the_entry_bound_is_accepted(
    client: TestClient, tmp_path: Path
) -> None:
    wheel = many_entries_wheel(tmp_path / WHEEL, 70_000)  # over 65,535: Zip64 end records
    data, files = upload_form(wheel)
    assert client.post("/legacy/", data=data, files=files).status_code == 200


def test_a_huge_declared_member_is_refused_from_its_header(
    client: TestClient, packages: Path, tmp_path: Path
) -> None:
    sdist = tmp_path / "alpha-1.0.tar.gz"
    with gzip.open(sdist, "wb") as out:
        out.write(tar_header(b"alpha-1.0/big", 6 * 1024**3, b"0") + bytes(4096))
    refused(client, packages, sdist, 400, "of 6442450944 bytes: refused as an archive bomb")


def test_tar_member_count_is_bounded(client: TestClient, packages: Path, tmp_path: Path) -> None:
    members = [(f"alpha-1.0/f{n}", b"") for n in range(100_001)]
    bomb = sdist_with(tmp_path / "alpha-1.0.tar.gz", members)
    refused(client, packages, bomb, 400, "more than 100000 members")


# Defect 6: dangerous member paths are refused with the member named.
@pytest.mark.parametrize(
    "member", ["../../x.py", "/etc/cron.d/x", "C:/x.py", "alpha/../../x.py", "alpha\\..\\x.py"]
)
def test_wheel_members_outside_the_archive_are_refused(
    client: TestClient, packages: Path, tmp_path: Path, member: str
) -> None:
    wheel = wheel_with(tmp_path / WHEEL, {member: b"print('owned')\n"})
    body = refused(client, packages, wheel, 400, "unsafe member")
    assert repr(member) in str(body["detail"])


def test_encrypted_zip_members_are_refused(
    client: TestClient, packages: Path, tmp_path: Path
) -> None:
    """Found by the hostile-upload generator (seed 2026, case 21017): a 500 before."""
    wheel = tmp_path / WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("alpha-1.0.dist-info/METADATA", "Name: alpha\nVersion: 1.0\n\n")
    data = bytearray(wheel.read_bytes())  # zipfile never writes the flag: set it by hand
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.index(signature) + flags_at] |= 0x1
    wheel.write_bytes(bytes(data))
    refused(client, packages, wheel, 400, "encrypted member 'alpha-1.0.dist-info/METADATA'")


def test_wheel_symlinks_are_refused(client: TestClient, packages: Path, tmp_path: Path) -> None:
    wheel = wheel_with(tmp_path / WHEEL, {}, symlinks={"alpha/link": "/etc/passwd"})
    refused(client, packages, wheel, 400, "'alpha/link'")


@pytest.mark.parametrize(
    ("members", "links", "named"),
    [
        ([("alpha-1.0/../../x.py", b"x")], [], "alpha-1.0/../../x.py"),
        ([("/tmp/x.py", b"x")], [], "/tmp/x.py"),
        ([], [("alpha-1.0/evil", "/etc/passwd", tarfile.SYMTYPE)], "alpha-1.0/evil"),
        ([], [("alpha-1.0/evil", "../../etc", tarfile.SYMTYPE)], "alpha-1.0/evil"),
        ([], [("alpha-1.0/evil", "../x", tarfile.LNKTYPE)], "alpha-1.0/evil"),
        ([], [("alpha-1.0/dev", "", tarfile.CHRTYPE)], "alpha-1.0/dev"),
    ],
)
def test_sdist_members_outside_the_archive_are_refused(
    client: TestClient,
    packages: Path,
    tmp_path: Path,
    members: list[tuple[str, bytes]],
    links: list[tuple[str, str, bytes]],
    named: str,
) -> None:
    sdist = sdist_with(tmp_path / "alpha-1.0.tar.gz", members, links)
    refused(client, packages, sdist, 400, repr(named))


def test_an_sdist_whose_pkg_info_is_outside_is_refused(
    client: TestClient, packages: Path, tmp_path: Path
) -> None:
    sdist = sdist_with(tmp_path / "alpha-1.0.tar.gz", [], pkg_info="../PKG-INFO")
    refused(client, packages, sdist, 400, "'../PKG-INFO'")


def test_links_inside_an_sdist_are_accepted(client: TestClient, tmp_path: Path) -> None:
    sdist = sdist_with(
        tmp_path / "alpha-1.0.tar.gz",
        [("alpha-1.0/a.txt", b"a")],
        [
            ("alpha-1.0/b.txt", "a.txt", tarfile.SYMTYPE),
            ("alpha-1.0/c.txt", "alpha-1.0/a.txt", tarfile.LNKTYPE),
        ],
    )
    data, files = upload_form(sdist)
    assert client.post("/legacy/", data=data, files=files).status_code == 200


def _upload_in_threads(
    storage: LocalStorage, client: TestClient, paths: list[Path], overwrite: bool
) -> list[str]:
    """Run receive_upload for each path at once; 'created', 'identical' or the refusal code."""
    state = client.app.state.index  # type: ignore[attr-defined]
    barrier = threading.Barrier(len(paths))
    results: list[str] = [""] * len(paths)

    def one(n: int) -> None:
        barrier.wait()
        with paths[n].open("rb") as handle:
            try:
                outcome = receive_upload(
                    storage,
                    state.catalogue,
                    {},
                    paths[n].name,
                    handle,
                    max_size=1 << 30,
                    overwrite=overwrite,
                )
                results[n] = "created" if outcome.created else "identical"
            except UploadRefused as exc:
                results[n] = exc.code

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# Defect 7: identical concurrent uploads all succeed.
def test_identical_concurrent_uploads_all_succeed(
    client: TestClient, packages: Path, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "alpha", "1.0", payload=b"#" + os.urandom(400_000).hex().encode())
    storage = client.app.state.index.storage  # type: ignore[attr-defined]
    for _ in range(3):
        results = _upload_in_threads(storage, client, [wheel] * 10, overwrite=False)
        assert sorted(set(results)) in (["created", "identical"], ["identical"]), results
        assert results.count("created") <= 1
        (packages / wheel.name).unlink()
        client.app.state.index.catalogue.remove([wheel.name])  # type: ignore[attr-defined]


# Defect 8: racing overwrites leave a record that describes the bytes served.
def test_racing_overwrites_leave_the_record_of_the_bytes_served(
    make_client: Callable[..., TestClient], packages: Path, tmp_path: Path
) -> None:
    client = make_client(overwrite=True)
    wheels = []
    for n in range(8):
        (tmp_path / str(n)).mkdir()
        payload = b"#" + os.urandom(200_000 + n).hex().encode()
        wheels.append(make_wheel(tmp_path / str(n), "alpha", "1.0", payload=payload))
    storage = client.app.state.index.storage  # type: ignore[attr-defined]
    catalogue = client.app.state.index.catalogue  # type: ignore[attr-defined]
    for _ in range(3):
        results = _upload_in_threads(storage, client, wheels, overwrite=True)
        assert set(results) <= {"created", "identical"}, results
        served = hashlib.sha256(client.get(f"/packages/{WHEEL}").content).hexdigest()
        record = catalogue.files[WHEEL]
        assert record.sha256 == served
        assert client.get(f"/packages/{WHEEL}").headers["etag"] == f'"{served}"'
        stat = (packages / WHEEL).stat()
        assert (record.size, record.mtime_ns) == (stat.st_size, stat.st_mtime_ns)


# Defect 9: temp files of dead uploads are collected at start-up and periodically.
def test_temp_files_of_dead_uploads_are_collected(
    make_client: Callable[..., TestClient], packages: Path
) -> None:
    dead = packages / ".releasekit-upload-dead.part"
    dead.write_bytes(b"x" * 1000)
    client = make_client(temp_sweep_interval=0.1)
    assert not dead.exists()
    storage = client.app.state.index.storage  # type: ignore[attr-defined]
    upload = storage.new_upload()  # owned by a live upload: must survive sweeps
    upload.write(b"live")
    (live,) = packages.glob(".releasekit-upload-*.part")
    later = packages / ".releasekit-upload-later.part"
    later.write_bytes(b"y")
    wait_for(lambda: not later.exists())
    assert live.exists()
    upload.abort()
    assert not live.exists()


# Defect 10 (the parts that need no full disk): /ready and a metric report free space.
def test_ready_reports_low_disk_and_a_metric_exposes_free_space(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(min_free_space="1000000G")
    response = client.get("/ready")
    assert response.status_code == 503
    assert "free" in response.json()["detail"]
    metrics = client.get("/metrics").text
    assert "releasekit_disk_free_bytes" in metrics
    assert make_client(min_free_space="1K").get("/ready").status_code == 200
