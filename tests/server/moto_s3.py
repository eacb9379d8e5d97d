"""Fixtures: moto's S3 in server mode (its own process, 127.0.0.1, OS-assigned port) and buckets."""

from __future__ import annotations

import select
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_DEADLINE = 60.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class MotoS3:
    """A running moto S3 endpoint."""

    endpoint: str
    pid: int

    def create_bucket(self, name: str | None = None) -> str:
        """A new empty bucket (moto does not check signatures, so a plain PUT will do)."""
        bucket = name or f"rk-{uuid.uuid4().hex[:20]}"
        request = urllib.request.Request(f"{self.endpoint}/{bucket}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        return bucket

    def env(self) -> dict[str, str]:
        """The AWS variables that point a client at this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }


def start_moto() -> tuple[subprocess.Popen[str], MotoS3]:
    """Start the launcher and read its port back within a deadline."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.server.moto_launcher"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            port = process.stdout.readline().strip()
            if port.isdigit():
                return process, MotoS3(f"http://127.0.0.1:{port}", process.pid)
            break
        if process.poll() is not None:
            break
    process.kill()
    process.wait()
    process.stdout.close()
    pytest.fail(f"moto did not start within {START_DEADLINE:.0f} s")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    process, moto = start_moto()
    try:
        yield moto
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the launcher stops at EOF
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()
