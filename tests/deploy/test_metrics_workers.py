"""`--workers 2`: /metrics sums over the workers, whichever of them answers the scrape."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.conftest import build_dists, get, twine_upload
from tests.test_publish import Index

pytestmark = pytest.mark.e2e
DOWNLOADS = 30


def sample(body: str, name: str) -> float | None:
    match = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_counters_add_up_over_two_workers(
    start_index: Callable[..., Index], tmp_path: Path
) -> None:
    index = start_index(extra=("--workers", "2"))
    twine_upload(index.url, build_dists(tmp_path, "3.0.0"))
    wheel = next(p.name for p in index.packages.iterdir() if p.name.endswith(".whl"))
    # A worker sees the upload on its next poll of the directory; until then it answers 404,
    # which is no download. Each download is retried until it is served.
    deadline = time.monotonic() + 30
    for _ in range(DOWNLOADS):  # a new connection each: the kernel spreads them over workers
        while get(index.url + "packages/" + wheel)[0] != 200:
            assert time.monotonic() < deadline, "a worker never saw the uploaded file"
    # Gauges read at scrape time (files stored) are the answering worker's view of the directory:
    # they agree once every worker has indexed the upload.
    deadline, in_a_row = time.monotonic() + 30, 0
    while in_a_row < 10:
        body = get(index.url + "metrics")[2].decode()
        in_a_row = in_a_row + 1 if sample(body, "releasekit_files_stored") == 2.0 else 0
        assert time.monotonic() < deadline, "the workers never agreed on the files stored"
    series = 'releasekit_downloads_total{project="tiny-lib",version="3.0.0"}'
    uploads = 'releasekit_uploads_total{project="tiny-lib",result="stored"}'
    seen = set()
    for _ in range(20):  # each scrape may land on either worker: all must agree
        body = get(index.url + "metrics")[2].decode()
        seen.add((sample(body, series), sample(body, uploads)))
        assert sample(body, "process_resident_memory_bytes") is not None
        assert sample(body, "releasekit_files_stored") == 2.0
    assert seen == {(float(DOWNLOADS), 2.0)}
