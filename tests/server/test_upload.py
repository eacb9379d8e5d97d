"""Uploads in process: what is stored, and every refusal with its status, message and no trace."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.server.conftest import (
    Dists,
    Users,
    make_wheel,
    refused,
    snapshot,
    upload_form,
    wait_for,
)

JSON = "application/vnd.pypi.simple.v1+json"
WHEEL = "alpha-1.0-py3-none-any.whl"


def listed(client: TestClient, project: str) -> list[str]:
    response = client.get(f"/simple/{project}/", headers={"accept": JSON})
    return [f["filename"] for f in response.json()["files"]] if response.status_code == 200 else []


def test_upload_stores_the_file_and_lists_it(
    client: TestClient, packages: Path, dists: Dists
) -> None:
    path = dists.path(WHEEL)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    blake = hashlib.blake2b(path.read_bytes(), digest_size=32).hexdigest()
    data, files = upload_form(
        path,
        name="Alpha",
        version="1.0",
        filetype="bdist_wheel",
        sha256_digest=digest,
        blake2_256_digest=blake,
        md5_digest=hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest(),
    )
    response = client.post("/legacy/", data=data, files=files)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] is True
    assert (packages / WHEEL).read_bytes() == path.read_bytes()
    assert listed(client, "alpha") == [WHEEL]
    assert sorted(p.name for p in packages.iterdir()) == [".releasekit", WHEEL]


@pytest.mark.parametrize("endpoint", ["/", "/legacy/", "/legacy"])
def test_every_upload_endpoint_answers_directly(
    client: TestClient, dists: Dists, endpoint: str
) -> None:
    data, files = upload_form(dists.path("alpha-1.0.tar.gz"))
    response = client.post(endpoint, data=data, files=files, follow_redirects=False)
    assert response.status_code == 200  # never a redirect: twine aborts on those


def test_identical_reupload_is_200_and_different_bytes_409(
    client: TestClient, packages: Path, dists: Dists, tmp_path: Path
) -> None:
    data, files = upload_form(dists.path(WHEEL))
    assert client.post("/", data=data, files=files).status_code == 200
    again = client.post("/", data=data, files=files)
    assert again.status_code == 200
    assert again.json()["stored"] is False
    other = make_wheel(tmp_path, "alpha", "1.0", payload=b"# changed\n")
    refused(client, packages, other, 409, "File already exists")


def test_overwrite_flag_replaces_a_file(
    make_client: Callable[..., TestClient], packages: Path, dists: Dists, tmp_path: Path
) -> None:
    client = make_client(overwrite=True)
    data, files = upload_form(dists.path(WHEEL))
    client.post("/", data=data, files=files)
    other = make_wheel(tmp_path, "alpha", "1.0", payload=b"# changed\n")
    data, files = upload_form(other)
    assert client.post("/", data=data, files=files).status_code == 200
    assert (packages / WHEEL).read_bytes() == other.read_bytes()
    entry = client.get("/simple/alpha/", headers={"accept": JSON}).json()["files"][0]
    assert entry["hashes"]["sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("sha256_digest", "sha256_digest supplied"),
        ("blake2_256_digest", "blake2_256_digest supplied"),
        ("md5_digest", "md5_digest supplied"),
    ],
)
def test_digest_mismatch_is_refused(
    client: TestClient, packages: Path, dists: Dists, field: str, message: str
) -> None:
    digest = "0" * (32 if field == "md5_digest" else 64)
    refused(client, packages, dists.path(WHEEL), 400, message, **{field: digest})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "alphabet"}, "the form name 'alphabet' does not match"),
        ({"version": "1.0.0"}, "the form version '1.0.0' does not match"),
        ({"version": "not a version"}, "the form field version is malformed"),
        ({"filetype": "sdist"}, "filetype 'sdist' does not match"),
        ({"protocol_version": "2"}, "protocol_version '2' is not supported"),
        ({":action": "frobnicate"}, "unknown :action"),
        ({":action": "doc_upload"}, "not supported"),
    ],
)
def test_form_disagreements_are_refused(
    client: TestClient, packages: Path, dists: Dists, fields: dict[str, str], message: str
) -> None:
    status = 410 if fields.get(":action") == "doc_upload" else 400
    refused(client, packages, dists.path(WHEEL), status, message, **fields)


def test_metadata_disagreeing_with_the_filename_is_refused(
    client: TestClient, packages: Path, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    wrong_name = make_wheel(tmp_path / "a", "alpha", "1.0", metadata_name="omega")
    refused(client, packages, wrong_name, 400, "the METADATA name 'omega' does not match")
    wrong_version = make_wheel(tmp_path / "b", "alpha", "1.0", metadata_version="2.0")
    refused(client, packages, wrong_version, 400, "the METADATA version '2.0' does not match")


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("../alpha-1.0-py3-none-any.whl", "is not a plain distribution filename"),
        ("/etc/alpha-1.0-py3-none-any.whl", "is not a plain distribution filename"),
        ("..\\alpha-1.0-py3-none-any.whl", "is not a plain distribution filename"),
        ("alpha-1.0-py3-none-any\x07.whl", "is not a plain distribution filename"),
        (".alpha-1.0-py3-none-any.whl", "is not a plain distribution filename"),
        ("alpha-1.0.exe", "unsupported extension"),
        ("alpha-1.0.egg", "unsupported extension"),
        ("alpha-py3-none-any.whl", "naming rules"),
    ],
)
def test_bad_filenames_are_refused(
    client: TestClient, packages: Path, dists: Dists, filename: str, message: str
) -> None:
    refused(client, packages, dists.path(WHEEL), 400, message, filename=filename)


def test_oversize_uploads_are_refused(
    make_client: Callable[..., TestClient], packages: Path, tmp_path: Path
) -> None:
    client = make_client(max_upload_size="2K")
    big = make_wheel(tmp_path, "alpha", "1.0", payload=b"#" + os.urandom(4000).hex().encode())
    refused(client, packages, big, 413, "larger than the limit of 2048 bytes")
    (tmp_path / "huge").mkdir()
    huge = make_wheel(tmp_path / "huge", "alpha", "1.0", payload=os.urandom(1_200_000))
    refused(client, packages, huge, 413, "larger than this server's limit of 2048 bytes")


@pytest.fixture(scope="session")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel whose 100 MiB of zeros compress to ~100 KB (over Warehouse's 50x past 64 MiB)."""
    path = make_wheel(tmp_path_factory.mktemp("bomb"), "alpha", "1.0")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("alpha/zeros.bin", bytes(100 * 1024 * 1024))
    return path


