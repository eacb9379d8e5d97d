"""Release commands: version, bump, changelog, release, check. Each parses, calls, renders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from releasekit.cli import EXIT_NOTHING_TO_RELEASE, Context
from releasekit.config import Config, load_config
from releasekit.errors import ReleaseError

LEVELS = ("auto", "major", "minor", "patch", "prerelease", "release")
PRE_TYPES = ("alpha", "beta", "rc")
pass_context = click.make_pass_decorator(Context)


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    obj = ctx.find_object(Context)
    if value and obj is not None:
        obj.verbose = True


# `-v` works after the command too (`releasekit release -v`), not only before it.
verbose_option = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_verbose,
    help="Explain decisions; tracebacks on errors.",
)


def prerelease_option(help_text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """`--prerelease-type alpha|beta|rc`, one spelling on every command (`--prerelease` too)."""
    return click.option(
        "--prerelease-type",
        "--prerelease",
        "prerelease_type",
        type=click.Choice(PRE_TYPES),
        help=help_text,
    )


def _config(ctx: Context) -> Config:
    return load_config(ctx.project_dir)


def _nothing(reason: str, strict: bool) -> None:
    click.echo(reason, err=True)
    if strict:
        raise SystemExit(EXIT_NOTHING_TO_RELEASE)


@click.command("version")
@click.option("--print", "print_only", is_flag=True, help="Print only the next version (PEP 440).")
@click.option("--bump", "level", type=click.Choice(LEVELS), default="auto", show_default=True)
@prerelease_option("Channel; default from the branch.")
@click.option(
    "--strict", is_flag=True, help=f"Exit {EXIT_NOTHING_TO_RELEASE} when nothing is releasable."
)
@click.option(
    "--current", is_flag=True, help="Print the current version (newest tag, else declared)."
)
@verbose_option
@pass_context
def version_cmd(
    ctx: Context,
    print_only: bool,
    level: str,
    prerelease_type: str | None,
    strict: bool,
    current: bool,
) -> None:
    """Compute the next version from the commits since the last release."""
    from releasekit.cli.render import format_plan
    from releasekit.git import GitRepository
    from releasekit.release import ReleaseRequest, gather_state, plan_version

    config = _config(ctx)
    state = gather_state(GitRepository(config.root), config)
    if current:
        tag = state.history.current
        click.echo(str(tag.version) if tag else state.project.declared_version)
        return
    plan = plan_version(state, config, ReleaseRequest(level=level, prerelease=prerelease_type))
    if plan.next is None:
        _nothing(plan.reason, strict)
        return
    if print_only:
        click.echo(str(plan.next))
        return
    click.echo(format_plan(plan, verbose=ctx.verbose, brief=True))


@click.command("bump")
@click.argument("level", type=click.Choice(LEVELS[1:]))
@prerelease_option("Make it a prerelease of this type.")
@click.option("--dry-run", is_flag=True, help="Show the file changes; write nothing.")
@verbose_option
@pass_context
def bump_cmd(ctx: Context, level: str, prerelease_type: str | None, dry_run: bool) -> None:
    """Write the next version into the version files only (no commit, no tag)."""
    from releasekit.bump import plan_bump
    from releasekit.cli.render import echo_diffs
    from releasekit.project import apply_edits

    current, new, edits = plan_bump(_config(ctx), level, prerelease_type)
    click.echo(f"{current} -> {new}")
    echo_diffs(edits)
    if not dry_run:
        apply_edits(edits)
        click.echo(f"wrote {', '.join(edit.relpath for edit in edits)}")


@click.command("changelog")
@click.argument("version", required=False)
@click.option("--unreleased", is_flag=True, help="Only refresh the managed Unreleased block.")
@click.option("--stdout", is_flag=True, help="Print instead of writing CHANGELOG.md.")
@verbose_option
@pass_context
def changelog_cmd(ctx: Context, version: str | None, unreleased: bool, stdout: bool) -> None:
    """Print one version's notes, or bring CHANGELOG.md up to date from git history."""
    from releasekit import notes
    from releasekit.project import apply_edits

    config = _config(ctx)
    if version is not None:
        click.echo(notes.section_for(config, version).rstrip("\n"))
        return
    if stdout and not unreleased:
        click.echo(notes.full_changelog(config), nl=False)
        return
    edit = notes.changelog_update(config, only_unreleased=unreleased)
    if stdout:
        click.echo(edit.after, nl=False)
    elif edit.before == edit.after:
        click.echo(f"{edit.relpath} is up to date")
    else:
        apply_edits([edit])
        click.echo(f"updated {edit.relpath}")


def _publish_options(func: Callable[..., None]) -> Callable[..., None]:
    """--repository, --force, --no-isolation, --outdir: shared by release and publish."""
    func = click.option(
        "--outdir", default="dist", show_default=True, help="Where sdist and wheel go."
    )(func)
    func = click.option("--no-isolation", is_flag=True, help="Build in this environment.")(func)
    func = click.option(
        "--force", is_flag=True, help="Upload even if the version is on the index."
    )(func)
    return click.option(
        "--repository", help="Index NAME ([tool.releasekit.repositories], ~/.pypirc) or URL."
    )(func)


