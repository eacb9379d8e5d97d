"""Core Metadata 2.5 (PEP 794: Import-Name, Import-Namespace) is accepted on upload, by the
real twine too, and served unchanged as PEP 658 metadata (sdists included: 2.5 >= 2.2)."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from tests.adversarial.server_process import running_index
from tests.server.conftest import upload_form

BIN = Path(sys.executable).parent
METADATA = (
    "Metadata-Version: 2.5\nName: demo25\nVersion: 1.0\nSummary: PEP 794 fields\n"
    "Import-Name: demo25\nImport-Name: demo25._native; private\nImport-Namespace: demo25ns\n\n"
)


def wheel_25(directory: Path) -> Path:
    info = "demo25-1.0.dist-info"
    files = {
        "demo25/__init__.py": b"",
        f"{info}/METADATA": METADATA.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [
        f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
        for p, d in files.items()
    ]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    target = directory / "demo25-1.0-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return target


def sdist_25(directory: Path) -> Path:
    target = directory / "demo25-1.0.tar.gz"
    with tarfile.open(target, "w:gz") as archive:
        for path, data in {
            "demo25-1.0/PKG-INFO": METADATA.encode(),
            "demo25-1.0/pyproject.toml": b'[project]\nname = "demo25"\nversion = "1.0"\n',
        }.items():
            member = tarfile.TarInfo(path)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return target


def test_metadata_25_is_accepted_and_served(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client()
    for dist, filetype in ((wheel_25(tmp_path), "bdist_wheel"), (sdist_25(tmp_path), "sdist")):
        data, files = upload_form(
            dist, name="demo25", version="1.0", metadata_version="2.5", filetype=filetype
        )
        answer = client.post("/legacy/", data=data, files=files)
        assert answer.status_code == 200, answer.text
        served = client.get(f"/packages/{dist.name}.metadata")
        assert served.status_code == 200
        assert served.content == METADATA.encode()


def test_twine_uploads_metadata_25(tmp_path: Path) -> None:
    dists = tmp_path / "dists"
    dists.mkdir()
    wheel = wheel_25(dists)
    with running_index(tmp_path, "-a", ".") as index:
        sent = subprocess.run(
            [str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
             "--repository-url", f"{index.url}/legacy/", "-u", "x", "-p", "x", str(wheel)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
    assert (tmp_path / "packages" / wheel.name).read_bytes() == wheel.read_bytes()
