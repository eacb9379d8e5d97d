"""The `releasekit` command line: thin click commands over library functions.

Exit codes (the only ones): 0 ok, 1 a ReleaseError, 2 usage error (click), and
3 = "nothing to release" when a command ran with --strict.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from releasekit import __version__
from releasekit.errors import MissingExtraError, ReleaseError
from releasekit.extras import missing_extra

EXIT_ERROR = 1
EXIT_NOTHING_TO_RELEASE = 3


@dataclass
class Context:
    """Global options, shared by every command through click's ctx.obj."""

    project_dir: Path
    verbose: bool


class _ReleasekitGroup(click.Group):
    """Maps ReleaseError to one `error:` line and exit 1: the single exit-code site.

    Command groups are imported when they are used (`lazy`: name -> "module:attribute"), so
    `releasekit version --print` does not pay for the server, client and forge modules.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module_name, _, attribute = self.lazy[cmd_name].partition(":")
            try:
                command = getattr(importlib.import_module(module_name), attribute)
            except ModuleNotFoundError as exc:
                missing = missing_extra(exc, f"releasekit {cmd_name}")
                if missing is None:
                    raise
                command = _unavailable(cmd_name, missing)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            except ModuleNotFoundError as exc:
                missing = missing_extra(exc, f"releasekit {ctx.invoked_subcommand}")
                if missing is None:
                    raise
                raise missing from exc
        except ReleaseError as exc:
            obj = ctx.find_object(Context)
            if obj is not None and obj.verbose:
                import traceback

                traceback.print_exc()
            click.echo(f"error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"  hint: {exc.hint}", err=True)
            ctx.exit(EXIT_ERROR)


def _unavailable(name: str, missing: MissingExtraError) -> click.Command:
    """Stands in for a command group whose extra is missing: any use gives the install line."""

    def refuse(args: tuple[str, ...]) -> None:
        raise missing

    return click.Command(
        name,
        callback=refuse,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=missing.message,
        short_help="unavailable: " + missing.message.rpartition(": ")[2],
        context_settings={"ignore_unknown_options": True},
    )


@click.group(cls=_ReleasekitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-C",
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default=True,
    help="The project (git repository root with pyproject.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Explain decisions; tracebacks on errors.")
@click.version_option(__version__, prog_name="releasekit")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path, verbose: bool) -> None:
    """Release automation for internal Python libraries."""
    ctx.obj = Context(project_dir=project_dir.resolve(), verbose=verbose)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="releasekit")


from releasekit.cli import commands as _commands  # noqa: E402  (registers the commands)

_commands.register(cli)
