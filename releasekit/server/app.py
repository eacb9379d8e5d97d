"""`create_app(storage, settings)`: the index as a Starlette app; all state hangs off the app.

Routes: `/` (welcome, and POST upload), `/legacy/` (POST upload), `/simple/...` (answered by the
fast path in `simple.py`), `/packages/<file>` and `<file>.metadata`, health, `/ready`, `/metrics`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from releasekit.server.auth import Authenticator, AuthError
from releasekit.server.catalogue import Catalogue, metadata_state_name
from releasekit.server.metrics import CONTENT_TYPE as METRICS_TYPE
from releasekit.server.metrics import Metrics
from releasekit.server.pages import PageSet
from releasekit.server.problems import problem
from releasekit.server.settings import Settings
from releasekit.server.simple import IndexFront
from releasekit.server.state import IndexState, auth_problem, authorize
from releasekit.server.storage import LocalStorage, Storage
from releasekit.server.upload_route import upload_endpoint
from releasekit.server.welcome import welcome_endpoint


async def package_file(request: Request) -> Response:
    """A distribution file or its PEP 658 `.metadata` sibling: ETag, HEAD, Range, caching."""
    state: IndexState = request.app.state.index
    name: str = request.path_params["filename"]
    is_metadata = name.endswith(".metadata")
    record = state.catalogue.files.get(name.removesuffix(".metadata") if is_metadata else name)
    if record is None or (is_metadata and record.metadata_sha256 is None):
        return problem(404, f"no file named {name!r} on this index", "not-found")
    try:
        authorize(request, "download", record.project)
    except AuthError as exc:
        return auth_problem(exc)
    digest = record.metadata_sha256 if is_metadata else record.sha256
    etag = f'"{digest}"'
    headers = {
        "etag": etag,
        "cache-control": f"public, max-age={state.settings.cache_control}, immutable",
    }
    if request.headers.get("if-none-match") in (etag, f"W/{etag}"):
        return Response(status_code=304, headers=headers)
    if is_metadata:
        path = state.settings.state_dir / metadata_state_name(record.filename)
        media_type = "text/plain; charset=utf-8"
    else:
        path = state.storage.path(record.filename)
        media_type = "application/octet-stream"
        if request.method == "GET":
            state.metrics.downloads.labels(record.project).inc()
    try:
        stat_result = await run_in_threadpool(path.stat)
    except FileNotFoundError:
        # Removed by hand a moment ago: the poller will drop it from the pages.
        return problem(404, f"no file named {name!r} on this index", "not-found")
    return FileResponse(path, headers=headers, media_type=media_type, stat_result=stat_result)


async def health(request: Request) -> Response:
    """Liveness: the process answers. Never authenticated."""
    return Response("ok\n", media_type="text/plain")


async def ready(request: Request) -> Response:
    """Readiness: the catalogue is loaded and an upload could be stored."""
    state: IndexState = request.app.state.index
    if await run_in_threadpool(state.storage.writable):
        return Response("ready\n", media_type="text/plain")
    return problem(
        503,
        "the packages directory is not writable",
        "not-ready",
        hint="check the volume's permissions and free space",
    )


async def metrics(request: Request) -> Response:
    """Prometheus exposition; needs the `list` permission when listing is authenticated."""
    state: IndexState = request.app.state.index
    try:
        authorize(request, "list", None)
    except AuthError as exc:
        return auth_problem(exc)
    return Response(state.metrics.render(), media_type=METRICS_TYPE)


def create_app(
    storage: Storage, settings: Settings, authenticator: Authenticator | None = None
) -> Starlette:
    """Build one independent index app: load the catalogue, render the pages, wire the routes."""
    if authenticator is None:
        authenticator = Authenticator.from_settings(
            passwords=settings.passwords,
            authenticate=settings.authenticate,
            tokens_file=settings.effective_tokens_file,
        )
    if isinstance(storage, LocalStorage):
        storage.prepare()
    catalogue = Catalogue(storage)
    changed = catalogue.load()
    pages = PageSet(catalogue, storage)
    # Pages on disk are current unless files changed while we were down (or were never written).
    fresh = storage.read_state("simple/index.v1_json") is None
    pages.rebuild(catalogue.projects if fresh else changed)
    if changed or fresh:
        catalogue.save()
    state = IndexState(storage, settings, authenticator, catalogue, pages, Metrics(catalogue))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        thread = threading.Thread(target=state.poll, name="releasekit-poll", daemon=True)
        thread.start()
        try:
            yield
        finally:
            state.stop.set()
            thread.join(timeout=5)

    routes = [
        Route("/", welcome_endpoint, methods=["GET", "HEAD"]),
        Route("/", upload_endpoint, methods=["POST"]),
        Route("/legacy/", upload_endpoint, methods=["POST"]),
        Route("/legacy", upload_endpoint, methods=["POST"]),
        Route("/packages/{filename}", package_file, methods=["GET", "HEAD"]),
        Route(settings.health_endpoint, health, methods=["GET", "HEAD"]),
        Route("/ready", ready, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(IndexFront, state=state)],
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_allowed},
    )
    app.state.index = state
    # Trailing-slash redirects would hit POST /legacy too; twine aborts on redirects.
    app.router.redirect_slashes = False
    return app


async def _not_found(request: Request, exc: Any) -> Response:
    return problem(404, f"nothing at {request.url.path}", "not-found")


async def _not_allowed(request: Request, exc: Any) -> Response:
    return problem(
        405,
        f"{request.method} is not allowed on {request.url.path}",
        "not-allowed",
        hint="upload with POST to / or /legacy/; read with GET",
    )
