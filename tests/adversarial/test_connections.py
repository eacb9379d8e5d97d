"""Hostile connections against a real server process (issue 8, defects 11, 13 and 14).

Idle connections used to hold descriptors forever (no timer runs until a first response), so a
few hundred of them under a lowered descriptor limit refused every other client; a client
hanging up mid-upload logged an ASGI traceback; every answer said `Server: uvicorn`.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.adversarial.server_process import RunningIndex, running_index, wait_until

pytestmark = pytest.mark.e2e

IDLE = 300  # connections that never send a byte
LIMIT = (256, 256)  # the server's descriptor limit for the exhaustion test


def closed_by_server(connection: socket.socket) -> bool:
    """True once the server closed `connection` (EOF or reset), without blocking."""
    connection.setblocking(False)
    try:
        return connection.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


@contextlib.contextmanager
def idle_connections(index: RunningIndex, count: int) -> Iterator[list[socket.socket]]:
    sockets = [index.connect() for _ in range(count)]
    try:
        yield sockets
    finally:
        for connection in sockets:
            connection.close()


def test_idle_connections_under_a_low_descriptor_limit_never_lock_out_clients(
    tmp_path: Path,
) -> None:
    with running_index(tmp_path, open_files=LIMIT) as index:
        with idle_connections(index, IDLE):
            # More idle connections than the server has descriptors: a real client still gets in.
            for _ in range(5):
                response = httpx2.get(f"{index.url}/health", timeout=10)
                assert response.status_code == 200
            assert httpx2.get(f"{index.url}/simple/", timeout=10).status_code == 200
        log = index.log_text()
    assert "open-file limit 256: at most 192 connections" in log
    warnings = [line for line in log.splitlines() if "idle the longest" in line]
    assert len(warnings) == 1, "one warning per interval, not one per connection closed"
    assert "Traceback" not in log and "out of system resource" not in log


def test_connections_that_never_finish_their_headers_are_closed(tmp_path: Path) -> None:
    with (
        running_index(tmp_path, "--header-timeout", "1") as index,
        idle_connections(index, 20) as silent,
    ):
        slow = index.connect()
        slow.sendall(b"GET /health HTTP/1.1\r\n")
        deadline = time.monotonic() + 30
        while not closed_by_server(slow):  # slowloris: a header byte now and then
            assert time.monotonic() < deadline, "a trickling client was never closed"
            with contextlib.suppress(OSError):
                slow.sendall(b"X")
            time.sleep(0.2)
        slow.close()
        wait_until(lambda: all(closed_by_server(c) for c in silent), 30, "idle closed")


def test_the_header_deadline_does_not_cut_a_slow_body_or_keep_alive(tmp_path: Path) -> None:
    with running_index(tmp_path, "--header-timeout", "1", "-a", ".") as index:
        with httpx2.Client(base_url=index.url) as client:  # one keep-alive connection
            for _ in range(3):
                assert client.get("/health").status_code == 200
        connection = index.connect()
        connection.sendall(
            b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
            b"urlencoded\r\nContent-Length: 20\r\n\r\n"
        )
        time.sleep(1.5)  # longer than the header deadline: the headers were on time
        connection.sendall(b":action=file_upload&")
        answer = connection.recv(65536)
        connection.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_a_body_that_stops_arriving_is_cut_and_a_steady_one_is_not(tmp_path: Path) -> None:
    head = (
        b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
        b"\r\nContent-Length: 20\r\n\r\n"
    )
    with running_index(tmp_path, "--body-timeout", "1", "-a", ".") as index:
        steady = index.connect()
        steady.sendall(head)
        for chunk in (b":action=", b"file_", b"upload&"):  # gaps shorter than the limit
            time.sleep(0.5)
            steady.sendall(chunk)
        answer = steady.recv(65536)
        steady.close()
        stalled = index.connect()
        stalled.sendall(head + b":action=")  # and nothing more
        wait_until(lambda: closed_by_server(stalled), 30, "the stalled upload closed")
        stalled.close()
        wait_until(lambda: "disconnected during POST" in index.log_text(), 30, "the info line")
        log = index.log_text()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert "Traceback" not in log


def test_the_soft_descriptor_limit_is_raised_to_the_hard_limit(tmp_path: Path) -> None:
    with running_index(tmp_path, open_files=(256, 512)) as index:
        log = index.log_text()
    assert "open-file limit 512: at most 448 connections" in log


def test_a_client_hanging_up_mid_upload_is_one_info_line(tmp_path: Path) -> None:
    with running_index(tmp_path, "-a", ".") as index:
        connection = index.connect()
        connection.sendall(
            b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            b"boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; "
            b'name=":action"\r\n\r\nfile_upload\r\n'
        )
        connection.close()  # the request is read or queued already: either way a disconnect
        wait_until(lambda: "disconnected during POST" in index.log_text(), 30, "the info line")
        assert httpx2.get(f"{index.url}/health").status_code == 200
        log = index.log_text()
    lines = [line for line in log.splitlines() if "disconnected" in line]
    assert lines == [lines[0]] and " INFO " in lines[0]
    assert "client 127.0.0.1 disconnected during POST /legacy/" in lines[0]
    assert "Traceback" not in log and "ERROR" not in log
    assert "status=499" in log


@pytest.mark.parametrize(("args", "sent"), [((), False), (("--server-header",), True)])
def test_the_server_header_is_off_unless_asked_for(
    tmp_path: Path, args: tuple[str, ...], sent: bool
) -> None:
    with running_index(tmp_path, *args) as index:
        response = httpx2.get(f"{index.url}/health")
    assert ("server" in response.headers) is sent
