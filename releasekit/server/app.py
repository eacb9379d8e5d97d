"""`create_app(storage, settings)`: the index as a Starlette app; all state hangs off the app.

Routes: `/` (welcome, and POST upload), `/legacy/` (POST upload), `/simple/...` (answered by the
fast path in `simple.py`), `/packages/<file>` and `<file>.metadata`, health, `/ready`, `/metrics`,
`/_/oidc/...` (trusted publishing, `oidc_route.py`) and `/integrity/.../provenance` (PEP 740).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from releasekit.server.attestation_route import provenance_endpoint
from releasekit.server.auth import Authenticator, AuthError
from releasekit.server.bundle_locks import bundle_lock
from releasekit.server.catalogue import Catalogue, PendingFile, metadata_state_name
from releasekit.server.find_links import find_links_page
from releasekit.server.gate import auth_request
from releasekit.server.metadata import ArchiveError, parse_filename
from releasekit.server.metrics import CONTENT_TYPE as METRICS_TYPE
from releasekit.server.metrics import Metrics, metrics_token_matches, multiprocess_dir_from_env
from releasekit.server.oidc import TrustedPublisher, load_trusted_publishing
from releasekit.server.oidc_route import OIDC_ROUTES
from releasekit.server.pages import PageSet
from releasekit.server.problems import problem
from releasekit.server.settings import Settings
from releasekit.server.simple import IndexFront
from releasekit.server.state import (
    DiskCollector,
    IndexState,
    PendingCollector,
    auth_problem,
    authorize,
)
from releasekit.server.status_route import quarantine_problem
from releasekit.server.storage import LocalStorage, Storage
from releasekit.server.throttle import ThrottlePolicy
from releasekit.server.upload_route import upload_endpoint
from releasekit.server.welcome import welcome_endpoint

logger = logging.getLogger("releasekit.server")


async def package_file(request: Request) -> Response:
    """A distribution file or its PEP 658 `.metadata` sibling: ETag, HEAD, Range, caching."""
    state: IndexState = request.app.state.index
    name: str = request.path_params["filename"]
    is_metadata = name.endswith(".metadata")
    filename = name.removesuffix(".metadata") if is_metadata else name
    record = state.catalogue.files.get(filename)
    waiting = state.catalogue.pending.get(filename) if record is None else None
    if record is None and waiting is None:
        # Stored a moment ago, maybe through another worker: look at the directory now rather
        # than at the next poll (two stats when nothing changed).
        await run_in_threadpool(state.refresh)
        record = state.catalogue.files.get(filename)
        waiting = state.catalogue.pending.get(filename) if record is None else None
    if record is not None:
        project = record.project
    elif waiting is not None:
        project = waiting.project
    else:
        return problem(404, f"no file named {name!r} on this index", "not-found")
    try:
        await authorize(request, "download", project)
    except AuthError as exc:
        return auth_problem(exc)
    refusal = quarantine_problem(state.catalogue.statuses.get(project), project)
    if refusal is not None:
        return refusal
    if waiting is not None:
        if not is_metadata:
            return await _pending_file(request, state, waiting)
        # Whether a sidecar exists is known once indexed: index the project, as its page would.
        await run_in_threadpool(state.index_project, waiting.project)
        record = state.catalogue.files.get(filename)
    if record is None or (is_metadata and record.metadata_sha256 is None):
        return problem(404, f"no file named {name!r} on this index", "not-found")
    if is_metadata:
        path = state.settings.state_dir / metadata_state_name(record.filename)
        etag = f'"{record.metadata_sha256}"'
        return await _send_file(request, state, path, etag, "text/plain; charset=utf-8", None)
    path = state.storage.path(record.filename)
    etag = f'"{record.sha256}"'
    download = (project, record.version)
    return await _send_file(request, state, path, etag, "application/octet-stream", download)


async def _pending_file(request: Request, state: IndexState, waiting: PendingFile) -> Response:
    """A file not indexed yet: its bytes need no hash; the ETag comes from size and mtime."""
    stored = waiting.stored
    etag = f'"{stored.size:x}-{stored.mtime_ns:x}"'
    path = state.storage.path(stored.filename)
    try:
        version = parse_filename(stored.filename).version
    except ArchiveError:
        version = "unknown"
    download = (waiting.project, version)
    return await _send_file(request, state, path, etag, "application/octet-stream", download)


async def _send_file(
    request: Request,
    state: IndexState,
    path: Path,
    etag: str,
    media_type: str,
    download_of: tuple[str, str] | None,
) -> Response:
    """Serve `path` with ETag, HEAD and Range; a whole-file GET counts as a download of
    `download_of` (project, version). Behind nginx (`--accel-redirect`) nginx sends the bytes."""
    headers = {
        "etag": etag,
        "cache-control": f"public, max-age={state.settings.cache_control}, immutable",
    }
    if request.headers.get("if-none-match") in (etag, f"W/{etag}"):
        return Response(status_code=304, headers=headers)
    # A range read (uv peeking at a wheel's metadata) is not a download.
    if request.method == "GET" and download_of is not None and "range" not in request.headers:
        state.metrics.downloads.labels(*download_of).inc()
    if state.settings.accel_redirect:
        return _accel_redirect(state, path, headers, media_type)
    try:
        stat_result = await run_in_threadpool(path.stat)
    except FileNotFoundError:
        # Removed by hand a moment ago: the poller will drop it from the pages.
        return problem(404, f"no file named {path.name!r} on this index", "not-found")
    return FileResponse(path, headers=headers, media_type=media_type, stat_result=stat_result)


def _accel_redirect(
    state: IndexState, path: Path, headers: dict[str, str], media_type: str
) -> Response:
    """Let nginx send `path` (sendfile, Range, HEAD) from its internal location."""
    relative = path.relative_to(state.settings.packages_dir).as_posix()
    headers["x-accel-redirect"] = state.settings.accel_redirect + relative
    # nginx takes the type from the internal location; keep ours for the client.
    headers["content-type"] = media_type
    return Response(b"", headers=headers)


async def health(request: Request) -> Response:
    """Liveness: the process answers. Never authenticated."""
    instance = request.app.state.index.settings.instance_id
    headers = {"x-releasekit-instance": instance} if instance else None
    return Response("ok\n", media_type="text/plain", headers=headers)


async def ready(request: Request) -> Response:
    """Readiness: an upload could be stored; indexing progress is reported, not waited for.

    Pages answer while files are being indexed (a page indexes its own project first), so the
    body is `{"status": "ready", "indexing": {"done": n, "total": m}}` with 200 throughout.
    """
    state: IndexState = request.app.state.index
    low = await run_in_threadpool(state.disk_problem)
    if low is not None:
        return problem(503, low, "not-ready", hint="free space or grow the volume")
    if await run_in_threadpool(state.storage.writable):
        progress = state.catalogue.progress()
        indexing = {"done": progress.done, "total": progress.total}
        return JSONResponse({"status": "ready", "indexing": indexing})
    return problem(
        503,
        "the packages directory is not writable",
        "not-ready",
        hint="check the volume's permissions and free space",
    )


async def metrics(request: Request) -> Response:
    """Prometheus exposition; needs the `list` permission when listing is authenticated."""
    state: IndexState = request.app.state.index
    token = state.settings.metrics_token
    if not metrics_token_matches(request.headers.get("authorization"), token):
        try:
            await authorize(request, "list", None)
        except AuthError as exc:
            return auth_problem(exc)
    return Response(await run_in_threadpool(state.metrics.render), media_type=METRICS_TYPE)


def create_app(
    storage: Storage, settings: Settings, authenticator: Authenticator | None = None
) -> Starlette:
    """Build one independent index app: read the cache, list the directory, wire the routes.

    Files the cache does not cover are only listed here (pending): a page indexes its own
    project's pending files on first request, and the poll thread indexes the rest.
    """
    if authenticator is None:
        authenticator = authenticator_from(settings)
    if isinstance(storage, LocalStorage):
        storage.prepare()
    catalogue = Catalogue(storage, debounce_saves=True)
    changed = catalogue.load(index=False)
    pages = PageSet(catalogue, storage)
    # Pages on disk are current unless files changed while we were down (or were never written).
    fresh = storage.read_state("simple/index.v1_json") is None
    pages.rebuild(catalogue.projects if fresh else changed)
    if changed or fresh:
        catalogue.save()
    counters = Metrics(catalogue, multiprocess_dir_from_env())
    authenticator.on_refusal = lambda reason: counters.auth_refusals.labels(reason).inc()
    counters.registry.register(PendingCollector(catalogue))
    counters.registry.register(DiskCollector(storage))
    state = IndexState(storage, settings, authenticator, catalogue, pages, counters)
    if settings.trusted_publishing is not None:
        config = load_trusted_publishing(settings.trusted_publishing)
        state.publisher = TrustedPublisher(config, settings.effective_tokens_file)
    progress = catalogue.progress()
    if progress.total:
        logger.info(
            "%d files to index in the background (%d cached)",
            progress.total,
            len(catalogue.files),
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        thread = threading.Thread(target=state.poll, name="releasekit-poll", daemon=True)
        thread.start()
        try:
            yield
        finally:
            state.stop.set()
            await run_in_threadpool(thread.join, 5)
            await run_in_threadpool(catalogue.flush)
            authenticator.close()

    routes = [
        Route("/", welcome_endpoint, methods=["GET", "HEAD"]),
        Route("/", upload_endpoint, methods=["POST"]),
        Route("/legacy/", upload_endpoint, methods=["POST"]),
        Route("/legacy", upload_endpoint, methods=["POST"]),
        Route("/packages/", find_links_page, methods=["GET", "HEAD"]),
        Route("/packages", find_links_page, methods=["GET", "HEAD"]),
        Route("/packages/{filename}", package_file, methods=["GET", "HEAD"]),
        Route("/bundles/{bundle}/{lock}", bundle_lock, methods=["GET", "HEAD"]),
        Route("/-/auth", auth_request, methods=["GET", "HEAD"]),
        Route(settings.health_endpoint, health, methods=["GET", "HEAD"]),
        Route("/ready", ready, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
        *OIDC_ROUTES,
        Route(
            "/integrity/{project}/{version}/{filename}/provenance",
            provenance_endpoint,
            methods=["GET", "HEAD"],
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(IndexFront, state=state)],
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_allowed, ClientDisconnect: _client_gone},
    )
    app.state.index = state
    # Trailing-slash redirects would hit POST /legacy too; twine aborts on redirects.
    app.router.redirect_slashes = False
    return app


def authenticator_from(settings: Settings, **overrides: Any) -> Authenticator:
    """The authenticator `settings` describe (`overrides`: e.g. a test's clock)."""
    policy = ThrottlePolicy(
        enabled=settings.auth_throttle,
        free=settings.auth_throttle_failures,
        max_delay=settings.auth_throttle_max_delay,
        user_free=settings.auth_throttle_user_failures,
        user_max_delay=settings.auth_throttle_user_max_delay,
    )
    return Authenticator.from_settings(
        passwords=settings.passwords,
        authenticate=settings.authenticate,
        tokens_file=settings.effective_tokens_file,
        throttle=policy,
        threads=settings.auth_threads or None,
        cache_ttl=settings.auth_cache_ttl,
        **overrides,
    )


async def _client_gone(request: Request, exc: Any) -> Response:
    # Any client can hang up mid-request: one line, not an ASGI traceback per disconnect.
    client = request.client.host if request.client else "-"
    logger.info("client %s disconnected during %s %s", client, request.method, request.url.path)
    return Response(status_code=499)  # nginx's "client closed request", for the access log


async def _not_found(request: Request, exc: Any) -> Response:
    return problem(404, f"nothing at {request.url.path}", "not-found")


async def _not_allowed(request: Request, exc: Any) -> Response:
    return problem(
        405,
        f"{request.method} is not allowed on {request.url.path}",
        "not-allowed",
        hint="upload with POST to / or /legacy/; read with GET",
    )
