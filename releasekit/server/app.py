"""`create_app(storage, settings)`: the index as a Starlette app; all state hangs off the app.

Routes: `/` (welcome, and POST upload), `/legacy/` (POST upload), health, `/ready`, `/metrics`,
bundle locks, `/_/oidc/...` (trusted publishing, `oidc_route.py`), `POST /_/promote`
(`promote_route.py`) and `/integrity/.../provenance` (PEP 740). The read paths (`/simple/...`,
`/packages/<file>` and `<file>.metadata`) are answered by the front (front.py) before the
router sees them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from releasekit.errors import IndexServerError
from releasekit.server.acl import IndexNotFound
from releasekit.server.attestation_route import provenance_endpoint
from releasekit.server.auth import Authenticator, AuthError
from releasekit.server.bundle_locks import bundle_lock
from releasekit.server.catalogue import Catalogue
from releasekit.server.faults import StorageFaults
from releasekit.server.find_links import find_links_page
from releasekit.server.front import IndexFront
from releasekit.server.gate import auth_request
from releasekit.server.indexes import LOCAL_DIR, ROOT_INDEX
from releasekit.server.indexset import IndexSet
from releasekit.server.metrics import CONTENT_TYPE as METRICS_TYPE
from releasekit.server.metrics import Metrics, metrics_token_matches, multiprocess_dir_from_env
from releasekit.server.oidc import TrustedPublisher, load_trusted_publishing
from releasekit.server.oidc_route import OIDC_ROUTES
from releasekit.server.pages import PageSet
from releasekit.server.problems import problem
from releasekit.server.promote_route import promote_endpoint
from releasekit.server.retention_schedule import start_schedule
from releasekit.server.settings import Settings
from releasekit.server.state import (
    DiskCollector,
    IndexState,
    PendingCollector,
    auth_problem,
    authorize,
)
from releasekit.server.storage import Storage, StorageUnavailable
from releasekit.server.throttle import ThrottlePolicy
from releasekit.server.upload_route import upload_endpoint
from releasekit.server.upstream_state import (
    UpstreamState,
    cache_storage,
    local_project,
    registry_reader,
)
from releasekit.server.welcome import welcome_endpoint

logger = logging.getLogger("releasekit.server")


async def health(request: Request) -> Response:
    """Liveness: the process answers. Never authenticated."""
    instance = request.app.state.index.settings.instance_id
    # Which worker process answered: with --workers N a connection stays on one worker, so a
    # client (or a test) can tell which one served the requests it sends on that connection.
    headers = {"x-releasekit-worker": str(os.getpid())}
    if instance:
        headers["x-releasekit-instance"] = instance
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


def open_index(
    storage: Storage,
    settings: Settings,
    authenticator: Authenticator,
    metrics: Metrics | None = None,
    name: str = ROOT_INDEX,
    registry_store: Storage | None = None,
) -> IndexState:
    """One index's state over its store: read the cache, list the directory, ready the pages.

    Files the cache does not cover are only listed here (pending): a page indexes its own
    project's pending files on first request, and the poll thread indexes the rest.
    `metrics` None makes the server's counters (the default index's); `registry_store` is
    the root store, where the registry lives (None: `storage` is the root store).
    """
    storage.prepare()
    catalogue = Catalogue(storage, debounce_saves=True)
    catalogue.writes_cache = False  # until this process leads (IndexState.try_lead)
    changed = catalogue.load(index=False)
    pages = PageSet(catalogue, storage)
    # Pages on disk are current unless files changed while we were down (or were never written).
    fresh = storage.read_state("simple/index.v1_json") is None
    pages.rebuild(catalogue.projects if fresh else changed)
    if changed or fresh:
        catalogue.save()
    if metrics is None:
        metrics = Metrics(catalogue, multiprocess_dir_from_env())
        authenticator.on_refusal = lambda reason: metrics.auth_refusals.labels(reason).inc()
        metrics.registry.register(PendingCollector(catalogue))
        metrics.registry.register(DiskCollector(storage))
    state = IndexState(storage, settings, authenticator, catalogue, pages, metrics, name=name)
    catalogue.on_indexed = metrics.files_indexed.inc
    state.try_lead()
    state.upstream = UpstreamState(
        read_settings=registry_reader(registry_store or storage, name),
        index=name,
        cache=cache_storage(settings, name),
        metrics=metrics,
        is_local=lambda project: local_project(catalogue, project),
        reload_every=settings.poll_interval,
    )
    progress = catalogue.progress()
    if progress.total:
        logger.info(
            "%s%d files to index in the background (%d cached)",
            "" if name == ROOT_INDEX else f"index {name}: ",
            progress.total,
            len(catalogue.files),
        )
    return state


def create_app(
    storage: Storage,
    settings: Settings,
    authenticator: Authenticator | None = None,
    index_storage: Callable[[str], Storage] | None = None,
) -> Starlette:
    """Build one independent index app: the default index over `storage`, and the named
    indexes its registry lists, each over `index_storage(name)` (`make_storage`)."""
    if authenticator is None:
        authenticator = authenticator_from(settings)
    auth = authenticator
    state = open_index(storage, settings, auth)
    if settings.trusted_publishing is not None:
        config = load_trusted_publishing(settings.trusted_publishing)
        state.publisher = TrustedPublisher(config, settings.effective_tokens_file)
    stores = index_storage or (lambda name: default_index_storage(storage, name))

    def open_named(name: str) -> IndexState:
        named = open_index(stores(name), settings, auth, state.metrics, name, storage)
        named.publisher, named.family = state.publisher, indexes
        return named

    indexes = IndexSet(state, storage, open_named)
    state.family = indexes
    indexes.refresh()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        thread = threading.Thread(target=state.poll, name="releasekit-poll", daemon=True)
        thread.start()
        retention = start_schedule(state)
        registry = threading.Thread(
            target=indexes.poll, args=(settings.poll_interval,), name="releasekit-indexes"
        )
        registry.daemon = True
        registry.start()
        try:
            yield
        finally:
            state.stop.set()
            indexes.stop.set()  # before the joins: the registry thread waits on it
            await run_in_threadpool(thread.join, 5)
            await run_in_threadpool(retention.join, 5)
            await run_in_threadpool(registry.join, 5)
            await run_in_threadpool(indexes.close)
            try:
                await run_in_threadpool(state.catalogue.flush)
            except StorageUnavailable as exc:
                # The catalogue is a cache of the store: the next start rebuilds what it lacks.
                logger.error("the catalogue was not saved on the way out: %s", exc)
            auth.close()

    routes = [
        Route("/", welcome_endpoint, methods=["GET", "HEAD"]),
        Route("/", upload_endpoint, methods=["POST"]),
        Route("/legacy/", upload_endpoint, methods=["POST"]),
        Route("/legacy", upload_endpoint, methods=["POST"]),
        Route("/packages/", find_links_page, methods=["GET", "HEAD"]),
        Route("/packages", find_links_page, methods=["GET", "HEAD"]),
        # GET and HEAD never get here (the front answers them): the route makes others a 405.
        Route("/packages/{filename}", _not_found, methods=["GET", "HEAD"]),
        Route("/bundles/{bundle}/{lock}", bundle_lock, methods=["GET", "HEAD"]),
        Route("/-/auth", auth_request, methods=["GET", "HEAD"]),
        Route(settings.health_endpoint, health, methods=["GET", "HEAD"]),
        Route("/ready", ready, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
        *OIDC_ROUTES,
        Route("/_/promote", promote_endpoint, methods=["POST"]),
        Route(
            "/integrity/{project}/{version}/{filename}/provenance",
            provenance_endpoint,
            methods=["GET", "HEAD"],
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(StorageFaults), Middleware(IndexFront, state=state)],
        lifespan=lifespan,
        exception_handlers={
            404: _not_found,
            405: _not_allowed,
            IndexNotFound: _no_index,
            ClientDisconnect: _client_gone,
        },
    )
    app.state.index = state
    app.state.indexes = indexes
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


def default_index_storage(root: Storage, name: str) -> Storage:
    """A named index's store beside a root store made without settings (tests, tools):
    `<root>/.indexes/<name>/` for a local directory. S3 servers pass `index_storage`."""
    from releasekit.server.localstore import LocalStorage

    if not isinstance(root, LocalStorage):
        raise IndexServerError(
            f"no store for index {name!r} beside {root.describe()}",
            hint="build the app with index_storage=lambda name: make_storage(settings, name)",
        )
    return LocalStorage(root.directory / LOCAL_DIR / name)


async def _no_index(request: Request, exc: Any) -> Response:
    return problem(
        404,
        str(exc.detail),
        "unknown-index",
        hint="create it with `releasekit server index create NAME`",
    )


async def _not_found(request: Request, exc: Any) -> Response:
    if isinstance(exc, IndexNotFound):  # Starlette asks the 404 handler before the class one
        return await _no_index(request, exc)
    return problem(404, f"nothing at {request.url.path}", "not-found")


async def _not_allowed(request: Request, exc: Any) -> Response:
    return problem(
        405,
        f"{request.method} is not allowed on {request.url.path}",
        "not-allowed",
        hint="upload with POST to / or /legacy/; read with GET",
    )
