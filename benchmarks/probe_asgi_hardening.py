"""Does an ASGI server keep the connection hardening of issue 8? uvicorn (ours) vs granian.

For each server, on 127.0.0.1 with a free port and the index app from `create_app`, it checks:
idle connections past the descriptor limit (300 idle under `ulimit -n 256`, then 5 real
requests), a slowloris header trickle (closed within the header deadline?), a body that stops
arriving, and whether a `Server` header is sent. Prints one table; every wait has a deadline and
every server is stopped by PID.

    python benchmarks/probe_asgi_hardening.py
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2

IDLE = 300
NOFILE = "256"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def argv_for(server: str, port: int) -> list[str]:
    limit = ["prlimit", f"--nofile={NOFILE}:{NOFILE}", "--"]
    if server == "uvicorn":
        return [*limit, sys.executable, "-m", "releasekit", "server", "run", "-p", str(port)]
    return [
        *limit,
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--port",
        str(port),
        "--http1-header-read-timeout",
        "10000",  # releasekit's default header deadline (10 s)
        "releasekit.server.process:app_from_env",
    ]


@contextlib.contextmanager
def server(name: str, packages: Path) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, RELEASEKIT_SERVER_PACKAGES_DIR=str(packages))
    env["RELEASEKIT_SERVER_AUTHENTICATE"] = "."
    log = packages.parent / f"{name}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            argv_for(name, port), stdout=sink, stderr=sink, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx2.TransportError):
                if httpx2.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{name} did not start: {log.read_text()[-500:]}")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _connect(url: str) -> socket.socket:
    port = int(url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def idle_lockout(url: str) -> str:
    """Real requests answered while IDLE silent connections are open (of 5, with 10 s each)."""
    idle = []
    with contextlib.suppress(OSError):
        for _ in range(IDLE):
            idle.append(_connect(url))
    answered = 0
    started = time.monotonic()
    for _ in range(5):
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(f"{url}/health", timeout=10).status_code == 200:
                answered += 1
    for sock in idle:
        sock.close()
    return f"{answered}/5 in {time.monotonic() - started:.1f} s"


def trickle(url: str, payload: bytes, step: bytes, limit: float = 40.0) -> str:
    """Seconds until the server closes a connection that sends `step` every 0.5 s."""
    sock = _connect(url)
    sock.sendall(payload)
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if _closed(sock):
            sock.close()
            return f"closed after {time.monotonic() - started:.1f} s"
        with contextlib.suppress(OSError):
            sock.sendall(step)
        time.sleep(0.5)
    sock.close()
    return f"open after {limit:.0f} s"


def main() -> int:
    body = (
        b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
        b"\r\nContent-Length: 100000\r\n\r\n:action=file_upload&"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("uvicorn", "granian"):
            packages = Path(tmp) / name / "packages"
            packages.mkdir(parents=True)
            print(f"probing {name} ...", file=sys.stderr, flush=True)
            with server(name, packages) as url:
                header = httpx2.get(f"{url}/health").headers.get("server", "(none)")
                lockout = idle_lockout(url)
                slowloris = trickle(url, b"GET /health HTTP/1.1\r\n", b"X")
                stalled = trickle(url, body, b"")
            rows.append((name, lockout, slowloris, stalled, header))
    print(
        "| server | 300 idle conns, fd limit 256: /health answered | slowloris header trickle "
        "| body stops arriving | Server header |"
    )
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