def test_zip_bomb_is_refused(client: TestClient, packages: Path, zip_bomb: Path) -> None:
    refused(client, packages, zip_bomb, 400, "refused as an archive bomb")


def test_tar_bomb_is_refused(client: TestClient, packages: Path, tmp_path: Path) -> None:
    bomb = tmp_path / "alpha-1.0.tar.gz"
    with tarfile.open(bomb, "w:gz") as archive:
        member = tarfile.TarInfo("alpha-1.0/zeros.bin")
        member.size = 100 * 1024 * 1024
        archive.addfile(member, io.BytesIO(bytes(member.size)))
    refused(client, packages, bomb, 400, "refused as an archive bomb")


def test_archives_that_do_not_open_are_refused(
    client: TestClient, packages: Path, tmp_path: Path
) -> None:
    fake_wheel = tmp_path / WHEEL
    fake_wheel.write_bytes(b"PK\x03\x04 this is not a zip")
    refused(client, packages, fake_wheel, 400, "is not a readable zip archive")
    fake_sdist = tmp_path / "alpha-1.0.tar.gz"
    fake_sdist.write_bytes(b"\x1f\x8b not gzip at all")
    refused(client, packages, fake_sdist, 400, "is not a readable .tar.gz archive")
    no_metadata = tmp_path / "sub" / WHEEL
    no_metadata.parent.mkdir()
    with zipfile.ZipFile(no_metadata, "w") as archive:
        archive.writestr("alpha/__init__.py", "")
    refused(client, packages, no_metadata, 400, "holds 0 <name>-<version>.dist-info/METADATA")


