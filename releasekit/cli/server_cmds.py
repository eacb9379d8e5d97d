"""`releasekit server ...`: run the index and administer its packages directory.

Thin click commands: starting the process lives in releasekit/server/process.py (which
imports starlette and uvicorn, the `server` extra, on use only). Every command names the
packages directory `-D/--packages-dir`; flags follow pypiserver's where both have one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from releasekit.cli.admin_cmds import packages_dir_option, token_group, user_group
from releasekit.cli.index_cmds import index_group
from releasekit.cli.retention_cmds import index_retention_command, retention_command
from releasekit.errors import IndexServerError
from releasekit.server.settings import Settings, check_upload_safety, load_settings

_F = TypeVar("_F", bound=Callable[..., Any])
_CONFIG = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Settings TOML file (keys as the long flags, in a [server] table or at top level).",
)


class _UnlistedArgument(click.Argument):
    """A positional left out of the usage line (an alias kept for old scripts)."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


def _legacy_dir(*, listed: bool) -> Callable[[_F], _F]:
    """The packages directory as a positional: pypiserver's form for `run`, an alias elsewhere."""
    return click.argument(
        "legacy_dir",
        cls=click.Argument if listed else _UnlistedArgument,
        metavar="[PACKAGES_DIR]",
        required=False,
        type=click.Path(file_okay=False, path_type=Path),
    )


def _one_dir(legacy_dir: Path | None, packages_dir: Path | None) -> Path | None:
    if legacy_dir is not None and packages_dir is not None and legacy_dir != packages_dir:
        raise click.UsageError(
            f"two packages directories given ({legacy_dir} and -D {packages_dir}): pass one"
        )
    return packages_dir if packages_dir is not None else legacy_dir


def _settings(config_file: Path | None, **overrides: Any) -> Settings:
    return load_settings(overrides, config_file)


def _storage(
    config_file: Path | None, packages_dir: Path | None, index: str | None = None, **overrides: Any
) -> Any:
    """The store of the default index, or of the named `index` (which must exist)."""
    from releasekit.server.indexes import ROOT_INDEX, config_for, read_registry
    from releasekit.server.process import make_storage

    settings = _settings(config_file, packages_dir=packages_dir, **overrides)
    if index is not None and index != ROOT_INDEX:
        config_for(read_registry(make_storage(settings)), index)  # names the known ones
    return make_storage(settings, index)


_INDEX = click.option(
    "--index", help="A named index (`releasekit server index list`); default: the root one."
)


@click.group("server")
def server() -> None:
    """The bundled private package index (needs the releasekit[server] extra to run)."""


@server.command("run")
@_legacy_dir(listed=True)
@packages_dir_option
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
def run(
    legacy_dir: Path | None, packages_dir: Path | None, config_file: Path | None, **flags: Any
) -> None:
    """Serve PACKAGES_DIR (or -D DIR) as a package index (simple API, uploads, metrics)."""
    from releasekit.server.process import serve

    if flags.get("passwords") == ".":
        flags["passwords"] = None
    settings = _settings(config_file, packages_dir=_one_dir(legacy_dir, packages_dir), **flags)
    check_upload_safety(settings)
    serve(settings)


@server.command("reindex")
@_legacy_dir(listed=False)
@packages_dir_option
@click.option("--storage", help="Reindex s3://bucket/prefix instead of PACKAGES_DIR.")
@_INDEX
@_CONFIG
def reindex_command(
    legacy_dir: Path | None,
    packages_dir: Path | None,
    storage: str | None,
    index: str | None,
    config_file: Path | None,
) -> None:
    """Rebuild the catalogue, metadata sidecars and pages from the files alone."""
    from releasekit.server.maintenance import reindex

    report = reindex(
        _storage(config_file, _one_dir(legacy_dir, packages_dir), index, storage=storage),
        progress=lambda p: click.echo(f"indexed {p.done}/{p.total} files", err=True),
    )
    click.echo(f"indexed {report.files} files in {report.projects} projects")
    for filename, reason in report.skipped:
        click.echo(f"skipped {filename}: {reason}", err=True)


@server.command("migrate")
@click.option("--from", "source", help="Directory or s3://bucket/prefix to copy (or -D DIR).")
@click.option("--to", "target", required=True, help="Directory or s3://bucket/prefix to fill.")
@packages_dir_option
def migrate_command(source: str | None, target: str, packages_dir: Path | None) -> None:
    """Copy every file (and the yank state) between stores, verifying SHA-256; resumable."""
    from releasekit.server.migrate import migrate
    from releasekit.server.process import store_at

    if (source is None) == (packages_dir is None):
        raise click.UsageError(
            "name the store to copy once: --from DIR|s3://BUCKET/PREFIX or -D DIR"
        )
    report = migrate(
        store_at(source if source is not None else str(packages_dir)),
        store_at(target),
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
@packages_dir_option
@_INDEX
@_CONFIG
def yank_command(
    project: str,
    version: str,
    reason: str,
    packages_dir: Path | None,
    index: str | None,
    config_file: Path | None,
) -> None:
    """Yank every file of PROJECT VERSION (PEP 592): kept, but no longer chosen by resolvers."""
    from releasekit.server.maintenance import set_yanked

    storage = _storage(config_file, packages_dir, index)
    for record in set_yanked(storage, project, version, reason):
        click.echo(f"yanked {record.filename}")


@server.command("unyank")
@click.argument("project")
@click.argument("version")
@packages_dir_option
@_INDEX
@_CONFIG
def unyank_command(
    project: str,
    version: str,
    packages_dir: Path | None,
    index: str | None,
    config_file: Path | None,
) -> None:
    """Undo `yank` for every file of PROJECT VERSION."""
    from releasekit.server.maintenance import set_yanked

    storage = _storage(config_file, packages_dir, index)
    for record in set_yanked(storage, project, version, None):
        click.echo(f"unyanked {record.filename}")


@server.command("remove")
@click.argument("project")
@click.argument("version")
@packages_dir_option
@_INDEX
@_CONFIG
def remove_command(
    project: str,
    version: str,
    packages_dir: Path | None,
    index: str | None,
    config_file: Path | None,
) -> None:
    """Delete every file of PROJECT VERSION from the packages directory."""
    from releasekit.server.maintenance import remove_release

    storage = _storage(config_file, packages_dir, index)
    for record in remove_release(storage, project, version):
        click.echo(f"removed {record.filename}")


@server.command("status")
@click.argument("project")
@click.argument("status", type=click.Choice(["active", "archived", "quarantined", "deprecated"]))
@click.option("--reason", default="", help="One line shown to clients (PEP 792).")
@packages_dir_option
@_INDEX
@_CONFIG
def status_command(
    project: str,
    status: str,
    reason: str,
    packages_dir: Path | None,
    index: str | None,
    config_file: Path | None,
) -> None:
    """Set PROJECT's PEP 792 status; quarantined hides and stops serving its files."""
    from releasekit.server.maintenance import set_project_status
    from releasekit.server.status import parse_status

    storage = _storage(config_file, packages_dir, index)
    (name,) = set_project_status(storage, project, parse_status(status, reason))
    click.echo(f"{name} is now {status}" + (f" ({reason})" if reason else ""))


server.add_command(user_group)
server.add_command(index_group)
server.add_command(token_group)
server.add_command(retention_command)
index_group.add_command(index_retention_command)
