"""`releasekit forge release`: the GitHub (Enterprise) release of a version."""

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
