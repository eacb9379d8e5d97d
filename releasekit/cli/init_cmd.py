"""`releasekit init`: set up a library for releasekit (configuration, make targets, workflows)."""

from __future__ import annotations

import click

from releasekit.cli import Context

pass_context = click.make_pass_decorator(Context)


@click.command("init")
@click.option("--force", is_flag=True, help="Overwrite existing files that differ.")
@click.option("--dry-run", is_flag=True, help="Show every file and change; write nothing.")
@pass_context
def init_cmd(ctx: Context, force: bool, dry_run: bool) -> None:
    """Set up this library: [tool.releasekit], make targets, workflows, commit-msg hook."""
    from releasekit.init import apply_init, detect_library, plan_init, refuse_conflicts

    library = detect_library(ctx.project_dir)
    plan = plan_init(ctx.project_dir, library)
    version_at = f", __version__ in {library.version_file}" if library.version_file else ""
    click.echo(f"{library.name} {library.version} ({library.style}{version_at})")
    for edit in plan.edits:
        if edit.before is None:
            verb = "create"
        elif edit.relpath in plan.conflicts:
            verb = "overwrite" if force else "differs"
        else:
            verb = "update"
        click.echo(f"{verb:>9} {edit.relpath}")
        if dry_run:
            click.echo(edit.diff().rstrip("\n"))
    for relpath in plan.unchanged:
        click.echo(f"{'keep':>9} {relpath}")
    for note in plan.notes:
        click.echo(f"note: {note}")
    if not force:
        refuse_conflicts(plan)
    if dry_run:
        click.echo("dry run: nothing was written")
        return
    apply_init(plan)
    click.echo(
        "next: commit these files; add the secrets PRIVATE_PYPI_URL, PRIVATE_PYPI_USERNAME, "
        "PRIVATE_PYPI_PASSWORD (and STAGING_PYPI_* for develop); "
        "`pre-commit install --hook-type commit-msg`; try `releasekit release --dry-run`"
    )