@click.command("release")
@click.argument("level", type=click.Choice(LEVELS), default="auto")
@prerelease_option("Channel; default from the branch.")
@click.option("--push-tag", is_flag=True, help="Push the branch and the tag (atomically).")
@click.option(
    "--publish", is_flag=True, help="Build and upload the sdist and wheel (before the push)."
)
@_publish_options
@click.option("--dry-run", is_flag=True, help="Print the whole plan; change nothing.")
@click.option(
    "--strict", is_flag=True, help=f"Exit {EXIT_NOTHING_TO_RELEASE} when nothing is releasable."
)
@verbose_option
@pass_context
def release_cmd(
    ctx: Context,
    level: str,
    prerelease_type: str | None,
    push_tag: bool,
    publish: bool,
    repository: str | None,
    force: bool,
    no_isolation: bool,
    outdir: str,
    dry_run: bool,
    strict: bool,
) -> None:
    """Version files, changelog, release commit, build, tag, publish, push."""
    from releasekit.cli.render import format_plan, format_steps
    from releasekit.pipeline import PublishOptions, carry_out, prepare_release
    from releasekit.release import ReleaseRequest

    config = _config(ctx)
    request = ReleaseRequest(level=level, prerelease=prerelease_type, push=push_tag)
    options = PublishOptions(repository, force, not no_isolation, outdir) if publish else None
    prepared = prepare_release(config, request, publish=options)
    if prepared.steps is None:
        assert prepared.plan is not None
        _nothing(prepared.plan.reason, strict)
        return
    if prepared.plan is not None:
        click.echo(format_plan(prepared.plan, verbose=ctx.verbose, brief=not dry_run))
    click.echo(format_steps(prepared.steps))
    if dry_run:
        click.echo("dry run: nothing was changed")
        return
    click.echo("running:")
    carry_out(config, prepared, publish=options, progress=_progress)
    click.echo(f"released {prepared.steps.version} ({prepared.steps.tag})")


def _progress(line: str) -> None:
    click.echo(f"  {line}")


@click.command("build")
@click.option("--outdir", default="dist", show_default=True, help="Where sdist and wheel go.")
@click.option("--no-isolation", is_flag=True, help="Build in this environment.")
@verbose_option
@pass_context
def build_cmd(ctx: Context, outdir: str, no_isolation: bool) -> None:
    """Build the sdist and wheel of the declared version and check their metadata."""
    from releasekit.build import build_distributions
    from releasekit.project import load_project

    config = _config(ctx)
    version = load_project(config).declared_version
    dists = build_distributions(
        config.root,
        version,
        outdir=config.root / outdir,
        isolation=not no_isolation,
        progress=_progress,
    )
    click.echo(f"built {dists.sdist.name} and {dists.wheel.name} in {outdir}/")


@click.command("publish")
@_publish_options
@click.option("--bump", "level", type=click.Choice(LEVELS), help="Release at this level first.")
@prerelease_option("Channel of the --bump release; default from the branch.")
@click.option("--skip-build", is_flag=True, help="Upload the files already in --outdir.")
@verbose_option
@pass_context
def publish_cmd(
    ctx: Context,
    repository: str | None,
    force: bool,
    no_isolation: bool,
    outdir: str,
    level: str | None,
    prerelease_type: str | None,
    skip_build: bool,
) -> None:
    """Upload the declared version to an index, refusing one that is already there."""
    from releasekit.cli.render import format_steps
    from releasekit.pipeline import PublishOptions, carry_out, prepare_release, publish_current
    from releasekit.release import ReleaseRequest

    config = _config(ctx)
    options = PublishOptions(repository, force, not no_isolation, outdir)
    if level is not None:
        request = ReleaseRequest(level=level, prerelease=prerelease_type)
        prepared = prepare_release(config, request, publish=options)
        if prepared.steps is None:
            _nothing(prepared.plan.reason if prepared.plan else "nothing to release", strict=False)
            return
        click.echo(format_steps(prepared.steps))
        carry_out(config, prepared, publish=options, progress=_progress)
        return
    uploaded = publish_current(config, options, skip_build=skip_build, progress=_progress)
    click.echo(f"published {', '.join(uploaded) or 'nothing new (already on the index)'}")


@click.command("check")
@click.argument("message_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--range", "rev_range", help="Lint every commit in A..B instead.")
@click.option("-m", "--message", help="Lint this text (e.g. a pull request title).")
@verbose_option
@pass_context
def check_cmd(
    ctx: Context, message_file: Path | None, rev_range: str | None, message: str | None
) -> None:
    """Lint commit messages with the parser the version rule uses (a commit-msg hook)."""
    from releasekit.lint import check_messages

    problems = check_messages(ctx.project_dir, message_file, rev_range, message)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise ReleaseError(
            f"{len(problems)} commit message(s) are not Conventional Commits",
            hint='write "type(scope): description", e.g. "fix(parser): accept empty footers"',
        )
    click.echo("ok: conventional commit message(s)")


COMMANDS = (version_cmd, bump_cmd, changelog_cmd, release_cmd, check_cmd, build_cmd, publish_cmd)
