"""Simple-API pages (PEP 503/629 HTML, PEP 691 JSON v1.1), rendered once per change and kept ready.

File URLs are relative (`../../packages/<file>`), so a page rendered once is right behind any
URL prefix or proxy, and the on-disk copies under `.releasekit/simple/` can be served by nginx.
Several processes write those copies: each write carries the change-log number it was rendered
at (`index.serial` beside it) and never replaces a copy rendered at a later number, so a process
that is behind cannot take a file off a page that a fresher one wrote.
"""

from __future__ import annotations

import hashlib
import html
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from packaging.version import InvalidVersion, Version

from releasekit.server.attestations import ProvenanceStore
from releasekit.server.catalogue import Catalogue, FileRecord
from releasekit.server.negotiation import CONTENT_TYPES, Format
from releasekit.server.status import ProjectStatus
from releasekit.server.storage import Storage

API_VERSION = "1.4"  # 1.1 PEP 700, 1.3 PEP 740 provenance, 1.4 PEP 792 status
PAGE_CACHE_CONTROL = b"no-cache"
SERIAL_NAME = "index.serial"  # beside each page set: the log number it was rendered at
KEEP_PROJECTS = 512  # projects whose rendered pages stay in memory


@dataclass(frozen=True)
class Page:
    """One ready response body with its validators and headers (ASGI byte pairs)."""

    body: bytes
    etag: bytes
    headers: tuple[tuple[bytes, bytes], ...]


def make_page(body: bytes, fmt: Format) -> Page:
    """Wrap a rendered body with Content-Type, ETag, Vary and Cache-Control."""
    etag = b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'
    headers = (
        (b"content-type", CONTENT_TYPES[fmt].encode()),
        (b"content-length", str(len(body)).encode()),
        (b"etag", etag),
        (b"vary", b"Accept"),
        (b"cache-control", PAGE_CACHE_CONTROL),
    )
    return Page(body, etag, headers)


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def iso_time(record: FileRecord) -> str:
    """PEP 700 upload-time: ISO 8601 UTC with microseconds and a Z."""
    moment = datetime.fromtimestamp(record.mtime_ns / 1e9, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_url(record: FileRecord) -> str:
    """The page-relative URL of a file, with its sha256 fragment."""
    return f"../../packages/{quote(record.filename)}#sha256={record.sha256}"


def provenance_url(record: FileRecord, attested: Mapping[str, str] | None) -> str | None:
    """The page-relative PEP 740 provenance URL of a file whose bytes were attested, else None."""
    if attested is None or attested.get(record.filename) != record.sha256:
        return None
    name = quote(record.filename)
    return f"../../integrity/{quote(record.project)}/{quote(record.version)}/{name}/provenance"


def _listed(records: Iterable[FileRecord], status: ProjectStatus | None) -> Iterable[FileRecord]:
    # PEP 792: a quarantined project offers no files at all, so its page lists none.
    return () if status is not None and not status.serves_files else records


def project_html_head(project: str, version: str, status: str | None, reason: str) -> list[str]:
    """The lines of a project page up to its heading: PEP 629 version, PEP 792 status."""
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{version}">',
    ]
    if status is not None:
        lines.append(f'    <meta name="pypi:project-status" content="{status}">')
        if reason:
            escaped = html.escape(reason, quote=True)
            lines.append(f'    <meta name="pypi:project-status-reason" content="{escaped}">')
    return [
        *lines,
        f"    <title>Links for {html.escape(project)}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>Links for {html.escape(project)}</h1>",
    ]


def render_project_html(
    project: str,
    records: Iterable[FileRecord],
    status: ProjectStatus | None = None,
    attested: Mapping[str, str] | None = None,
) -> bytes:
    """PEP 503 project page with PEP 629 meta, requires-python, PEP 592, PEP 658/714, PEP 792."""
    shown = status if status is not None and status.status != "active" else None
    lines = project_html_head(
        project, API_VERSION, shown.status if shown else None, shown.reason if shown else ""
    )
    for record in _listed(records, status):
        attrs = [f'href="{html.escape(file_url(record))}"']
        if record.requires_python:
            attrs.append(f'data-requires-python="{html.escape(record.requires_python)}"')
        if record.metadata_sha256:
            value = f"sha256={record.metadata_sha256}"
            attrs.append(f'data-core-metadata="{value}" data-dist-info-metadata="{value}"')
        if record.yanked is not None:
            attrs.append(f'data-yanked="{html.escape(record.yanked)}"')
        provenance = provenance_url(record, attested)
        if provenance is not None:
            attrs.append(f'data-provenance="{html.escape(provenance)}"')
        lines.append(f"    <a {' '.join(attrs)}>{html.escape(record.filename)}</a><br>")
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines).encode()


def render_project_json(
    project: str,
    records: Iterable[FileRecord],
    status: ProjectStatus | None = None,
    attested: Mapping[str, str] | None = None,
) -> bytes:
    """PEP 691 JSON project page: versions, size, upload-time, core-metadata, yanked, status."""
    files = []
    versions = set()
    for record in _listed(records, status):
        versions.add(record.version)
        entry: dict[str, object] = {
            "filename": record.filename,
            "url": file_url(record).split("#", 1)[0],
            "hashes": {"sha256": record.sha256},
            "requires-python": record.requires_python,
            "core-metadata": (
                {"sha256": record.metadata_sha256} if record.metadata_sha256 else False
            ),
            "yanked": record.yanked if record.yanked else record.yanked is not None,
            "size": record.size,
            "upload-time": iso_time(record),
            "provenance": provenance_url(record, attested),
        }
        files.append(entry)
    data: dict[str, object] = {
        "meta": {"api-version": API_VERSION},
        "name": project,
        "versions": sorted(versions, key=_version_key),
        "files": files,
    }
    if status is not None and status.status != "active":
        marker: dict[str, str] = {"status": status.status}
        if status.reason:
            marker["reason"] = status.reason
        data["project-status"] = marker
    return json.dumps(data, separators=(",", ":")).encode()


