"""`GET /bundles/<bundle>/<target>.txt`: the lock of an imported air-gapped bundle.

`releasekit bundle import --packages-dir` writes one requirements file per target (pins with
hashes) under `.releasekit/bundles/<bundle id>/` and `.releasekit/bundles/latest/`, so a target
machine runs `pip install -r <index>/bundles/latest/<target>.txt -i <index>/simple/`.
Both path segments are matched against strict patterns before any file is touched: no
separators, dots only where the pattern puts them, so nothing outside that folder is reachable.
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from releasekit.server.auth import AuthError
from releasekit.server.problems import problem
from releasekit.server.state import IndexState, auth_problem, authorize

LOCKS_STATE = "bundles"
_BUNDLE = re.compile(r"^(?:[0-9a-f]{24}|latest)$")
_LOCK = re.compile(r"^[a-z0-9_]{1,80}-py3[0-9]{1,2}\.txt$")


async def bundle_lock(request: Request) -> Response:
    """Serve one imported lock (text/plain); 404 for anything that is not one."""
    state: IndexState = request.app.state.index
    bundle: str = request.path_params["bundle"]
    lock: str = request.path_params["lock"]
    try:  # a lock names projects and versions: as guarded as a listing and a download
        await authorize(request, "list", None)
        await authorize(request, "download", None)
    except AuthError as exc:
        return auth_problem(exc)
    if not _BUNDLE.fullmatch(bundle) or not _LOCK.fullmatch(lock):
        return problem(
            404,
            f"no bundle lock {bundle}/{lock} on this index",
            "not-found",
            hint="locks are named <bundle id or latest>/<platform>-py<XY>.txt",
        )
    data = await run_in_threadpool(state.storage.read_state, f"{LOCKS_STATE}/{bundle}/{lock}")
    if data is None:
        return problem(
            404,
            f"no bundle lock {bundle}/{lock} on this index",
            "not-found",
            hint="import the bundle with `releasekit bundle import --packages-dir`",
        )
    return Response(
        data, media_type="text/plain; charset=utf-8", headers={"cache-control": "no-cache"}
    )
