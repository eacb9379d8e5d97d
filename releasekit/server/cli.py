"""`releasekit server ...`: run the index and administer its packages directory.

Starlette and uvicorn (the `server` extra) are imported inside `run` only, so this module and
the admin commands import without them. Flags follow pypiserver's where both have one.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from releasekit.errors import IndexServerError
from releasekit.server.settings import ENV_PREFIX, Settings, check_upload_safety, load_settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client in each worker
_CONFIG = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Settings TOML file (keys as the long flags, in a [server] table or at top level).",
)


def _packages_option(func: Any) -> Any:
    return click.option(
        "-D",
        "--packages-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="The packages directory (default: settings file, RELEASEKIT_SERVER_PACKAGES_DIR).",
    )(func)


def _settings(config_file: Path | None, **overrides: Any) -> Settings:
    return load_settings(overrides, config_file)


def _storage(settings: Settings) -> Any:
    if settings.storage:
        from releasekit.server.s3 import parse_s3_url
        from releasekit.server.s3store import S3Storage

        return S3Storage(parse_s3_url(settings.storage))
    from releasekit.server.localstore import LocalStorage

    return LocalStorage(settings.packages_dir)


def _check_replicas(settings: Settings) -> None:
    """Refuse several writers on a store that does not honour conditional creates."""
    from releasekit.server.probe import probe_directory, refuse_unless_honoured

    if settings.single_replica:
        return
    if settings.storage:
        from releasekit.server.s3store import probe_conditional_create
        from releasekit.server.storage import StorageUnavailable

        storage = _storage(settings)
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


@click.group("server")
def server() -> None:
    """The bundled private package index (needs the releasekit[server] extra to run)."""


@server.command("run")
@click.argument("packages_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("-p", "--port", type=int, help="Port to listen on.  [default: 8080]")
@click.option("-i", "-H", "--host", "host", help="Interface to bind.  [default: 127.0.0.1]")
@click.option("-P", "--passwords", help="htpasswd file with bcrypt entries ('.' for none).")
@click.option(
    "-a", "--authenticate", help="Actions needing credentials: update,download,list or '.'."
)
@click.option("-o", "--overwrite", is_flag=True, default=None, help="Allow replacing files.")
@click.option("--cache-control", type=int, help="max-age in seconds for files.  [default: 1 year]")
@click.option("--health-endpoint", help="Path of the liveness endpoint.  [default: /health]")
@click.option("--fallback-url", help="Redirect unknown projects here (off by default).")
@click.option("--max-upload-size", help="Largest accepted file, e.g. 100M.  [default: 100M]")
@click.option("--url-prefix", help="Serve under this path, e.g. /pypi.")
@click.option("--workers", type=int, help="Worker processes.  [default: 1]")
@click.option("--storage", help="Files in s3://bucket/prefix instead of PACKAGES_DIR.")
@click.option(
    "--single-replica",
    is_flag=True,
    default=None,
    help="Skip the conditional-create probe: this is the only replica writing the store.",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="[default: info]",
)
@click.option(
    "--tokens-file", help="API tokens file.  [default: <packages>/.releasekit/tokens.json]"
)
@click.option(
    "--auth-throttle/--no-auth-throttle",
    default=None,
    help="Throttle failed logins per address and user (429).  [default: on]",
)
@click.option("--auth-throttle-failures", type=int, help="Free failures per address.  [default: 5]")
@click.option(
    "--auth-throttle-max-delay", type=float, help="Longest address block, s.  [default: 300]"
)
@click.option(
    "--auth-throttle-user-failures", type=int, help="Free failures per user.  [default: 20]"
)
@click.option(
    "--auth-throttle-user-max-delay", type=float, help="Longest user block, s.  [default: 30]"
)
@click.option("--auth-threads", type=int, help="Password-check threads.  [default: CPUs/2]")
@click.option(
    "--auth-cache-ttl", type=float, help="Remember a verified password, s.  [default: 120]"
)
@click.option(
    "--header-timeout", type=float, help="Seconds to send request headers.  [default: 10]"
)
@click.option(
    "--body-timeout", type=float, help="Longest silence within a request body, s.  [default: 30]"
)
@click.option("--keep-alive-timeout", type=int, help="Idle seconds between requests.  [default: 5]")
@click.option(
    "--max-connections", type=int, help="Connection cap.  [default: from the open-file limit]"
)
@click.option(
    "--server-header/--no-server-header",
    default=None,
    help="Send `Server: uvicorn`.  [default: off]",
)
@click.option(
    "--accel-redirect", help="Behind nginx: internal location for X-Accel-Redirect downloads."
)
@click.option(
    "--metrics-token",
    help="Bearer token that may read /metrics (or RELEASEKIT_SERVER_METRICS_TOKEN).",
)
@click.option(
    "--metrics-token-file", help="File holding the /metrics bearer token (a mounted secret)."
)
@click.option(
    "--allow-anonymous-uploads",
    is_flag=True,
    default=None,
    help="Allow a password file with uploads that need none (refused otherwise).",
)
@_CONFIG
def run(packages_dir: Path | None, config_file: Path | None, **flags: Any) -> None:
    """Serve PACKAGES_DIR as a package index (simple API, uploads, health, metrics)."""
    if flags.get("passwords") == ".":
        flags["passwords"] = None
    settings = _settings(config_file, packages_dir=packages_dir, **flags)
    check_upload_safety(settings)
    try:
        import uvicorn
    except ImportError:
        raise click.UsageError(
            "the index server needs the server extra: pip install 'releasekit[server]'"
        ) from None
    settings.packages_dir.mkdir(parents=True, exist_ok=True)
    _configure_logging(settings.log_level)
    _check_replicas(settings)
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
            uvicorn.run(
                "releasekit.server.cli:app_from_env",
                factory=True,
                workers=settings.workers,
                **common,
            )
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
    _configure_logging(settings.log_level)
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

    return create_app(_storage(settings), settings)


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


def _configure_logging(level: str) -> None:
    # Our own server process: skip the thread and process lookups every log record makes.
    # The access log writes a record per request, and those lookups were a third of its cost.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logger = logging.getLogger("releasekit.server")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())


@server.command("reindex")
@click.argument("packages_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--storage", help="Reindex s3://bucket/prefix instead of PACKAGES_DIR.")
@_CONFIG
def reindex_command(
    packages_dir: Path | None, storage: str | None, config_file: Path | None
) -> None:
    """Rebuild the catalogue, metadata sidecars and pages from the files alone."""
    from releasekit.server.maintenance import reindex

    report = reindex(
        _storage(_settings(config_file, packages_dir=packages_dir, storage=storage)),
        progress=lambda p: click.echo(f"indexed {p.done}/{p.total} files", err=True),
    )
    click.echo(f"indexed {report.files} files in {report.projects} projects")
    for filename, reason in report.skipped:
        click.echo(f"skipped {filename}: {reason}", err=True)


def _store_at(where: str) -> Any:
    """A directory path or s3://bucket/prefix as a Storage."""
    return _storage(
        load_settings(
            {"storage": where} if where.startswith("s3://") else {"packages_dir": where}, env={}
        )
    )


