"""A stub upstream index for the upstream tests: each path answers with a handler.

Only for what a real releasekit index cannot be made to do (lie about hashes, drip, loop);
the honest upstream of the end-to-end tests is a real `releasekit server run`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

JSON = "application/vnd.pypi.simple.v1+json"
OLD = "2020-01-01T00:00:00Z"
Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Stub:
    """An upstream that answers each path with a handler, and records what it was asked."""

    url: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [path for path, _ in self.seen]


def reply(
    status: int, body: bytes = b"", kind: str = JSON, headers: dict[str, str] | None = None
) -> Handler:
    def handle(request: BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        request.send_header("content-type", kind)
        request.send_header("content-length", str(len(body)))
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(body)

    return handle


def page(files: list[dict[str, object]], version: str = "1.1") -> Handler:
    return reply(200, json.dumps({"meta": {"api-version": version}, "files": files}).encode())


def entry(filename: str, data: bytes, url: str | None = None, **extra: object) -> dict[str, object]:
    found: dict[str, object] = {
        "filename": filename,
        "url": url or f"/files/{filename}",
        "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
        "size": len(data),
        "upload-time": OLD,
    }
    found.update(extra)
    return found


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()

    class Handle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            state.routes.get(self.path, reply(404, b"{}"))(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
