"""Prometheus metrics with a per-app registry (two apps in one process never share counters)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from releasekit.server.catalogue import Catalogue

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
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


class Metrics:
    """The counters the app updates; `render()` is the /metrics body."""

    def __init__(self, catalogue: Catalogue) -> None:
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
            "releasekit_downloads", "Files served, by project", ["project"], registry=self.registry
        )
        self.uploads = Counter(
            "releasekit_uploads",
            "Uploads by project and result",
            ["project", "result"],
            registry=self.registry,
        )
        self.auth_refusals = Counter(
            "releasekit_auth_refusals",
            "Logins refused: wrong (bad password or token), throttled (429), busy (503)",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(_StoredCollector(catalogue))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return bytes(generate_latest(self.registry))
