"""An upstream project page, parsed and checked: the files we may offer, and nothing else.

PEP 691 JSON is read when upstream offers it, PEP 503 HTML otherwise. A file is kept only when
its name is a plain distribution filename of the project asked for (no `../`, no other
project's file), its link is on an allowed host, and it has a sha256 to verify the bytes
against; every other entry is dropped and counted. What is kept is cached as JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from releasekit.server.metadata import ArchiveError, parse_filename
from releasekit.server.upstream import UpstreamConfig
from releasekit.server.upstream_fetch import Fetched, UpstreamError, allowed

JSON_TYPES = ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.latest+json")
HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")
_HEX64 = frozenset("0123456789abcdef")
STATUSES = ("active", "archived", "quarantined", "deprecated")
MAX_FILENAME = 200


@dataclass(frozen=True)
class UpstreamFile:
    """One file upstream offers, as we may serve it."""

    filename: str
    url: str  # absolute, on an allowed host
    sha256: str
    version: str
    size: int | None = None
    uploaded: float | None = None  # PEP 700 upload-time, seconds since the epoch
    requires_python: str | None = None
    yanked: str | None = None  # None: not yanked; "" yanked without a reason
    metadata_sha256: str | None = None  # PEP 658/714, only when upstream gave its hash


@dataclass(frozen=True)
class Listing:
    """A project page as fetched: when, from where, what was kept and how much was dropped."""

    project: str
    fetched: float
    source: str  # "json" or "html"
    files: tuple[UpstreamFile, ...]
    dropped: int = 0
    status: str | None = None  # PEP 792 project status upstream gave (None: active)
    status_reason: str | None = None

    def to_bytes(self) -> bytes:
        data = asdict(self)
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Listing | None:
        """A cached listing, or None when the cache entry is damaged (refetched, never trusted)."""
        try:
            data = json.loads(raw)
            files = tuple(UpstreamFile(**f) for f in data.pop("files"))
            return cls(files=files, **data)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def find(self, filename: str) -> UpstreamFile | None:
        for entry in self.files:
            if entry.filename == filename:
                return entry
        return None


def offered(listing: Listing, cooldown: int, now: float) -> tuple[list[UpstreamFile], int]:
    """The files old enough to offer, and how many were withheld by the cooldown.

    With a cooldown, a file without an upload time is withheld: its age cannot be known. A
    project upstream quarantined (PEP 792) offers nothing, whatever its page still lists.
    """
    if listing.status == "quarantined":
        return [], len(listing.files)
    if cooldown <= 0:
        return list(listing.files), 0
    kept = [f for f in listing.files if f.uploaded is not None and now - f.uploaded >= cooldown]
    return kept, len(listing.files) - len(kept)


def parse_page(project: str, page: Fetched, config: UpstreamConfig, now: float) -> Listing:
    """The listing of `project` from an upstream page; UpstreamError if it is not one."""
    if page.content_type in JSON_TYPES:
        (raw, status), source = _json_entries(page), "json"
    elif page.content_type in HTML_TYPES:
        (raw, status), source = _html_entries(page), "html"
    else:
        raise UpstreamError(
            f"upstream {config.url} answered {page.url} with Content-Type "
            f"{page.content_type or '(none)'}, not a simple-API page"
        )
    files, seen, dropped = [], set(), 0
    for entry in raw:
        checked = _check(project, entry, page.url, config)
        if checked is None or checked.filename in seen:
            dropped += 1
            continue
        seen.add(checked.filename)
        files.append(checked)
    state, reason = status
    return Listing(project, now, source, tuple(files), dropped, state, reason)


Status = tuple[str | None, str | None]


def _status(value: object, reason: object) -> Status:
    if value not in STATUSES or value == "active":
        return None, None
    return str(value), reason[:500] if isinstance(reason, str) and reason else None


def _json_entries(page: Fetched) -> tuple[list[dict[str, Any]], Status]:
    try:
        data = json.loads(page.body)
    except ValueError:
        raise UpstreamError(f"upstream page {page.url} is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise UpstreamError(f"upstream page {page.url} has no `files` list")
    version = str((data.get("meta") or {}).get("api-version", "1.0"))
    if not version.startswith("1."):
        raise UpstreamError(f"upstream page {page.url} speaks API {version}; this index reads 1.x")
    marker = data.get("project-status")
    marker = marker if isinstance(marker, dict) else {}
    status = _status(marker.get("status"), marker.get("reason"))
    return [f for f in data["files"] if isinstance(f, dict)], status


def _check(
    project: str, entry: dict[str, Any], base: str, config: UpstreamConfig
) -> UpstreamFile | None:
    """One entry as a file we may serve, or None (dropped)."""
    url, filename = entry.get("url"), entry.get("filename")
    if not isinstance(url, str) or not isinstance(filename, str) or len(filename) > MAX_FILENAME:
        return None  # too long for the cache's names (`metadata/<file>.metadata`)
    absolute = urljoin(base, url).split("#", 1)[0]
    # uv and pip take the name from the link; both must agree, and be this project's file.
    if unquote(urlsplit(absolute).path.rsplit("/", 1)[-1]) != filename:
        return None
    try:
        dist = parse_filename(filename)
    except ArchiveError:
        return None
    if dist.project != project or not allowed(absolute, config, after=base):
        return None
    sha256 = _sha256(entry.get("hashes"))
    if sha256 is None:
        return None
    size = entry.get("size")
    requires = entry.get("requires-python")
    yanked = entry.get("yanked")
    return UpstreamFile(
        filename=filename,
        url=absolute,
        sha256=sha256,
        version=dist.version,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        uploaded=_timestamp(entry.get("upload-time")),
        requires_python=requires if isinstance(requires, str) and requires else None,
        yanked=yanked if isinstance(yanked, str) else ("" if yanked is True else None),
        metadata_sha256=_sha256(entry.get("core-metadata", entry.get("dist-info-metadata"))),
    )


def _sha256(hashes: object) -> str | None:
    if not isinstance(hashes, dict):
        return None
    value = hashes.get("sha256")
    if isinstance(value, str) and len(value) == 64 and set(value.lower()) <= _HEX64:
        return value.lower()
    return None


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # PEP 700 says UTC
    return moment.timestamp()


class _Anchors(HTMLParser):
    """The `<a>` elements of a PEP 503 page, as JSON-like entries."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.entries: list[dict[str, Any]] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "meta" and found.get("name") and found.get("content") is not None:
            self.meta[str(found["name"])] = str(found["content"])
        if tag != "a":
            return
        href = found.get("href")
        if not href:
            return
        link, _, fragment = href.partition("#")
        algo, _, digest = fragment.partition("=")
        entry: dict[str, Any] = {
            "url": link,
            "filename": unquote(urlsplit(link).path.rsplit("/", 1)[-1]),
            "hashes": {algo: digest} if algo == "sha256" else {},
            "requires-python": found.get("data-requires-python"),
        }
        if "data-yanked" in found:
            entry["yanked"] = found["data-yanked"] or True
        metadata = found.get("data-core-metadata", found.get("data-dist-info-metadata"))
        if metadata:
            algo, _, digest = metadata.partition("=")
            entry["core-metadata"] = {algo: digest}
        self.entries.append(entry)


def _html_entries(page: Fetched) -> tuple[list[dict[str, Any]], Status]:
    parser = _Anchors()
    parser.feed(page.body.decode("utf-8", "replace"))
    parser.close()
    meta = parser.meta
    status = _status(meta.get("pypi:project-status"), meta.get("pypi:project-status-reason"))
    return parser.entries, status
