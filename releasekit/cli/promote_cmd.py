"""`releasekit promote NAME VERSION --from INDEX --to INDEX`: on the stores, or over HTTP (--url)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from releasekit.errors import PublishError

_DIR = click.Path(file_okay=False, path_type=Path)
_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


@click.command("promote")
@click.argument("project")
@click.argument("version")
@click.option("--from", "source", required=True, help="The index to promote from (root: default).")
@click.option("--to", "target", required=True, help="The index to promote to.")
@click.option("--include-yanked", is_flag=True, help="Promote yanked files too, yanked.")
@click.option("--url", help="A running index's root URL: promote over HTTP (POST /_/promote).")
@click.option("-t", "--token", envvar="RELEASEKIT_PROMOTE_TOKEN", help="API token for --url.")
@click.option("-D", "--packages-dir", type=_DIR, help="The server's packages directory.")
@click.option("--storage", help="s3://bucket/prefix when the index keeps its files in S3.")
@click.option("--config", "config_file", type=_FILE, help="Server settings TOML file.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def promote_cmd(project: str, version: str, source: str, target: str, include_yanked: bool,
                url: str | None, token: str | None, packages_dir: Path | None,
                storage: str | None, config_file: Path | None, as_json: bool) -> None:  # fmt: skip
    """Copy the exact files of PROJECT VERSION from one index to another (no rebuild)."""
    from releasekit.cli.promote_shell import on_stores, over_http

    if url is not None and (packages_dir or storage or config_file):
        raise PublishError("--url talks to a running index; -D/--storage/--config work on stores")
    if url is not None:
        promotion = over_http(url, token, project, version, source, target, include_yanked)
    else:
        promotion = on_stores(
            config_file, packages_dir, storage, project, version, source, target, include_yanked
        )
    if as_json:
        click.echo(json.dumps(promotion.to_json(), indent=1))
        return
    for promoted in promotion.files:
        click.echo(f"{promoted.sha256}  {promoted.filename}  {promoted.action}")
