"""`releasekit forge release` (GitHub releases) and `releasekit init` (set up a library)."""

from __future__ import annotations

import os

import click

from releasekit.cli import Context

pass_context = click.make_pass_decorator(Context)


@click.group("forge")
def forge_group() -> None:
    """Releases on the code forge (GitHub, GitHub Enterprise)."""


@forge_group.command("release")
@click.argument("version")
@click.option(
    "--api-url",
    help="REST API root; default GITHUB_API_URL, else https://api.github.com "
    "(GitHub Enterprise: https://HOST/api/v3).",
)
@click.option(
    "-R", "--repository", help="OWNER/REPO; default GITHUB_REPOSITORY, else the git remote's URL."
)
@click.option("--tag", help="The tag to release; default from tag_format.")
@click.option("--draft", is_flag=True, help="Create the release as a draft.")
@click.option(
    "--prerelease",
    type=click.Choice(["auto", "yes", "no"]),
    default="auto",
    show_default=True,
    help="Mark as a prerelease; auto = when VERSION is a PEP 440 prerelease (1.3.0rc1).",
)
@pass_context
def forge_release_cmd(
    ctx: Context,
    version: str,
    api_url: str | None,
    repository: str | None,
    tag: str | None,
    draft: bool,
    prerelease: str,
) -> None:
    """Create or update the GitHub release of VERSION (or its tag) with its changelog notes.

    The token comes from GITHUB_TOKEN and is never printed. An existing release for the tag is
    updated, so running this twice never makes two releases.
    """
    from releasekit.config import load_config
    from releasekit.forge import (
        forge_from_env,
        publish_release,
        release_spec,
        remote_url,
        resolve_repository,
    )

    forge = forge_from_env(api_url, os.environ)
    config = load_config(ctx.project_dir)
    given = repository or os.environ.get("GITHUB_REPOSITORY")
    slug = resolve_repository(given, os.environ, None if given else remote_url(ctx.project_dir))
    marked = None if prerelease == "auto" else prerelease == "yes"
    spec = release_spec(config, version, slug, tag=tag, draft=draft, prerelease=marked)
    result = publish_release(forge, spec)
    kind = "draft " if result.draft else "pre" if result.prerelease else ""
    click.echo(f"{result.action} {kind}release {result.tag} in {slug}: {result.url}")


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
