"""Starting the index process: uvicorn, logging, the storage, the worker factory.

No click here: the `releasekit server` commands (releasekit/cli/server_cmds.py) parse options
and call `serve`; errors are releasekit.errors exceptions. Starlette and uvicorn (the `server`
extra) are imported on use, so the admin commands import without them.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import Any

from releasekit.errors import IndexServerError
from releasekit.extras import missing_extra
from releasekit.server.settings import ENV_PREFIX, Settings, load_settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client in each worker
WORKER_FACTORY = "releasekit.server.process:app_from_env"


def make_storage(settings: Settings, index: str | None = None) -> Any:
    """The storage the index and the admin commands work on.

    `index` names a named index (indexes.py): its own store under the root one. None and
    `root` are the root store itself, the default index.
    """
    from releasekit.server.indexes import LOCAL_DIR, ROOT_INDEX, S3_SEGMENT, check_name

    named = index is not None and index != ROOT_INDEX
    if named:
        check_name(str(index))
    if settings.storage:
        from releasekit.server.s3 import parse_s3_url
        from releasekit.server.s3store import S3Storage

        url = settings.storage.rstrip("/")
        return S3Storage(parse_s3_url(f"{url}/{S3_SEGMENT}/{index}" if named else url))
    from releasekit.server.localstore import LocalStorage

    root = settings.packages_dir
    return LocalStorage(root / LOCAL_DIR / str(index) if named else root)


def store_at(where: str) -> Any:
    """A directory path or s3://bucket/prefix as a Storage."""
    return make_storage(
        load_settings(
            {"storage": where} if where.startswith("s3://") else {"packages_dir": where}, env={}
        )
    )


def check_replicas(settings: Settings) -> None:
    """Refuse several writers on a store that does not honour conditional creates."""
    from releasekit.server.probe import probe_directory, refuse_unless_honoured

    if settings.single_replica:
        return
    if settings.storage:
        from releasekit.server.s3store import probe_conditional_create
        from releasekit.server.storage import StorageUnavailable

        storage = make_storage(settings)
        try:
            result = probe_conditional_create(storage)
        except StorageUnavailable as exc:
            raise IndexServerError(
                str(exc),
                hint="check AWS_ENDPOINT_URL, the bucket name and the credentials",
            ) from None
        refuse_unless_honoured(result, storage.describe(), "--single-replica")
    elif settings.workers > 1:
        refuse_unless_honoured(
            probe_directory(settings.packages_dir),
            f"directory {settings.packages_dir}",
            "--workers 1",
        )


def serve(settings: Settings) -> None:
    """Run the index in the foreground until it is stopped (needs the server extra)."""
    try:
        import uvicorn
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc, "releasekit server")
        if missing is None:
            raise
        raise missing from None
    settings.packages_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(settings.log_level)
    check_replicas(settings)
    for level, line in startup_summary(settings):
        logging.getLogger("releasekit.server").log(level, "%s", line)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,  # our own structured access log replaces uvicorn's
        "proxy_headers": True,
        "timeout_graceful_shutdown": 10,
        **_connection_options(settings),
    }
    if settings.workers > 1:
        # Each worker process builds its own app from the environment we export here, and
        # counts into one shared metrics directory so /metrics sums over the workers.
        os.environ.update(_settings_env(settings))
        with tempfile.TemporaryDirectory(prefix="releasekit-metrics-") as shared:
            os.environ[MULTIPROC_ENV] = shared
            uvicorn.run(WORKER_FACTORY, factory=True, workers=settings.workers, **common)
        return
    uvicorn.run(_build_app(settings), **common)


