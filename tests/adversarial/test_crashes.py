"""kill -9 at several points of an upload, then a restart (issue 8, defect 9).

After every kill the restarted server lists only complete files whose hashes match the bytes
served, shows no temp file (collected at start-up: no live process owns it), and takes the
same upload again.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.adversarial.conftest import Index, temp_files
from tests.server.conftest import make_wheel, wait_for

pytestmark = pytest.mark.e2e
BOUNDARY = "crash-boundary"


def request_bytes(filename: str, data: bytes) -> bytes:
    """A complete upload request, as a client would send it."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    body = head + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    return (
        f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
    ).encode() + body


@pytest.fixture(scope="module")
def big_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24 MB wheel: copying, hashing and checking it keeps a `.part` file for a while."""
    directory = tmp_path_factory.mktemp("big")
    return make_wheel(
        directory, "crashy", "1.0", payload=b"#" + os.urandom(12_000_000).hex().encode()
    )


@pytest.mark.parametrize("point", ["headers", "mid-body", "processing", "answered"])
def test_kill_during_an_upload_leaves_nothing_half_written(
    start_index: Callable[..., Index],
    packages: Path,
    big_wheel: Path,
    point: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = start_index(packages)
    data = big_wheel.read_bytes()
    raw = request_bytes(big_wheel.name, data)
    port = int(index.url.rsplit(":", 1)[1])
    seen_part = False
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        if point == "headers":
            sock.sendall(raw[: raw.index(b"\r\n\r\n") + 4])
        elif point == "mid-body":
            sock.sendall(raw[: len(raw) // 2])
        else:
            sock.sendall(raw)
            if point == "processing":
                # The body is in; kill while the upload's temp file is being written/checked.
                wait_for(lambda: bool(temp_files(packages)), timeout=60)
                seen_part = True
            else:
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        index.kill()
    left = temp_files(packages)
    restarted = start_index(packages)
    after_restart = temp_files(packages)
    listed = restarted.check_consistent()
    sha = hashlib.sha256(data).hexdigest()
    stored = (packages / big_wheel.name).exists()
    with capsys.disabled():
        print(
            f"\nkill -9 at {point}: temp files before restart {len(left)}, after {len(after_restart)};"
            f" file stored {stored}, listed {sorted(listed)}"
        )
    assert after_restart == []
    assert listed in ({}, {big_wheel.name: sha})
    if stored:  # committed files are complete: the rename is the commit point
        assert hashlib.sha256((packages / big_wheel.name).read_bytes()).hexdigest() == sha
    if point == "answered":
        assert listed == {big_wheel.name: sha}
    if point == "processing":
        assert seen_part
    assert restarted.upload(big_wheel.name, data).status_code == 200
    assert restarted.check_consistent() == {big_wheel.name: sha}


def test_temp_files_of_a_dead_upload_are_collected_while_running(
    start_index: Callable[..., Index], packages: Path
) -> None:
    index = start_index(packages, env={"RELEASEKIT_SERVER_TEMP_SWEEP_INTERVAL": "0.2"})
    # What a killed second worker leaves: a `.part` file nobody holds a lock on.
    orphan = packages / ".releasekit-upload-orphan.part"
    orphan.write_bytes(b"x" * 100_000)
    wait_for(lambda: not orphan.exists(), timeout=30)
    assert index.check_consistent() == {}
