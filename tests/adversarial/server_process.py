"""A real `releasekit server run` process on 127.0.0.1 with an OS-assigned port, for hostile clients.

Kept out of conftest.py on purpose (that file belongs to the upload half of the suite).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

_WITH_LIMIT = (
    "import resource, runpy, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, ({}, {})); "
    "module = sys.argv.pop(1); sys.argv[0] = module; "
    "runpy.run_module(module, run_name='__main__', alter_sys=True)"
)
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class RunningIndex:
    """The process, its port and its log file."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        """A raw TCP connection to the index."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


@contextmanager
def running_index(
    workdir: Path, *args: str, open_files: tuple[int, int] | None = None
) -> Iterator[RunningIndex]:
    """Start the index over `workdir/packages` with `args`; `open_files` = (soft, hard) limit."""
    packages = workdir / "packages"
    packages.mkdir(exist_ok=True)
    log = workdir / f"server-{time.monotonic_ns()}.log"

    command = [sys.executable, "-m", "releasekit", "server", "run", str(packages)]
    if open_files is not None:
        # Lower the limit in the child itself, then run the server module as `-m` would.
        command[1:3] = ["-c", _WITH_LIMIT.format(*open_files), "releasekit"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "-p", "0", "-i", "127.0.0.1", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        found: list[int] = []

        def listening() -> bool:
            match = _LISTENING.search(log.read_text(errors="replace"))
            if match:
                found.append(int(match.group(1)))
            assert process.poll() is None, f"the index exited:\n{log.read_text()}"
            return bool(match)

        wait_until(listening, 30, "the index listening")
        index = RunningIndex(process, found[0], log)
        wait_until(
            lambda: httpx2.get(f"{index.url}/health").status_code == 200, 30, "/health answering"
        )
        yield index
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