@server.command("migrate")
@click.option("--from", "source", required=True, help="Directory or s3://bucket/prefix to copy.")
@click.option("--to", "target", required=True, help="Directory or s3://bucket/prefix to fill.")
def migrate_command(source: str, target: str) -> None:
    """Copy every file (and the yank state) between stores, verifying SHA-256; resumable."""
    from releasekit.server.migrate import migrate

    report = migrate(
        _store_at(source),
        _store_at(target),
        progress=lambda s: click.echo(f"[{s.done}/{s.total}] {s.action} {s.filename}", err=True),
    )
    click.echo(
        f"copied {report.copied} files ({report.bytes_copied} bytes), "
        f"{report.present} already there, {len(report.conflicts)} conflicts"
    )
    if report.conflicts:
        raise IndexServerError(
            f"{len(report.conflicts)} names differ at the destination: {', '.join(report.conflicts)}",
            hint="nothing was overwritten; compare them and remove the wrong copy, then run again",
        )


@server.command("yank")
@click.argument("project")
@click.argument("version")
@click.option("--reason", default="", help="Why (shown by pip and uv).")
@_packages_option
@_CONFIG
def yank_command(
    project: str, version: str, reason: str, packages_dir: Path | None, config_file: Path | None
) -> None:
    """Yank every file of PROJECT VERSION (PEP 592): kept, but no longer chosen by resolvers."""
    from releasekit.server.maintenance import set_yanked

    storage = _storage(_settings(config_file, packages_dir=packages_dir))
    for record in set_yanked(storage, project, version, reason):
        click.echo(f"yanked {record.filename}")


@server.command("unyank")
@click.argument("project")
@click.argument("version")
@_packages_option
@_CONFIG
def unyank_command(
    project: str, version: str, packages_dir: Path | None, config_file: Path | None
) -> None:
    """Undo `yank` for every file of PROJECT VERSION."""
    from releasekit.server.maintenance import set_yanked

    storage = _storage(_settings(config_file, packages_dir=packages_dir))
    for record in set_yanked(storage, project, version, None):
        click.echo(f"unyanked {record.filename}")


@server.command("remove")
@click.argument("project")
@click.argument("version")
@_packages_option
@_CONFIG
def remove_command(
    project: str, version: str, packages_dir: Path | None, config_file: Path | None
) -> None:
    """Delete every file of PROJECT VERSION from the packages directory."""
    from releasekit.server.maintenance import remove_release

    storage = _storage(_settings(config_file, packages_dir=packages_dir))
    for record in remove_release(storage, project, version):
        click.echo(f"removed {record.filename}")


@server.command("status")
@click.argument("project")
@click.argument("status", type=click.Choice(["active", "archived", "quarantined", "deprecated"]))
@click.option("--reason", default="", help="One line shown to clients (PEP 792).")
@_packages_option
@_CONFIG
def status_command(
    project: str, status: str, reason: str, packages_dir: Path | None, config_file: Path | None
) -> None:
    """Set PROJECT's PEP 792 status; quarantined hides and stops serving its files."""
    from releasekit.server.maintenance import set_project_status
    from releasekit.server.status import parse_status

    storage = _storage(_settings(config_file, packages_dir=packages_dir))
    (name,) = set_project_status(storage, project, parse_status(status, reason))
    click.echo(f"{name} is now {status}" + (f" ({reason})" if reason else ""))


from releasekit.server.admin_cli import token_group, user_group  # noqa: E402

server.add_command(user_group)
server.add_command(token_group)


if __name__ == "__main__":  # `python -m releasekit.server.cli run ...` (used by the e2e tests)
    server()
