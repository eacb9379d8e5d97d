"""`releasekit server index create|list|remove|acl`: thin click commands over indexes.py.

Each works on the root store (`-D/--packages-dir`, `--storage s3://...` or the settings file),
where the registry lives; a running server picks up the change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from releasekit.cli.admin_cmds import packages_dir_option
from releasekit.errors import IndexServerError
from releasekit.server.indexes import (
    ROOT_INDEX,
    IndexConfig,
    config_for,
    create_index,
    describe_acl,
    parse_actions,
    read_registry,
    remove_index,
    set_acl,
)

_STORAGE = click.option(
    "--storage", help="s3://bucket/prefix when the index keeps its files in S3."
)
_CONFIG = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Settings TOML file (as for `releasekit server run`).",
)


def index_settings(config_file: Path | None, packages_dir: Path | None, storage: str | None) -> Any:
    """The server's settings from the same sources as `server run` (flags win)."""
    from releasekit.server.settings import load_settings

    return load_settings({"packages_dir": packages_dir, "storage": storage}, config_file)


def root_storage(config_file: Path | None, packages_dir: Path | None, storage: str | None) -> Any:
    """The root store, where the registry lives."""
    from releasekit.server.process import make_storage

    return make_storage(index_settings(config_file, packages_dir, storage))


@click.group("index")
def index_group() -> None:
    """Named indexes on one server: /NAME/simple/ and /NAME/legacy/ (root is the default)."""


@index_group.command("create")
@click.argument("name")
@click.option("--base", "bases", multiple=True, help="Read through this index (repeatable).")
@click.option("--description", default="", help="One line shown by `index list`.")
@click.option(
    "--overwrite/--no-overwrite",
    default=None,
    help="Let uploads replace files here (default: the server's --overwrite).",
)
@packages_dir_option
@_STORAGE
@_CONFIG
def create_command(
    name: str,
    bases: tuple[str, ...],
    description: str,
    overwrite: bool | None,
    packages_dir: Path | None,
    storage: str | None,
    config_file: Path | None,
) -> None:
    """Create the index NAME, served under /NAME/."""
    from releasekit.server.process import make_storage

    settings = index_settings(config_file, packages_dir, storage)
    config = IndexConfig(name, bases=bases, description=description, overwrite=overwrite)
    created = create_index(make_storage(settings), config)
    make_storage(settings, created.name).prepare()
    inherits = f", inherits {', '.join(created.bases)}" if created.bases else ""
    click.echo(f"created index {created.name}{inherits}: /{created.name}/simple/")


@index_group.command("list")
@packages_dir_option
@_STORAGE
@_CONFIG
def list_command(packages_dir: Path | None, storage: str | None, config_file: Path | None) -> None:
    """The indexes, their bases, ACLs and descriptions."""
    configs = read_registry(root_storage(config_file, packages_dir, storage))
    root = config_for(configs, ROOT_INDEX)
    click.echo(f"{ROOT_INDEX}\t(default: /simple/)\tacl={describe_acl(root)}")
    for config in sorted(configs.values(), key=lambda c: c.name):
        if config.name == ROOT_INDEX:
            continue
        bases = f"bases={','.join(config.bases)}" if config.bases else "bases=-"
        line = f"{config.name}\t{bases}\tacl={describe_acl(config)}\t{config.description}"
        click.echo(line.rstrip())


@index_group.command("acl")
@click.argument("name")
@click.argument("principal")
@click.argument("actions")
@packages_dir_option
@_STORAGE
@_CONFIG
def acl_command(
    name: str,
    principal: str,
    actions: str,
    packages_dir: Path | None,
    storage: str | None,
    config_file: Path | None,
) -> None:
    """Grant PRINCIPAL exactly ACTIONS on index NAME (read,upload,promote,admin or none).

    PRINCIPAL: a user, token:<id>, :anonymous: or :authenticated:. An index with no entries
    follows the server-wide rules (-a and the roles); see docs/indexes.md.
    """
    wanted = parse_actions(actions)
    config = set_acl(root_storage(config_file, packages_dir, storage), name, principal, wanted)
    granted = ",".join(sorted(wanted)) or "nothing"
    click.echo(f"index {config.name}: {principal} may now {granted}; acl={describe_acl(config)}")


