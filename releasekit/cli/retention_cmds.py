"""`releasekit server index retention NAME ...` (set the rules) and `releasekit server retention`
(run them now): thin click commands over retention.py and retention_run.py."""

from __future__ import annotations

import time
from pathlib import Path

import click

from releasekit.cli.admin_cmds import packages_dir_option
from releasekit.cli.index_cmds import _CONFIG, _STORAGE, index_settings
from releasekit.errors import IndexServerError
from releasekit.server.retention_run import Step


@click.command("retention")
@click.argument("name")
@click.option("--keep-dev", type=int, help="Dev releases (.devN) each project keeps (newest).")
@click.option("--keep-pre", type=int, help="Pre-releases (a/b/rc) each project keeps (newest).")
@click.option("--older-than", help="Only delete releases older than this, e.g. 30d.")
@click.option("--exclude", multiple=True, help="Leave projects matching this glob alone.")
@click.option("--every", help="The server applies the rules this often, e.g. 24h (default: off).")
@click.option("--off", is_flag=True, help="Remove the rules: nothing is deleted any more.")
@packages_dir_option
@_STORAGE
@_CONFIG
def index_retention_command(
    name: str,
    keep_dev: int | None,
    keep_pre: int | None,
    older_than: str | None,
    exclude: tuple[str, ...],
    every: str | None,
    off: bool,
    packages_dir: Path | None,
    storage: str | None,
    config_file: Path | None,
) -> None:
    """Set the retention rules of index NAME (root is the default index).

    Finals and post-releases are never deleted, nor the newest version of a project.
    """
    from releasekit.server.process import make_storage
    from releasekit.server.retention import make_rules
    from releasekit.server.retention_run import set_retention

    given = (keep_dev, keep_pre, older_than, every, exclude or None)
    if off and any(value is not None for value in given):
        raise click.UsageError("--off turns retention off: give it alone, without rules")
    rules = (
        None
        if off
        else make_rules(
            keep_dev=keep_dev,
            keep_pre=keep_pre,
            older_than=older_than,
            exclude=exclude,
            every=every,
        )
    )
    set_retention(make_storage(index_settings(config_file, packages_dir, storage)), name, rules)
    click.echo(f"index {name}: " + ("retention off" if rules is None else rules.describe()))


@click.command("retention")
@click.option("--index", "index", help="Apply this index's rules.")
@click.option("--all", "every_index", is_flag=True, help="Apply the rules of every index.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted, delete nothing.")
@packages_dir_option
@_STORAGE
@_CONFIG
def retention_command(
    index: str | None,
    every_index: bool,
    dry_run: bool,
    packages_dir: Path | None,
    storage: str | None,
    config_file: Path | None,
) -> None:
    """Apply retention rules now (set them with `releasekit server index retention`)."""
    from releasekit.server.indexes import read_registry
    from releasekit.server.process import make_storage
    from releasekit.server.retention_plan import render_plan
    from releasekit.server.retention_run import apply_plan, open_store, plan_store, targets

    if (index is None) == (not every_index):
        raise click.UsageError("name the index: --index NAME, or --all for every index with rules")
    settings = index_settings(config_file, packages_dir, storage)
    root = make_storage(settings)
    for target in targets(read_registry(root), index):
        store = make_storage(settings, target.name)
        catalogue, pages = open_store(store)
        plan = plan_store(catalogue, target.rules, time.time())
        if dry_run:
            click.echo("\n".join(render_plan(target.name, target.rules, plan)))
            continue
        outcome = apply_plan(root, target, store, catalogue, pages, plan, _progress)
        click.echo(outcome.describe(target.name))
        if outcome.stopped:
            raise IndexServerError(outcome.stopped, hint="run again to apply the current rules")


def _progress(step: Step) -> None:
    done = "already gone" if step.gone else "deleted"
    click.echo(f"[{step.done}/{step.total}] {done} {step.filename}", err=True)
