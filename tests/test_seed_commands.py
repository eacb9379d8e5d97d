"""The seed guide's commands, each run for real: make targets, scripts/*.py and scripts/*.sh."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest

from releasekit.build import Distributions
from releasekit.publish import publish
from releasekit.server.settings import load_settings
from tests.conftest import GitRepo
from tests.test_publish import (
    PASSWORD,
    USER,
    Index,
    builds,
    config_for,
    free_port,
    start_index,
)
from tests.test_release_cli import released, rk

__all__ = ["builds", "start_index"]  # fixtures, imported for pytest

ROOT = Path(__file__).resolve().parent.parent
MK = ROOT / "mk" / "releasekit.mk"
SCRIPTS = ROOT / "scripts"
RELEASEKIT = Path(sys.executable).parent / "releasekit"
ADMIN_PASSWORD = "Adm1n-Zq8-s3cret"


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def make(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`make -f mk/releasekit.mk ARGS` in `cwd`, with this venv's releasekit."""
    return run(
        ["make", "--no-print-directory", "-f", str(MK), f"RELEASEKIT={RELEASEKIT}", *args], cwd
    )


def script(cwd: Path, name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable] if name.endswith(".py") else []
    return run([*command, str(SCRIPTS / name), *args], cwd, RELEASEKIT=str(RELEASEKIT), **env)


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `root` with its bytes and mtime: what a refused command must not touch."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def alive(pid: int) -> bool:
    """Running and not a zombie (an orphaned server may linger as one until init reaps it)."""
    state = subprocess.run(["ps", "-p", str(pid), "-o", "stat="], capture_output=True, text=True)
    return state.stdout.strip()[:1] not in ("", "Z")


@pytest.fixture
def background(tmp_path: Path) -> Iterator[list[Path]]:
    """Data directories whose make-started index must be stopped at teardown, whatever happened."""
    data_dirs: list[Path] = []
    yield data_dirs
    for data in data_dirs:
        pid_file = data / "run" / "server.pid"
        if pid_file.exists():
            make(tmp_path, f"PYPI_DATA_DIR={data}", "pypi-server-stop")
        if pid_file.exists():  # the target failed: stop it by its pid ourselves
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def start_server(cwd: Path, data: Path, background: list[Path]) -> tuple[str, int]:
    """`make pypi-server-start` on a free port; returns the URL and the pid."""
    background.append(data)
    port = free_port()
    started = make(cwd, f"PYPI_DATA_DIR={data}", f"PYPI_PORT={port}", "pypi-server-start")
    assert started.returncode == 0, started.stdout + started.stderr
    url = f"http://127.0.0.1:{port}/"
    assert f"index running at {url}" in started.stdout
    return url, int((data / "run" / "server.pid").read_text())