@index_group.command("overwrite")
@click.argument("name")
@click.argument("setting", type=click.Choice(["on", "off", "server"]))
@packages_dir_option
@_STORAGE
@_CONFIG
def overwrite_command(
    name: str,
    setting: str,
    packages_dir: Path | None,
    storage: str | None,
    config_file: Path | None,
) -> None:
    """Whether uploads to NAME may replace files: on, off, or server (follow --overwrite)."""
    from releasekit.server.indexes import set_overwrite

    root = root_storage(config_file, packages_dir, storage)
    config = set_overwrite(root, name, {"on": True, "off": False, "server": None}[setting])
    click.echo(f"index {config.name}: overwrite {setting}")


@index_group.command("remove")
@click.argument("name")
@click.option(
    "--delete-files", is_flag=True, help="Also delete the index's files (refused otherwise)."
)
@packages_dir_option
@_STORAGE
@_CONFIG
def remove_command(
    name: str,
    delete_files: bool,
    packages_dir: Path | None,
    storage: str | None,
    config_file: Path | None,
) -> None:
    """Remove the index NAME; refused while it holds files unless --delete-files."""
    from releasekit.server.process import make_storage

    root = root_storage(config_file, packages_dir, storage)
    read_registry(root)  # a broken registry is named before anything is touched
    own = make_storage(index_settings(config_file, packages_dir, storage), name)
    files = own.scan() if own.exists() else []
    if files and not delete_files:
        raise IndexServerError(
            f"index {name!r} holds {len(files)} files",
            hint="promote what you need elsewhere, then run again with --delete-files",
        )
    remove_index(root, name)
    for stored in files:
        own.delete(stored.filename)
    cached = _drop_upstream_cache(index_settings(config_file, packages_dir, storage), name)
    click.echo(
        f"removed index {name}"
        + (f" and its {len(files)} files" if files else "")
        + (f" ({cached} cached upstream files dropped)" if cached else "")
    )


def _drop_upstream_cache(settings: Any, name: str) -> int:
    """Empty the index's upstream cache: an index made later under this name must not serve it."""
    from releasekit.server.upstream_state import cache_storage

    cache = cache_storage(settings, name)
    if not cache.exists():
        return 0
    files = cache.scan()
    for stored in files:
        cache.delete(stored.filename)
    for prefix in ("sha256", "pages", "metadata"):
        cache.clear_state(prefix)
    return len(files)


@index_group.command("upstream")
@click.argument("name")
@click.option("--url", help="The upstream simple index, e.g. https://pypi.org/simple/.")
@click.option("--cooldown", help="Offer only files public upstream this long (7d, 12h, 0).")
@click.option("--reserve", multiple=True, help="Never read names matching this glob upstream.")
@click.option("--offline/--online", default=None, help="Serve only what is cached (air-gapped).")
@click.option("--off", is_flag=True, help="Stop reading through (the cache is kept).")
@click.option("--ttl", help="How long a cached project page stays fresh (default 10m).")
@click.option("--allow-host", multiple=True, help="Another host file links may name.")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Page deadline, seconds.")
@click.option("--max-page-size", type=click.IntRange(min=1024), help="Largest page, bytes.")
@packages_dir_option
@_STORAGE
@_CONFIG
def upstream_command(
    name: str,
    off: bool,
    reserve: tuple[str, ...],
    allow_host: tuple[str, ...],
    packages_dir: Path | None,
    storage: str | None,
    config_file: Path | None,
    **options: Any,
) -> None:
    """Read projects NAME does not hold through an upstream index (off by default).

    Local names and --reserve globs never come from upstream. Without options: show it.
    """
    from releasekit.server.upstream import (
        UpstreamChange,
        configure_upstream,
        describe,
        parse_upstream,
    )

    given = {key: value for key, value in options.items() if value is not None}
    if off and (given or reserve or allow_host):
        raise click.UsageError("--off takes no other upstream option")
    change = UpstreamChange(
        off=off, reserve=reserve or None, allow_hosts=allow_host or None, **given
    )
    root = root_storage(config_file, packages_dir, storage)
    if change == UpstreamChange():
        config = config_for(read_registry(root), name)
    else:
        config = configure_upstream(root, name, change)
    click.echo(f"{config.name}: {describe(parse_upstream(config.upstream))}")
