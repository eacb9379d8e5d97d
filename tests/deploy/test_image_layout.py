"""deploy/Dockerfile without an engine: the same layout built by hand and started the image's way.

The final stage's ENV, USER, WORKDIR, VOLUME, ENTRYPOINT and HEALTHCHECK are read from the
Dockerfile itself; the wheel is built from exactly the files the image COPYs, installed with the
server extra into a fresh venv (the image's /opt/releasekit), and started as the image's user.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, ROOT, build_dists, get
from tests.test_publish import free_port

pytestmark = pytest.mark.e2e


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    last = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last + 1 :]


def copied_sources(dockerfile: Path) -> list[str]:
    """What the wheel stage COPYs from the build context."""
    text = dockerfile.read_text()
    return [
        source
        for args in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE)
        for source in args.split()[:-1]
    ]


@pytest.fixture(scope="module")
def image_venv() -> Iterator[Path]:
    """Stages 1 and 2 by hand: the wheel from the COPYed files, then a venv with [server]."""
    base = Path(tempfile.mkdtemp(prefix="releasekit-image-"))
    base.chmod(0o755)  # traversable by the image's user, as /opt is in the image
    context = base / "src"
    context.mkdir()
    for source in copied_sources(DEPLOY / "Dockerfile"):
        origin = ROOT / source.rstrip("/")
        if origin.is_dir():
            shutil.copytree(
                origin, context / origin.name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(origin, context / origin.name)
    dist = base / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run(
        [*pip, "wheel", "--no-cache-dir", "--no-deps", "--wheel-dir", str(dist), str(context)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("releasekit-*.whl")
    venv = base / "opt-releasekit"
    subprocess.run([base_python(), "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--quiet",
            "--disable-pip-version-check",
            f"{wheel}[server]",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    yield venv
    shutil.rmtree(base, ignore_errors=True)


def base_python() -> str:
    """The image's base Python stands in for python:3.x-slim: one the image's user can run.

    As root the test's own interpreter may live under /root (0700), so the system one is used.
    """
    system = Path("/usr/bin/python3")
    if os.geteuid() == 0 and system.exists():
        return str(system)
    return sys.executable


def test_image_layout_serves_as_its_non_root_user(image_venv: Path, tmp_path: Path) -> None:
    stage = final_stage(DEPLOY / "Dockerfile")
    settings = dict(stage)
    assert settings["ENTRYPOINT"] and "HEALTHCHECK" in settings and "VOLUME" in settings
    user, _, group = settings["USER"].partition(":")
    assert user != "0" and user != "root"
    data = tmp_path / "data"
    packages = data / "packages"
    assert json.loads(settings["VOLUME"]) == ["/data/packages"]
    packages.mkdir(parents=True)
    for dist in build_dists(tmp_path, "1.0.0"):  # a volume that already holds packages
        shutil.copy(dist, packages / dist.name)
    port = free_port()
    env = {"HOME": str(data), "LANG": "C.UTF-8"}
    for keyword, args in stage:
        if keyword == "ENV":
            for pair in shlex.split(args):
                key, _, raw = pair.partition("=")
                env[key] = raw
    env["PATH"] = (
        env["PATH"].replace("/opt/releasekit", str(image_venv)).replace("$PATH", "/usr/bin:/bin")
    )
    assert env["RELEASEKIT_SERVER_PACKAGES_DIR"] == "/data/packages"
    env["RELEASEKIT_SERVER_PACKAGES_DIR"] = str(packages)
    assert env["RELEASEKIT_SERVER_HOST"] == "0.0.0.0"  # noqa: S104 (the image's; loopback here)
    env["RELEASEKIT_SERVER_HOST"] = "127.0.0.1"
    env["RELEASEKIT_SERVER_PORT"] = str(port)
    entrypoint = json.loads(settings["ENTRYPOINT"])
    healthcheck = json.loads(settings["HEALTHCHECK"].split(" CMD ", 1)[1])
    identity: dict[str, object] = {}
    if os.geteuid() == 0:
        uid, gid = int(user), int(group or user)
        os.chown(data, uid, gid)
        for path in packages.parent.rglob("*"):
            os.chown(path, uid, gid)
        identity = {"user": uid, "group": gid, "extra_groups": []}
    log = (tmp_path / "index.log").open("wb")
    process = subprocess.Popen(
        entrypoint,
        env=env,
        cwd=data,
        stdout=log,
        stderr=subprocess.STDOUT,
        **identity,  # type: ignore[call-overload]
    )
    log.close()
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while get(url + "health")[0] != 200:
            assert process.poll() is None, (tmp_path / "index.log").read_text()
            assert time.monotonic() < deadline, "the image's entrypoint never became healthy"
            time.sleep(0.1)
        status_line = next(
            line
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
            if line.startswith("Uid:")
        )
        if identity:
            assert status_line.split()[1] == user  # really running as the image's user
        check = subprocess.run(healthcheck, env=env, cwd=data, check=False, timeout=30, **identity)  # type: ignore[call-overload]
        assert check.returncode == 0
        page = get(url + "simple/tiny-lib/", "text/html")
        assert page[0] == 200 and b"tiny_lib-1.0.0-py3-none-any.whl" in page[2]
        ready = json.loads(get(url + "ready")[2])
        assert ready["status"] == "ready"  # the volume is writable by the image's user
    finally:
        process.terminate()
        process.wait(timeout=20)
    # The healthcheck fails once the index is gone, as the engine would see it.
    dead = subprocess.run(
        healthcheck, env=env, cwd=data, check=False, timeout=30, capture_output=True
    )
    assert dead.returncode != 0
