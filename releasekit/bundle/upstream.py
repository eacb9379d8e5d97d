"""Read an upstream index through its PEP 691 JSON simple API (any PEP 503/691 index).

Only JSON is read: upload times (PEP 700), yank state (PEP 592) and metadata hashes (PEP 658)
exist there; an index that answers HTML only is refused with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from packaging.utils import canonicalize_name

from releasekit.errors import BundleError

JSON = "application/vnd.pypi.simple.v1+json"
TIMEOUT = 60


class UnknownProject(BundleError):
    """The upstream answered 404 for a project page."""


@dataclass(frozen=True)
class UpstreamFile:
    """One file of a project page, as the upstream describes it."""

    filename: str
    url: str
    sha256: str
    size: int | None
    upload_time: str | None  # ISO 8601 as the index wrote it
    yanked: str | None  # None: not yanked; "" yanked without reason
    requires_python: str | None
    metadata_sha256: str | None  # set when the index serves PEP 658 metadata


class Upstream:
    """A session on one index with a per-project page cache (one GET per project per plan)."""

    def __init__(self, index_url: str, session: requests.Session | None = None) -> None:
        self.index_url = index_url.rstrip("/") + "/"
        self.session = session or requests.Session()
        self._pages: dict[str, list[UpstreamFile]] = {}

    def files(self, project: str) -> list[UpstreamFile]:
        """Every file of `project`, or BundleError when the index does not know it."""
        name = canonicalize_name(project)
        if name not in self._pages:
            self._pages[name] = self._read(name)
        return self._pages[name]

    def _read(self, name: str) -> list[UpstreamFile]:
        url = f"{self.index_url}{name}/"
        try:
            response = self.session.get(url, headers={"Accept": JSON}, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise BundleError(
                f"cannot reach the upstream index at {self.index_url}: {exc}",
                hint="check --index and the network of the planning machine",
            ) from None
        if response.status_code == 404:
            raise UnknownProject(
                f"{name} is not on the upstream index {self.index_url}",
                hint="check the requirement's name, or pass the index that carries it with --index",
            )
        if response.status_code in (401, 403):
            raise BundleError(
                f"the upstream index refused {url} ({response.status_code})",
                hint="put credentials in the index URL (https://user:token@host/simple/)",
            )
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith(
            JSON
        ):
            raise BundleError(
                f"{url} did not answer PEP 691 JSON ({response.status_code}, "
                f"{response.headers.get('content-type')!r})",
                hint="bundles need a JSON simple API (PEP 691) for upload times and yanks",
            )
        return [_parse_file(entry, response.url) for entry in response.json().get("files", [])]


def _parse_file(entry: dict[str, object], page_url: str) -> UpstreamFile:
    hashes = entry.get("hashes")
    sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
    filename = str(entry["filename"])
    if not isinstance(sha256, str):
        raise BundleError(
            f"the upstream lists {filename} without a sha256 hash",
            hint="a bundle verifies every file; use an index that publishes sha256 hashes",
        )
    yanked = entry.get("yanked", False)
    meta = entry.get("core-metadata", entry.get("dist-info-metadata"))
    meta_sha = meta.get("sha256") if isinstance(meta, dict) else None
    size = entry.get("size")
    upload_time = entry.get("upload-time")
    requires_python = entry.get("requires-python")
    return UpstreamFile(
        filename=filename,
        url=public_url(urljoin(page_url, str(entry["url"]))),
        sha256=sha256,
        size=size if isinstance(size, int) else None,
        upload_time=upload_time if isinstance(upload_time, str) else None,
        yanked=(yanked if isinstance(yanked, str) else "") if yanked else None,
        requires_python=requires_python if isinstance(requires_python, str) else None,
        metadata_sha256=meta_sha if isinstance(meta_sha, str) else None,
    )


def public_url(url: str) -> str:
    """`url` without credentials: plans and bundles are carried around and never hold secrets."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def parse_time(text: str | None) -> datetime | None:
    """An upload-time string as a datetime (the server writes ISO 8601 with `Z`)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
