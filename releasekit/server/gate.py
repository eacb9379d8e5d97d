"""`GET /-/auth`: nginx's `auth_request` asks whether the original request may read a page.

nginx serves the pre-rendered `/simple/` pages from disk and, before each, sends a subrequest
here with `X-Original-URI`. 204 lets nginx answer; 401/403 are passed on to the client (with
the challenge). Anything that is not a simple page is refused: this is no general oracle. A
named index's pages (`/<index>/simple/...`) are decided by that index's ACL (acl.py).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from releasekit.server.auth import AuthError
from releasekit.server.state import IndexState, RequestInfo, auth_problem

# `/simple/...` of the default index, or `/<index>/simple/...` of a named one.
_PAGE = re.compile(
    r"^(?:/(?P<index>[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?))?"
    r"/simple/(?:(?P<project>[a-z0-9]+(?:-[a-z0-9]+)*)/)?$"
)


async def auth_request(request: Request) -> Response:
    """204 when the credentials may list the page named by X-Original-URI, else 401/403."""
    state: IndexState = request.app.state.index
    original = request.headers.get("x-original-uri")
    if not original:
        return Response(status_code=403)
    path = unquote(urlsplit(original).path)
    prefix = state.settings.url_prefix
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    match = _PAGE.match(path)
    family = state.family
    index = match.group("index") if match else None
    asked = state if index is None else family.get(index) if family else None
    if match is None or asked is None:
        return Response(status_code=403)
    client = request.client.host if request.client else "-"
    authorization = request.headers.get("authorization")
    try:
        principal = await asked.check(authorization, "list", match.group("project"), client)
    except AuthError as exc:
        return auth_problem(exc)
    info: RequestInfo | None = request.scope.get("releasekit")
    if info is not None:
        info.user = principal.name
    return Response(status_code=204)
