"""Fixtures of the hostile-input suite: the in-process index fixtures of tests/server, and a
real `releasekit server run` process on 127.0.0.1 (OS-assigned port) that a test may kill."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from releasekit.server.localstore import TEMP_PREFIX
from tests.server.conftest import (  # noqa: F401  (pytest finds fixtures by name)
    client,
    dists,
    launch_server,
    make_client,
    open_settings,
    packages,
    stop_server,
    users,
)

JSON = "application/vnd.pypi.simple.v1+json"


@dataclass
class Index:
    """A server process, its URL and its packages directory."""

    url: str
    process: subprocess.Popen[bytes]
    packages: Path
    log: Path

    def upload(self, filename: str, data: bytes, timeout: float = 60) -> httpx2.Response:
        return httpx2.post(
            f"{self.url}/legacy/",
            data={":action": "file_upload", "protocol_version": "1"},
            files={"content": (filename, data, "application/octet-stream")},
            timeout=timeout,
        )

    def listed(self) -> dict[str, str]:
        """filename -> sha256 of every file every project page lists."""
        found = {}
        root = httpx2.get(f"{self.url}/simple/", headers={"accept": JSON}).json()
        for project in root["projects"]:
            page = httpx2.get(f"{self.url}/simple/{project['name']}/", headers={"accept": JSON})
            if page.status_code == 200:
                found.update({f["filename"]: f["hashes"]["sha256"] for f in page.json()["files"]})
        return found

    def check_consistent(self) -> dict[str, str]:
        """Every listed hash and ETag names the bytes served; no temp file is visible."""
        listed = self.listed()
        for filename, sha256 in listed.items():
            served = httpx2.get(f"{self.url}/packages/{filename}")
            assert hashlib.sha256(served.content).hexdigest() == sha256, filename
            assert served.headers["etag"] == f'"{sha256}"', filename
        return listed

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_server(self.process)


def temp_files(directory: Path) -> list[str]:
    """Upload temp files left in a packages directory."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX))


@pytest.fixture
def start_index(tmp_path: Path) -> Iterator[Callable[..., Index]]:
    """Start `releasekit server run PACKAGES -p 0 -a . ARGS...`; wait for its port and /health."""
    started: list[Index] = []

    def start(directory: Path, *args: str, env: dict[str, str] | None = None) -> Index:
        log = tmp_path / f"server-{len(started)}.log"
        process, url = launch_server(directory, log, "-a", ".", *args, env=env)
        index = Index(url, process, directory, log)
        started.append(index)
        return index

    yield start
    for index in started:
        index.stop()