def startup_summary(settings: Settings) -> list[tuple[int, str]]:
    """What a person starting the index should know: where, who may do what, what is off."""
    base = f"http://{settings.host}:{settings.port}{settings.url_prefix}"
    needed = ", ".join(sorted(settings.authenticate)) or "nothing"
    lines = [
        (
            logging.INFO,
            f"serving {settings.storage or settings.packages_dir} at {base}/ "
            f"(pip: --index-url {base}/simple/)",
        ),
        (
            logging.INFO,
            f"credentials needed for: {needed}; unknown projects: "
            + (
                f"redirected to {settings.fallback_url}"
                if settings.fallback_url
                else "404, no fallback"
            ),
        ),
    ]
    can_log_in = settings.passwords is not None or settings.effective_tokens_file.is_file()
    if "update" in settings.authenticate and not can_log_in:
        lines.append(
            (
                logging.WARNING,
                "uploads need credentials but there is no password file or "
                "token: every upload will be refused; start with -P htpasswd (create it with "
                "`releasekit server user add NAME -P htpasswd`), or -a . for an open index",
            )
        )
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.authenticate:
        lines.append(
            (
                logging.WARNING,
                f"listening on {settings.host} with no credentials needed "
                "for anything (-a .): anyone who reaches this port can upload",
            )
        )
    return lines


def app_from_env() -> Any:
    """uvicorn factory for worker processes: settings from RELEASEKIT_SERVER_* only."""
    settings = load_settings()
    configure_logging(settings.log_level)
    _connection_options(settings)  # this process's protocol class needs its limits too
    return _build_app(settings)


def _connection_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options for idle and hostile connections (see `connections.py`)."""
    from releasekit.server.connections import configure, connection_cap, raise_open_file_limit

    open_files = raise_open_file_limit()
    cap = connection_cap(open_files, settings.max_connections)
    logging.getLogger("releasekit.server").info(
        "open-file limit %d: at most %d connections, request headers within %g s",
        open_files,
        cap,
        settings.header_timeout,
    )
    return {
        "http": configure(settings.header_timeout, settings.body_timeout, cap),
        "timeout_keep_alive": settings.keep_alive_timeout,
        "server_header": settings.server_header,
    }


def _build_app(settings: Settings) -> Any:
    from releasekit.server.app import create_app

    return create_app(
        make_storage(settings), settings, index_storage=lambda name: make_storage(settings, name)
    )


def _settings_env(settings: Settings) -> dict[str, str]:
    values = {
        "packages_dir": str(settings.packages_dir),
        "authenticate": ",".join(sorted(settings.authenticate)) or ".",
        "overwrite": "1" if settings.overwrite else "0",
        "cache_control": str(settings.cache_control),
        "health_endpoint": settings.health_endpoint,
        "max_upload_size": str(settings.max_upload_size),
        "url_prefix": settings.url_prefix,
        "log_level": settings.log_level,
        "tokens_file": str(settings.effective_tokens_file),
        "storage": settings.storage,
        "single_replica": "1" if settings.single_replica else "0",
        **{
            name: str(getattr(settings, name)).lower()
            for name in (
                "auth_throttle",
                "auth_throttle_failures",
                "auth_throttle_max_delay",
                "auth_throttle_user_failures",
                "auth_throttle_user_max_delay",
                "auth_threads",
                "auth_cache_ttl",
                "header_timeout",
                "body_timeout",
                "keep_alive_timeout",
                "max_connections",
                "server_header",
            )
        },
        "accel_redirect": settings.accel_redirect,
        "allow_anonymous_uploads": "1" if settings.allow_anonymous_uploads else "0",
        "instance_id": settings.instance_id,
    }
    if settings.metrics_token:
        values["metrics_token"] = settings.metrics_token
    if settings.passwords is not None:
        values["passwords"] = str(settings.passwords)
    if settings.fallback_url:
        values["fallback_url"] = settings.fallback_url
    return {ENV_PREFIX + key.upper(): value for key, value in values.items()}


def configure_logging(level: str) -> None:
    # Our own server process: skip the thread and process lookups every log record makes.
    # The access log writes a record per request, and those lookups were a third of its cost.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logger = logging.getLogger("releasekit.server")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
