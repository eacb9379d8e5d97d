"""The simple pages of an upstream project as this index serves them.

Links point at this index (`../../packages/<file>`, like local files), never at upstream: every
byte a client gets passed our hash check. Yanks, requires-python, PEP 658 metadata hashes,
sizes and upload times are mirrored as upstream gave them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote

from packaging.version import InvalidVersion, Version

from releasekit.server.negotiation import Format
from releasekit.server.pages import API_VERSION, Page, make_page, project_html_head
from releasekit.server.upstream_listing import Listing, UpstreamFile


def _link(entry: UpstreamFile) -> str:
    return f"../../packages/{quote(entry.filename)}"


def _time(entry: UpstreamFile) -> str | None:
    if entry.uploaded is None:
        return None
    return datetime.fromtimestamp(entry.uploaded, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def render_json(project: str, files: Iterable[UpstreamFile], listing: Listing) -> bytes:
    """PEP 691 JSON (API 1.1 fields when upstream gave every size, else 1.0)."""
    entries, versions, sized = [], set(), True
    for entry in files:
        versions.add(entry.version)
        item: dict[str, object] = {
            "filename": entry.filename,
            "url": _link(entry),
            "hashes": {"sha256": entry.sha256},
            "requires-python": entry.requires_python,
            "core-metadata": (
                {"sha256": entry.metadata_sha256} if entry.metadata_sha256 else False
            ),
            "yanked": entry.yanked if entry.yanked else entry.yanked is not None,
        }
        if entry.size is not None:
            item["size"] = entry.size
        else:
            sized = False
        uploaded = _time(entry)
        if uploaded is not None:
            item["upload-time"] = uploaded
        entries.append(item)
    # PEP 700 makes `size` mandatory from 1.1 on: claim it only when it is true.
    data: dict[str, object] = {
        "meta": {"api-version": API_VERSION if sized else "1.0"},
        "name": project,
        "files": entries,
    }
    if sized:
        data["versions"] = sorted(versions, key=_version_key)
    if listing.status is not None:  # PEP 792, mirrored
        marker = {"status": listing.status}
        if listing.status_reason:
            marker["reason"] = listing.status_reason
        data["project-status"] = marker
    return json.dumps(data, separators=(",", ":")).encode()


def render_html(project: str, files: Iterable[UpstreamFile], listing: Listing) -> bytes:
    """PEP 503 HTML with PEP 629 meta, requires-python, PEP 592 yank and PEP 658/714."""
    lines = project_html_head(project, "1.0", listing.status, listing.status_reason or "")
    for entry in files:
        attrs = [f'href="{html.escape(_link(entry))}#sha256={entry.sha256}"']
        if entry.requires_python:
            attrs.append(f'data-requires-python="{html.escape(entry.requires_python)}"')
        if entry.metadata_sha256:
            value = f"sha256={entry.metadata_sha256}"
            attrs.append(f'data-core-metadata="{value}" data-dist-info-metadata="{value}"')
        if entry.yanked is not None:
            attrs.append(f'data-yanked="{html.escape(entry.yanked)}"')
        lines.append(f"    <a {' '.join(attrs)}>{html.escape(entry.filename)}</a><br>")
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines).encode()


def upstream_page(listing: Listing, files: list[UpstreamFile], fmt: Format) -> Page:
    """The ready page of `files` (of `listing`) in the negotiated format."""
    project = listing.project
    if fmt == "json":
        body = render_json(project, files, listing)
    else:
        body = render_html(project, files, listing)
    return make_page(body, fmt)