def render_root_html(projects: Iterable[str]) -> bytes:
    """PEP 503 root page: one link per normalized project name."""
    links = [f'    <a href="{quote(p)}/">{html.escape(p)}</a><br>' for p in projects]
    head = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        "    <title>Simple index</title>",
        "  </head>",
        "  <body>",
    ]
    return "\n".join([*head, *links, "  </body>", "</html>", ""]).encode()


def render_root_json(projects: Iterable[str]) -> bytes:
    """PEP 691 JSON root page."""
    data = {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in projects]}
    return json.dumps(data, separators=(",", ":")).encode()


def latest(records: Iterable[FileRecord]) -> FileRecord:
    """The newest release's most recent file (for the welcome page)."""
    return max(records, key=lambda r: (_version_key(r.version), r.mtime_ns))


def page_set(html_body: bytes, json_body: bytes) -> dict[Format, Page]:
    return {
        "json": make_page(json_body, "json"),
        "html": make_page(html_body, "html"),
        "text-html": make_page(html_body, "text-html"),
    }


class PageSet:
    """Ready pages for the root and recently used projects, in every format, updated per change.

    A project's pages are rendered when it changes, or at first use. At most `keep` projects'
    pages stay in memory (the oldest rendered go first): rendering one is cheap, and keeping
    every page of 2k projects would cost each worker ~20 MiB. A project with pending files is
    not rendered (its page would be incomplete): it is rendered once the catalogue has indexed
    them. The root lists pending projects too.
    """

    def __init__(
        self, catalogue: Catalogue, storage: Storage, *, keep: int = KEEP_PROJECTS
    ) -> None:
        self.catalogue = catalogue
        self.storage = storage
        self.provenance = ProvenanceStore(storage)  # PEP 740: which files link to provenance
        self.root: dict[Format, Page] = {}
        self.projects: dict[str, dict[Format, Page]] = {}
        self.keep = keep
        self._root_names: list[str] | None = None
        self._lock = threading.Lock()

    def project(self, name: str) -> dict[Format, Page] | None:
        """The pages of one project, rendering them on first use; None if it does not exist."""
        pages = self.projects.get(name)
        if pages is not None:
            return pages
        records = self.catalogue.projects.get(name)
        if records is None:
            return None
        status, attested = self.catalogue.statuses.get(name), self.provenance.index
        pages = page_set(
            render_project_html(name, records, status, attested),
            render_project_json(name, records, status, attested),
        )
        with self._lock:
            # Keep it only if no change landed meanwhile (rebuild holds the lock).
            if self.catalogue.projects.get(name) is records:
                self._keep(name, pages)
        return pages

    def _keep(self, name: str, pages: dict[Format, Page]) -> None:
        """Remember a project's pages, dropping the oldest kept beyond `keep` (holds _lock)."""
        kept = self.projects
        kept.pop(name, None)
        kept[name] = pages
        while len(kept) > self.keep:
            kept.pop(next(iter(kept)))

    def warm(self) -> None:
        """Render projects not rendered yet, up to `keep` (run in the background after a start)."""
        for name in list(self.catalogue.projects):
            if len(self.projects) >= self.keep:
                return
            if name not in self.projects and name not in self.catalogue.pending_projects:
                self.project(name)

    def rebuild(self, changed: Iterable[str], *, write: bool = True) -> None:
        """Re-render the `changed` projects and the root (if its list moved); write them too."""
        with self._lock:
            catalogue = self.catalogue
            serial = catalogue.applied  # read before the records: never above what they show
            pages = self.projects
            written: dict[str, dict[str, bytes | None]] = {}
            for project in set(changed):
                records = catalogue.projects.get(project)
                if project in catalogue.pending_projects:
                    # Rendered once indexed; until then the copy on disk stays as it was.
                    pages.pop(project, None)
                    continue
                if records is None:
                    pages.pop(project, None)
                    written[f"simple/{project}/"] = {"index.html": None, "index.v1_json": None}
                    continue
                status = catalogue.statuses.get(project)
                attested = self.provenance.index
                page_html = render_project_html(project, records, status, attested)
                page_json = render_project_json(project, records, status, attested)
                self._keep(project, page_set(page_html, page_json))
                written[f"simple/{project}/"] = {
                    "index.html": page_html,
                    "index.v1_json": page_json,
                }
            names = catalogue.project_names()
            root_moved = names != self._root_names
            if root_moved:
                # Indexing a pending project leaves the list as it was: no re-render, no write.
                root_html, root_json = render_root_html(names), render_root_json(names)
                self.root = page_set(root_html, root_json)
                written["simple/"] = {"index.html": root_html, "index.v1_json": root_json}
            if write:
                for directory, bodies in written.items():
                    self._write_unless_newer(directory, bodies, serial)
            if root_moved and write:
                self._root_names = names  # only once written, so a failed write is retried

    def _write_unless_newer(
        self, directory: str, bodies: dict[str, bytes | None], serial: int
    ) -> None:
        """Write (None: delete) one page set unless the copy there is from a later log entry."""
        with self.storage.lock(directory):
            raw = self.storage.read_state(directory + SERIAL_NAME)
            try:
                there = int(raw or b"-1")
            except ValueError:
                there = -1  # not ours: overwritten
            if there > serial:
                return
            for name, body in bodies.items():
                if body is None:
                    self.storage.delete_state(directory + name)
                else:
                    self.storage.write_state(directory + name, body, durable=False)
            self.storage.write_state(directory + SERIAL_NAME, str(serial).encode(), durable=False)
