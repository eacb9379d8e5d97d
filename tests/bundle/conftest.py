"""An upstream releasekit index (a real server process) with real wheels for several platforms.

Projects: fastcore (2.0 for three platforms, 2.1 for manylinux only), purefall (a manylinux
speed-up wheel and a pure-Python fallback), srconly (sdist only, with an in-tree build
backend so installers build it offline), winhelper (exists only for Windows, needed only there),
app (depends on them with a marker), oldlib (yanked later to make tombstones).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from releasekit.bundle.fetch import fetch_bundle
from releasekit.bundle.plan import plan_bundle, write_plan
from releasekit.bundle.sign import generate_key, sign_bundle
from releasekit.bundle.targets import Target, parse_target
from tests.server.conftest import launch_server, stop_server

TARGETS = (
    parse_target("manylinux_2_28_x86_64/3.11"),
    parse_target("musllinux_1_2_aarch64/3.12"),
    parse_target("win_amd64/3.13"),
)
REQUIREMENTS = ("app", "srconly", "oldlib<2")
JSON = "application/vnd.pypi.simple.v1+json"
BASE_TIME = 1_700_000_000  # 2023-11-14: upload times the bundle must carry across


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_bytes(name: str, version: str, tag: str, requires: tuple[str, ...] = ()) -> bytes:
    """A valid, installable wheel for one tag (the payload records the tag it was built for)."""
    info = f"{name}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    pure = tag.endswith("-none-any")
    files = {
        f"{name}/__init__.py": f'VERSION = "{version}"\nTAG = "{tag}"\n'.encode(),
        f"{info}/METADATA": ("\n".join(meta) + "\n\n").encode(),
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {str(pure).lower()}\nTag: {tag}\n".encode(),
    }
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, (2024, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


BACKEND = """
import base64, hashlib, zipfile
def get_requires_for_build_wheel(config_settings=None):
    return []
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = "srconly-0.5.dist-info"
    files = {"srconly/__init__.py": b"VERSION = '0.5'\\n",
             info + "/METADATA": b"Metadata-Version: 2.1\\nName: srconly\\nVersion: 0.5\\n\\n",
             info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    lines = []
    for p, d in files.items():
        h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
        lines.append(f"{p},sha256={h},{len(d)}")
    files[info + "/RECORD"] = ("\\n".join(lines + [info + "/RECORD,,"]) + "\\n").encode()
    name = "srconly-0.5-py3-none-any.whl"
    with zipfile.ZipFile(wheel_directory + "/" + name, "w") as z:
        for p, d in files.items():
            z.writestr(p, d)
    return name
"""


def sdist_bytes() -> bytes:
    """srconly 0.5: Metadata 2.2 (static, so the index serves PEP 658) and an in-tree backend."""
    base = "srconly-0.5"
    members = {
        f"{base}/PKG-INFO": b"Metadata-Version: 2.2\nName: srconly\nVersion: 0.5\n\n",
        f"{base}/pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        b'backend-path = ["."]\n\n[project]\nname = "srconly"\nversion = "0.5"\n',
        f"{base}/backend.py": BACKEND.encode(),
        f"{base}/srconly/__init__.py": b"VERSION = '0.5'\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in members.items():
            member = tarfile.TarInfo(path)
            member.size, member.mtime = len(data), BASE_TIME
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


APP_REQUIRES = ("fastcore>=2", "purefall", 'winhelper; sys_platform == "win32"')
WHEELS = [
    ("fastcore", "2.0", "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64", ()),
    ("fastcore", "2.0", "cp312-cp312-musllinux_1_2_aarch64", ()),
    ("fastcore", "2.0", "cp313-cp313-win_amd64", ()),
    ("fastcore", "2.0", "cp311-cp311-win_amd64", ()),
    ("fastcore", "2.1", "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64", ()),
    ("purefall", "1.0", "py3-none-any", ()),
    ("purefall", "1.0", "cp311-cp311-manylinux_2_28_x86_64", ()),
    ("winhelper", "1.0", "py3-none-win_amd64", ()),
    ("app", "1.0", "py3-none-any", APP_REQUIRES),
    ("oldlib", "1.0", "py3-none-any", ()),
]


def add_wheel(
    packages: Path, name: str, version: str, tag: str, requires: tuple[str, ...] = (), when: int = 0
) -> Path:
    """Write a wheel into a packages directory with upload time BASE_TIME + when."""
    path = packages / f"{name}-{version}-{tag}.whl"
    path.write_bytes(wheel_bytes(name, version, tag, requires))
    os.utime(path, (BASE_TIME + when, BASE_TIME + when))
    return path


def fill_upstream(packages: Path) -> None:
    for number, (name, version, tag, requires) in enumerate(WHEELS):
        add_wheel(packages, name, version, tag, requires, when=number * 60)
    sdist = packages / "srconly-0.5.tar.gz"
    sdist.write_bytes(sdist_bytes())
    os.utime(sdist, (BASE_TIME + 3600, BASE_TIME + 3600))


@dataclass
class Index:
    """A running `releasekit server run` process."""

    url: str
    packages: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def simple(self) -> str:
        return f"{self.url}/simple/"

    def page(self, project: str) -> dict[str, Any]:
        response = requests.get(f"{self.simple}{project}/", headers={"Accept": JSON}, timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def stop(self) -> None:
        stop_server(self.process)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.05)


def launch(packages: Path, log: Path, *args: str) -> Index:
    """Start `releasekit server run DIR -p 0 ARGS` and wait for its port and /health."""
    process, url = launch_server(packages, log, *args)
    return Index(url, packages, process, log)


@pytest.fixture
def start_index(tmp_path: Path) -> Iterator[Callable[..., Index]]:
    """Start indexes for one test; all are stopped (by their PID) at its end."""
    started: list[Index] = []

    def start(packages: Path, *args: str) -> Index:
        index = launch(packages, tmp_path / f"index-{len(started)}.log", *args)
        started.append(index)
        return index

    yield start
    for index in started:
        index.stop()


@dataclass(frozen=True)
class Built:
    """A module's shared upstream, its plan and a signed bundle (tests copy, never modify)."""

    upstream: Index
    plan: Path
    bundle: Path
    key: Path
    public: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Plan, fetch and sign the three-target bundle once per test module."""
    root = tmp_path_factory.mktemp("built")
    packages = root / "upstream"
    packages.mkdir()
    fill_upstream(packages)
    index = launch(packages, root / "upstream.log", "-a", ".")
    try:
        plan = plan_bundle(REQUIREMENTS, TARGETS, index.simple)
        write_plan(plan, root / "plan")
        fetch_bundle(plan, root / "bundle")
        public = generate_key(root / "keys" / "signer")
        sign_bundle(root / "bundle", root / "keys" / "signer")
        yield Built(index, root / "plan", root / "bundle", root / "keys" / "signer", public)
    finally:
        index.stop()


@pytest.fixture
def upstream(tmp_path: Path, start_index: Callable[..., Index]) -> Index:
    packages = tmp_path / "upstream"
    packages.mkdir()
    fill_upstream(packages)
    return start_index(packages, "-a", ".")


def target_by_platform(prefix: str) -> Target:
    return next(t for t in TARGETS if t.platform.startswith(prefix))


from tests.server.conftest import users  # noqa: E402, F401  (the htpasswd fixture, reused)
