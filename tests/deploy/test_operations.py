"""Operations: `make pypi-server-start` never takes another server's answer for its own."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_seed_commands import background, make

__all__ = ["background"]  # the fixture, imported for pytest
pytestmark = pytest.mark.e2e


class _Healthy(http.server.BaseHTTPRequestHandler):
    """Another service on the port that answers 200 to everything, /health included."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def foreign_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_start_is_not_fooled_by_another_server_on_the_port(
    tmp_path: Path, background: list[Path], foreign_server: int
) -> None:
    data = tmp_path / "data"
    background.append(data)
    result = make(
        tmp_path, f"PYPI_DATA_DIR={data}", f"PYPI_PORT={foreign_server}", "pypi-server-start"
    )
    assert result.returncode != 0, result.stdout
    assert "index running" not in result.stdout
    assert "the index exited during start-up" in result.stderr
    assert "in use by another process" in result.stderr
    assert not (data / "run" / "server.pid").exists()
    assert not (data / "run" / "server.url").exists()
