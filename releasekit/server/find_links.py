"""`GET /packages/`: every file as one HTML page, for `pip install --find-links URL`.

Access follows the root listing (`list`). Links are relative, so the page is right behind any
URL prefix; indexed files carry their sha256, requires-python and yank state as on project pages.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from releasekit.server.auth import AuthError
from releasekit.server.simple import external_prefix
from releasekit.server.state import auth_problem, authorize, state_of


async def find_links_page(request: Request) -> Response:
    """The flat file list; `/packages` redirects to `/packages/` so relative links resolve."""
    state = state_of(request)
    try:
        await authorize(request, "list", None)
    except AuthError as exc:
        return auth_problem(exc)
    if not request.url.path.endswith("/"):
        prefix = external_prefix(request.scope, request.headers.get("x-forwarded-prefix"))
        return RedirectResponse(f"{prefix}/packages/", status_code=301)
    catalogue = state.catalogue
    lines = ["<!DOCTYPE html>", "<html><head><title>Files</title></head><body>"]
    for name in sorted(catalogue.files.keys() | catalogue.pending.keys()):
        record = catalogue.files.get(name)
        href = html.escape(name)
        attrs = ""
        if record is not None:
            href += f"#sha256={record.sha256}"
            if record.requires_python:
                attrs += f' data-requires-python="{html.escape(record.requires_python)}"'
            if record.yanked is not None:
                attrs += f' data-yanked="{html.escape(record.yanked)}"'
        lines.append(f'<a href="{href}"{attrs}>{html.escape(name)}</a><br>')
    lines.append("</body></html>")
    return HTMLResponse("\n".join(lines) + "\n", headers={"cache-control": "no-cache"})
