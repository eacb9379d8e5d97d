"""Prometheus metrics with a per-app registry (two apps in one process never share counters).

With `--workers N` every worker counts in its own process, so `run` points all of them at one
`PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode): counters and histograms are
summed over the workers at scrape time, whichever worker answers, and process metrics are the
sum over the live workers (plus their parent), so `/metrics` never alternates between workers.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from releasekit.server.catalogue import Catalogue

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class _StoredCollector(Collector):
    """Files and bytes stored, read from the catalogue at scrape time (nothing to keep in sync)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        files = list(self.catalogue.files.values())
        count = GaugeMetricFamily("releasekit_files_stored", "Distribution files in the index")
        count.add_metric([], len(files))
        size = GaugeMetricFamily("releasekit_bytes_stored", "Bytes of distribution files stored")
        size.add_metric([], sum(r.size for r in files))
        projects = GaugeMetricFamily("releasekit_projects", "Projects in the index")
        projects.add_metric([], len(self.catalogue.projects))
        yield from (count, size, projects)


def _fixed(pid: int) -> Callable[[], int]:
    return lambda: pid


class WorkersProcessCollector(Collector):
    """process_* summed over the worker processes that wrote to the multiprocess directory.

    Memory, CPU and descriptors add up; the start time is the oldest, the fd limit the lowest.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def pids(self) -> set[int]:
        found = {os.getppid()}
        for entry in os.scandir(self.directory):
            pid = entry.name.rsplit(".", 1)[0].rsplit("_", 1)[-1]
            if pid.isdigit() and Path(f"/proc/{pid}").exists():
                found.add(int(pid))
        return found

    def collect(self) -> Iterator[Metric]:
        totals: dict[str, Metric] = {}
        for pid in sorted(self.pids()):
            for family in ProcessCollector(pid=_fixed(pid), registry=None).collect():
                value = family.samples[0].value
                if family.name not in totals:
                    totals[family.name] = family
                    continue
                kept = totals[family.name]
                old = kept.samples[0].value
                if family.name.endswith(("start_time_seconds", "max_fds")):
                    merged = min(old, value)
                else:
                    merged = old + value
                kept.samples[0] = kept.samples[0]._replace(value=merged)
        yield from totals.values()


class Metrics:
    """The counters the app updates; `render()` is the /metrics body."""

    def __init__(self, catalogue: Catalogue, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "releasekit_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "releasekit_http_request_duration_seconds",
            "Time to answer a request, by route",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.downloads = Counter(
            "releasekit_downloads",
            "Distribution files downloaded (whole-file GETs), by project and version",
            ["project", "version"],
            registry=self.registry,
        )
        self.uploads = Counter(
            "releasekit_uploads",
            "Uploads by project and result",
            ["project", "result"],
            registry=self.registry,
        )
        self.files_indexed = Counter(
            "releasekit_files_indexed",
            "Files read and hashed by this index (each file once over all workers)",
            registry=self.registry,
        )
        self.auth_refusals = Counter(
            "releasekit_auth_refusals",
            "Logins refused: wrong (bad password or token), throttled (429), busy (503)",
            ["reason"],
            registry=self.registry,
        )
        self.retention_runs = Counter(
            "releasekit_retention_runs",
            "Scheduled retention runs, by index",
            ["index"],
            registry=self.registry,
        )
        self.retention_deleted = Counter(
            "releasekit_retention_deleted_files",
            "Files deleted by scheduled retention runs, by index",
            ["index"],
            registry=self.registry,
        )
        self.upstream_fetches = Counter(
            "releasekit_upstream_fetches",
            "Upstream reads by index, kind (page, file, metadata) and outcome",
            ["index", "kind", "outcome"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "releasekit_upstream_fetch_duration_seconds",
            "Time spent fetching from an upstream, by index and kind",
            ["index", "kind"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoredCollector(catalogue))
        if multiprocess_dir is None:
            self.registry.register(ProcessCollector(registry=None))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition (summed over workers in multiprocess mode)."""
        if self.multiprocess_dir is None:
            return bytes(generate_latest(self.registry))
        exposed = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(exposed, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        exposed.register(WorkersProcessCollector(self.multiprocess_dir))
        # Collectors computed at scrape time (stored files, pending...) are the same in every
        # worker: the answering worker's view is taken as is; live metrics come from the files.
        for collector in list(getattr(self.registry, "_collector_to_names", {})):
            if not isinstance(collector, MetricWrapperBase):
                exposed.register(collector)
        return bytes(generate_latest(exposed))


def metrics_token_matches(authorization: str | None, token: str | None) -> bool:
    """Whether `Authorization: Bearer <token>` carries the configured metrics token."""
    if not token or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def multiprocess_dir_from_env() -> Path | None:
    """The directory `run` set up for several workers, if this process is one of them."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None