def listing(url: str, project: str) -> dict[str, tuple[str, object]]:
    """filename -> (sha256, yanked) from the index's PEP 691 JSON page."""
    request = urllib.request.Request(
        f"{url}simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        page = json.load(response)
    return {f["filename"]: (f["hashes"]["sha256"], f.get("yanked", False)) for f in page["files"]}


def sha256_of(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.name.endswith((".whl", ".tar.gz"))
    }


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELEASEKIT_USERNAME", USER)
    monkeypatch.setenv("RELEASEKIT_PASSWORD", PASSWORD)


def with_remote(project: GitRepo, tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    project.git("remote", "add", "origin", str(remote))
    project.git("push", "--quiet", "-u", "origin", "main")
    return remote


def remote_tags(remote: Path) -> list[str]:
    return subprocess.run(
        ["git", "tag", "--list"], cwd=remote, capture_output=True, text=True, check=True
    ).stdout.split()


# -- make targets --------------------------------------------------------------------------------


@pytest.mark.e2e
def test_make_publish_targets_in_a_consumer_makefile(
    project: GitRepo, start_index: Callable[..., Index], credentials: None, tmp_path: Path
) -> None:
    index = start_index()
    project.commit(
        "build: release targets",
        {
            ".gitignore": "dist/\n",
            "Makefile": f"RELEASEKIT := {RELEASEKIT}\nPRIVATE_PYPI_URL := {index.url}\n"
            "PUBLISH_FLAGS := --no-isolation\nRELEASE_FLAGS := --no-isolation\n"
            f"include {MK}\n",
        },
    )
    project.commit("feat: greet")
    assert rk(project, "release").exit_code == 0  # v0.1.0, tagged but not yet published
    assert released(project) == ["v0.1.0"]

    first = run(["make", "publish-private"], project.path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(index.stored()) == [
        "example_lib-0.1.0-py3-none-any.whl",
        "example_lib-0.1.0.tar.gz",
    ]
    same = run(["make", "publish-private"], project.path)  # a reproducible rebuild: idempotent
    assert same.returncode == 0 and "published nothing new" in same.stdout, same.stderr
    project.commit("docs: a comment", {"example_lib/extra.py": "# changes the built files\n"})
    stored = index.stored()
    again = run(["make", "publish-private"], project.path)
    assert again.returncode != 0
    assert "example-lib 0.1.0 is already on" in again.stderr and "--force" in again.stderr
    assert index.stored() == stored

    bumped = run(["make", "publish-private-bump-patch"], project.path)
    assert bumped.returncode == 0, bumped.stdout + bumped.stderr
    assert released(project) == ["v0.1.0", "v0.1.1"]
    assert "example_lib-0.1.1-py3-none-any.whl" in index.stored()

    remote = with_remote(project, tmp_path)
    project.commit("feat: greet in French")
    release = run(["make", "version-release"], project.path)
    assert release.returncode == 0, release.stdout + release.stderr
    assert "example_lib-0.2.0.tar.gz" in index.stored()
    assert remote_tags(remote) == ["v0.2.0"]  # the earlier tags were made without --push-tag
    assert project.git("rev-parse", "origin/main") == project.head()
    for result in (first, again, bumped, release):
        assert PASSWORD not in result.stdout + result.stderr


def test_make_targets_say_what_to_do_without_releasekit(project: GitRepo) -> None:
    before = project.snapshot()
    for target in (
        "publish-private",
        "publish-private-bump-minor",
        "version-release",
        "pypi-server-start",
    ):
        result = run(
            ["make", "-f", str(MK), "RELEASEKIT=/nonexistent/releasekit", target], project.path
        )
        assert result.returncode != 0
        assert "releasekit command '/nonexistent/releasekit' not found" in result.stderr
        assert "RELEASEKIT=/path/to/releasekit" in result.stderr
    assert project.snapshot() == before
    assert not (project.path / ".releasekit-data").exists()


@pytest.mark.parametrize("include_first", [True, False])
def test_the_include_keeps_the_default_goal(tmp_path: Path, include_first: bool) -> None:
    own = "build:\n\t@echo the own default goal of the library\n"
    include = f"include {MK}\n"
    (tmp_path / "Makefile").write_text(include + own if include_first else own + include)
    result = run(["make", "--no-print-directory"], tmp_path)
    assert result.returncode == 0 and result.stdout == "the own default goal of the library\n"


@pytest.mark.e2e
def test_pypi_server_targets(tmp_path: Path, background: list[Path]) -> None:
    data = tmp_path / "data"
    url, pid = start_server(tmp_path, data, background)
    assert alive(pid)

    twice = make(tmp_path, f"PYPI_DATA_DIR={data}", f"PYPI_PORT={free_port()}", "pypi-server-start")
    assert twice.returncode != 0
    assert f"already running (pid {pid}" in twice.stderr
    assert (data / "run" / "server.pid").read_text().strip() == str(pid)

    status = make(tmp_path, f"PYPI_DATA_DIR={data}", "pypi-server-status")
    assert status.returncode == 0 and f"running: pid {pid}, {url}" in status.stdout
    health = make(tmp_path, f"PYPI_DATA_DIR={data}", "pypi-server-health")
    assert health.returncode == 0 and f"healthy: {url}health" in health.stdout
    logs = make(tmp_path, f"PYPI_DATA_DIR={data}", "pypi-server-logs")
    assert logs.returncode == 0 and 'path="/health"' in logs.stdout

    stopped = make(tmp_path, f"PYPI_DATA_DIR={data}", "pypi-server-stop")
    assert stopped.returncode == 0 and f"stopped the index (pid {pid})" in stopped.stdout
    assert not alive(pid) and not (data / "run" / "server.pid").exists()
    down = make(tmp_path, f"PYPI_DATA_DIR={data}", f"PYPI_URL={url}", "pypi-server-health")
    assert down.returncode != 0 and f"no healthy answer from {url}health" in down.stderr
    assert "not running" in make(tmp_path, f"PYPI_DATA_DIR={data}", "pypi-server-status").stdout

    gone = subprocess.Popen(["true"])
    gone.wait()
    (data / "run" / "server.pid").write_text(f"{gone.pid}\n")
    stale = make(tmp_path, f"PYPI_DATA_DIR={data}", "pypi-server-stop")
    assert stale.returncode == 0 and "removed stale pid file" in stale.stdout
    assert not (data / "run" / "server.pid").exists()


@pytest.mark.e2e
def test_pypi_server_start_reports_a_port_in_use(tmp_path: Path, background: list[Path]) -> None:
    data = tmp_path / "data"
    background.append(data)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = make(tmp_path, f"PYPI_DATA_DIR={data}", f"PYPI_PORT={port}", "pypi-server-start")
    assert result.returncode != 0
    assert "the index exited during start-up" in result.stderr
    assert "port" in result.stderr
    assert not (data / "run" / "server.pid").exists()


# -- scripts -------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_deploy_private(
    project: GitRepo, start_index: Callable[..., Index], credentials: None
) -> None:
    index = start_index(overwrite=True)  # so that --force may replace rebuilt files
    repo = ["--repository", index.url, "--no-isolation"]
    project.commit("feat: greet", {".gitignore": "dist/\n"})
    assert rk(project, "release").exit_code == 0
    assert rk(project, "build", "--no-isolation").exit_code == 0

    skipped = script(project.path, "deploy-private.py", "--skip-build", *repo)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert index.stored() == sha256_of(project.path / "dist")  # exactly the files already built

    bumped = script(project.path, "deploy-private.py", "--bump", "patch", *repo)
    assert bumped.returncode == 0, bumped.stdout + bumped.stderr
    assert released(project) == ["v0.1.0", "v0.1.1"]
    assert "example_lib-0.1.1.tar.gz" in index.stored()

    project.commit("docs: a comment", {"example_lib/extra.py": "# changes the built files\n"})
    stored = index.stored()
    refused = script(project.path, "deploy-private.py", *repo)
    assert refused.returncode == 1 and "example-lib 0.1.1 is already on" in refused.stderr
    assert index.stored() == stored
    forced = script(project.path, "deploy-private.py", "--force", *repo)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert index.stored() == sha256_of(project.path / "dist")

    before = project.snapshot()
    both = script(project.path, "deploy-private.py", "--bump", "minor", "--skip-build")
    assert both.returncode == 2 and "--skip-build cannot be combined with --bump" in both.stderr
    dry = script(project.path, "deploy-private.py", "--dry-run", "--force", *repo)
    assert (
        dry.stdout
        == f"would run: releasekit publish --force --no-isolation --repository {index.url}\n"
    )
    assert project.snapshot() == before and index.stored() == sha256_of(project.path / "dist")


def test_version_manager(project: GitRepo, tmp_path: Path) -> None:
    remote = with_remote(project, tmp_path)
    project.commit("feat: greet")
    pushed = script(project.path, "version-manager.py", "release", "auto", "--push-tag")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert remote_tags(remote) == ["v0.1.0"]

    notes = script(project.path, "version-manager.py", "changelog", "0.1.0")
    assert notes.returncode == 0 and "greet" in notes.stdout

    project.commit("fix: a typo")
    bumped = script(project.path, "version-manager.py", "bump", "minor", "--prerelease-type", "rc")
    assert bumped.returncode == 0, bumped.stdout + bumped.stderr
    assert 'version = "0.2.0rc1"' in (project.path / "pyproject.toml").read_text()
    assert '__version__ = "0.2.0rc1"' in (project.path / "example_lib" / "__init__.py").read_text()


def test_setup_private_pypi(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = script(tmp_path, "setup-private-pypi.sh", str(data), PYPI_ADMIN_PASSWORD=ADMIN_PASSWORD)
    assert first.returncode == 0, first.stderr
    assert ADMIN_PASSWORD not in first.stdout + first.stderr  # given by the admin: never echoed
    assert all((data / sub).is_dir() for sub in ("packages", "logs", "run"))
    (line,) = (data / "htpasswd").read_text().splitlines()
    name, digest = line.split(":", 1)
    assert name == "admin" and digest.startswith("$2b$12$")
    assert bcrypt.checkpw(ADMIN_PASSWORD.encode(), digest.encode())
    assert tomllib.loads((data / "htpasswd.roles.toml").read_text())["roles"] == {"admin": "admin"}
    assert (data / "htpasswd").stat().st_mode & 0o777 == 0o600
    settings = load_settings(config_file=data / "settings.toml", env={})
    assert settings.packages_dir == (data / "packages").resolve()
    assert settings.passwords == data / "htpasswd"

    before = tree(data)
    second = script(tmp_path, "setup-private-pypi.sh", str(data))
    assert second.returncode == 0 and "nothing changed" in second.stdout
    assert "already in" in second.stdout and tree(data) == before

    other = tmp_path / "other"
    generated = script(tmp_path, "setup-private-pypi.sh", "--user", "ops", str(other))
    shown = generated.stdout.split("store it now): ", 1)[1].split()[0]
    digest = (other / "htpasswd").read_text().split(":", 1)[1].strip()
    assert bcrypt.checkpw(shown.encode(), digest.encode())

    refused = script(tmp_path, "setup-private-pypi.sh", "--port", "http", str(tmp_path / "bad"))
    assert refused.returncode == 1 and "--port must be a number" in refused.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_setup_private_pypi_tls(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = script(tmp_path, "setup-private-pypi.sh", "--tls", "pypi.internal", str(data))
    assert made.returncode == 0, made.stderr
    cert, key = data / "tls" / "cert.pem", data / "tls" / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    text = run(["openssl", "x509", "-in", str(cert), "-noout", "-text"], tmp_path).stdout
    assert "CN = pypi.internal" in text and "DNS:pypi.internal" in text
    before = tree(data)
    again = script(tmp_path, "setup-private-pypi.sh", "--tls", "pypi.internal", str(data))
    assert "certificate" in again.stdout and "nothing changed" in again.stdout
    assert tree(data) == before


@pytest.mark.e2e
def test_backup_and_restore_serve_the_same_index(
    tmp_path: Path,
    builds: dict[str, Distributions],
    background: list[Path],
) -> None:
    data = tmp_path / "data"
    setup = script(tmp_path, "setup-private-pypi.sh", str(data), PYPI_ADMIN_PASSWORD=ADMIN_PASSWORD)
    assert setup.returncode == 0, setup.stderr
    url, _ = start_server(tmp_path, data, background)
    env = {"RELEASEKIT_USERNAME": "admin", "RELEASEKIT_PASSWORD": ADMIN_PASSWORD}
    for key in ("v1", "v11"):
        publish(
            config_for(url),
            builds[key],
            repository=None,
            force=False,
            progress=lambda _: None,
            env=env,
        )
    packages = data / "packages"
    yank = run(
        [
            str(RELEASEKIT),
            "server",
            "yank",
            "tiny-lib",
            "1.0.0",
            "--reason",
            "broken",
            "-D",
            str(packages),
        ],
        tmp_path,
    )
    assert yank.returncode == 0, yank.stderr
    token = run(
        [
            str(RELEASEKIT),
            "server",
            "token",
            "create",
            "--owner",
            "admin",
            "--packages-dir",
            str(packages),
            "-P",
            str(data / "htpasswd"),
        ],
        tmp_path,
    )
    assert token.returncode == 0, token.stderr
    deadline = time.monotonic() + 10  # the running index sees the yank at its next poll
    while (original := listing(url, "tiny-lib"))["tiny_lib-1.0.0-py3-none-any.whl"][1] != "broken":
        assert time.monotonic() < deadline, "the index did not pick up the yank within 10 s"
        time.sleep(0.05)

    archive = tmp_path / "backup.tar.gz"
    backup = script(
        tmp_path, "backup-packages.sh", str(data), str(archive)
    )  # the index keeps running
    assert backup.returncode == 0, backup.stderr
    assert archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as opened:
        manifest = opened.extractfile("releasekit-backup/MANIFEST.sha256")
        assert manifest is not None
        lines = manifest.read().decode().splitlines()
    for filename, digest in sha256_of(packages).items():
        assert f"{digest}  packages/{filename}" in lines

    restored = tmp_path / "restored"
    result = script(tmp_path, "restore-packages.sh", str(archive), str(restored))
    assert result.returncode == 0, result.stdout + result.stderr
    assert sha256_of(restored / "packages") == sha256_of(packages)
    assert (restored / "htpasswd").read_bytes() == (data / "htpasswd").read_bytes()
    tokens = "packages/.releasekit/tokens.json"
    assert (restored / tokens).read_bytes() == (data / tokens).read_bytes()
    copy_url, _ = start_server(tmp_path, restored, background)
    assert listing(copy_url, "tiny-lib") == original

    before = tree(restored / "packages")  # the running copy writes its log meanwhile
    again = script(tmp_path, "restore-packages.sh", str(archive), str(restored))
    assert again.returncode == 1 and "is not empty; refusing" in again.stderr
    assert tree(restored / "packages") == before

    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(damaged, "w:gz") as target:
        for member in source.getmembers():
            payload = source.extractfile(member) if member.isfile() else None
            if member.name.endswith(".whl") and payload is not None:
                body = payload.read()[:-1] + b"x"
                member.size = len(body)
                payload = io.BytesIO(body)
            target.addfile(member, payload)
    bad = script(tmp_path, "restore-packages.sh", str(damaged), str(tmp_path / "fresh"))
    assert bad.returncode == 1 and "do not match its manifest" in bad.stderr
    assert not (tmp_path / "fresh").exists()
