"""GET `/`: the projects with their latest version, and copy-paste client setup with our own URL."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse

from releasekit.server.auth import AuthError
from releasekit.server.pages import latest
from releasekit.server.simple import external_prefix
from releasekit.server.state import authorize, state_of


def base_url(request: Request) -> str:
    """The URL clients reach us at, as a reverse proxy presents it (X-Forwarded-*)."""
    headers = request.headers
    proto = headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = headers.get("x-forwarded-host") or headers.get("host") or request.url.netloc
    prefix = external_prefix(request.scope, headers.get("x-forwarded-prefix"))
    return f"{proto}://{host.split(',')[0].strip()}{prefix}"


def setup_snippets(base: str) -> list[tuple[str, str]]:
    """(title, text) blocks for pip, uv, poetry and twine pointed at `base`."""
    simple, upload = f"{base}/simple/", f"{base}/legacy/"
    return [
        (
            "pip",
            f"pip install --index-url {simple} PACKAGE\n\n# or in pip.conf\n"
            f"[global]\nindex-url = {simple}",
        ),
        (
            "uv",
            f"uv pip install --index-url {simple} PACKAGE\n\n# pyproject.toml\n"
            f'[[tool.uv.index]]\nname = "private"\nurl = "{simple}"\n'
            f'publish-url = "{upload}"\n\n# publish\nuv publish --publish-url {upload} dist/*',
        ),
        (
            "poetry",
            f"poetry source add --priority=primary private {simple}\n"
            f"poetry config repositories.private {upload}\n"
            "poetry publish -r private",
        ),
        (
            "twine",
            f"# ~/.pypirc\n[distutils]\nindex-servers = private\n\n[private]\n"
            f"repository = {upload}\n\ntwine upload -r private dist/*",
        ),
    ]


async def welcome_endpoint(request: Request) -> HTMLResponse:
    """The welcome page; the project list is shown only to those allowed to list."""
    state = state_of(request)
    base = base_url(request)
    prefix = external_prefix(request.scope, request.headers.get("x-forwarded-prefix"))
    try:
        await authorize(request, "list", None)
        projects = state.catalogue.projects
        rows = []
        for name in sorted(projects):
            newest = latest(projects[name])
            when = datetime.fromtimestamp(newest.upload_time, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
            rows.append(
                f'<tr><td><a href="{html.escape(prefix)}/simple/{html.escape(name)}/">{html.escape(name)}</a></td>'
                f"<td>{html.escape(newest.version)}</td><td>{when}</td></tr>"
            )
        listing = (
            "<table><tr><th>project</th><th>latest</th><th>uploaded</th></tr>"
            + "".join(rows)
            + "</table>"
            if rows
            else "<p>No projects yet: upload one with twine or uv publish (below).</p>"
        )
    except AuthError:
        listing = "<p>Sign in (HTTP Basic) to see the projects.</p>"
    snippets = "".join(
        f"<h3>{html.escape(title)}</h3><pre>{html.escape(text)}</pre>"
        for title, text in setup_snippets(base)
    )
    body = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>releasekit index</title></head>"
        f"<body><h1>releasekit index</h1><p>Simple index: <code>{html.escape(base)}/simple/"
        f"</code> &middot; upload URL: <code>{html.escape(base)}/legacy/</code></p>"
        f"<h2>Projects</h2>{listing}<h2>Setup</h2>{snippets}</body></html>"
    )
    return HTMLResponse(body, headers={"cache-control": "no-cache"})