def test_missing_content_and_broken_forms_are_refused(client: TestClient, packages: Path) -> None:
    before = snapshot(packages)
    response = client.post("/legacy/", data={":action": "file_upload", "protocol_version": "1"})
    assert response.status_code == 400
    assert "no file in its `content` field" in response.json()["detail"]
    broken = client.post(
        "/legacy/",
        content=b"--xyz\r\nnot a part",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code == 400
    assert broken.headers["content-type"] == "application/problem+json"
    assert snapshot(packages) == before


def test_uploads_need_credentials_when_update_is_authenticated(
    make_client: Callable[..., TestClient], packages: Path, dists: Dists, users: Users
) -> None:
    client = make_client(authenticate="update", passwords=users.passwords)
    before = snapshot(packages)
    data, files = upload_form(dists.path(WHEEL))
    anonymous = client.post("/legacy/", data=data, files=files)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Basic realm="releasekit"')
    assert anonymous.headers["content-type"] == "application/problem+json"
    reader = client.post("/legacy/", data=data, files=files, auth=users.credentials["reader"])
    assert reader.status_code == 403
    assert snapshot(packages) == before
    uploader = client.post("/legacy/", data=data, files=files, auth=users.credentials["ci"])
    assert uploader.status_code == 200


def test_remove_pkg_is_for_admins(
    make_client: Callable[..., TestClient], packages: Path, dists: Dists, users: Users
) -> None:
    client = make_client(authenticate="update", passwords=users.passwords)
    for name in (WHEEL, "alpha-1.0.tar.gz", "alpha-1.1-py3-none-any.whl"):
        data, files = upload_form(dists.path(name))
        client.post("/", data=data, files=files, auth=users.credentials["ci"])
    form = {":action": "remove_pkg", "name": "Alpha", "version": "1.0"}
    before = snapshot(packages)
    denied = client.post("/", data=form, auth=users.credentials["ci"])
    assert denied.status_code == 403
    assert snapshot(packages) == before
    missing = client.post("/", data={**form, "version": "9.9"}, auth=users.credentials["root"])
    assert missing.status_code == 404
    removed = client.post("/", data=form, auth=users.credentials["root"])
    assert removed.status_code == 200
    assert sorted(removed.json()["removed"]) == ["alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz"]
    assert listed(client, "alpha") == ["alpha-1.1-py3-none-any.whl"]
    assert not (packages / ".releasekit" / "metadata" / f"{WHEEL}.metadata").exists()


def test_reads_need_credentials_only_when_configured(
    make_client: Callable[..., TestClient], packages: Path, dists: Dists, users: Users
) -> None:
    (packages / WHEEL).write_bytes(dists.path(WHEEL).read_bytes())
    locked = make_client(authenticate="update,download,list", passwords=users.passwords)
    assert locked.get("/simple/").status_code == 401
    assert locked.get("/simple/alpha/").headers["www-authenticate"].startswith("Basic")
    assert locked.get(f"/packages/{WHEEL}").status_code == 401
    assert locked.get("/health").status_code == 200  # never authenticated
    assert "Sign in" in locked.get("/").text
    reader = users.credentials["reader"]
    assert locked.get("/simple/alpha/", auth=reader).status_code == 200
    assert locked.get(f"/packages/{WHEEL}", auth=reader).status_code == 200
    open_reads = make_client(authenticate="update", passwords=users.passwords)
    assert open_reads.get("/simple/alpha/").status_code == 200
    assert open_reads.get(f"/packages/{WHEEL}").status_code == 200


def test_an_upload_is_visible_in_a_second_app_on_the_same_directory(
    make_client: Callable[..., TestClient], dists: Dists
) -> None:
    """Two workers share the directory: the other one picks the new file up by polling."""
    first, second = make_client(), make_client()
    data, files = upload_form(dists.path(WHEEL))
    first.post("/", data=data, files=files)
    wait_for(lambda: listed(second, "alpha") == [WHEEL])


def test_remove_pkg_of_files_not_indexed_yet(
    make_client: Callable[..., TestClient], packages: Path, dists: Dists, users: Users
) -> None:
    for name in (WHEEL, "alpha-1.1-py3-none-any.whl"):
        (packages / name).write_bytes(dists.path(name).read_bytes())  # copied in by hand
    client = make_client(authenticate="update", passwords=users.passwords, poll_interval=60)
    form = {":action": "remove_pkg", "name": "alpha", "version": "1.0"}
    removed = client.post("/", data=form, auth=users.credentials["root"])
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed"] == [WHEEL]
    assert not (packages / WHEEL).exists()
    assert listed(client, "alpha") == ["alpha-1.1-py3-none-any.whl"]
