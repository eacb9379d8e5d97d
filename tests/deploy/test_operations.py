"""Operations: `make pypi-server-start` never takes another server's answer for its own."""

from __future__ import annotations

import http.server
import shutil
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from releasekit.server.settings import load_settings
from tests.server.conftest import make_wheel
from tests.test_seed_commands import ADMIN_PASSWORD, background, make, script

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


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_backup_and_restore_carry_settings_and_tls_with_progress(tmp_path: Path) -> None:
    data = tmp_path / "data"
    setup = script(
        tmp_path,
        "setup-private-pypi.sh",
        "--tls",
        "pypi.internal",
        str(data),
        PYPI_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    assert setup.returncode == 0, setup.stderr
    (data / "metrics-token").write_text("m" * 32 + "\n")
    (data / "metrics-token").chmod(0o600)
    files = 2100  # more than one batch of 2000, so progress lines show
    for number in range(files):
        make_wheel(data / "packages", f"lib{number % 70}", f"1.{number // 70}")
    archive = tmp_path / "backup.tar.gz"
    backup = script(tmp_path, "backup-packages.sh", str(data), str(archive))
    assert backup.returncode == 0, backup.stderr
    assert f"copying {files + 6} files" in backup.stderr
    assert "copied 2000/" in backup.stderr and "hashed 2000/" in backup.stderr
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds the TLS key
    restored = tmp_path / "restored"
    restore = script(tmp_path, "restore-packages.sh", str(archive), str(restored))
    assert restore.returncode == 0, restore.stderr
    for step in ("checking the members", "verifying every file", "reindex", "settings.toml now"):
        assert step in restore.stderr, step
    for name in ("htpasswd", "htpasswd.roles.toml", "metrics-token", "tls/cert.pem", "tls/key.pem"):
        assert (restored / name).read_bytes() == (data / name).read_bytes(), name
    assert stat.S_IMODE((restored / "tls" / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((restored / "metrics-token").stat().st_mode) == 0o600
    settings = load_settings(config_file=restored / "settings.toml", env={})
    assert settings.packages_dir == (restored / "packages").resolve()
    assert settings.passwords == (restored / "htpasswd").resolve()
    assert sorted(p.name for p in (restored / "packages").glob("*.whl")) == sorted(
        p.name for p in (data / "packages").glob("*.whl")
    )
