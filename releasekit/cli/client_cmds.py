"""`releasekit client setup|check`: point pip, poetry, uv and twine at a private index."""

from __future__ import annotations

import os
from pathlib import Path

import click

from releasekit.clients import (
    ALL_TOOLS,
    IndexReport,
    SetupOptions,
    SetupPlan,
    apply_client_setup,
    check_index,
    plan_client_setup,
    read_credentials,
)
from releasekit.clients.model import check_ca_cert
from releasekit.errors import PublishError

_INDEX_URL = click.option(
    "--index-url", required=True, help="The index: its base, /simple/ or /legacy/ URL."
)
_USERNAME = click.option("--username", help="The user to authenticate as.")
_PASSWORD_ENV = click.option(
    "--password-env", metavar="VAR", help="Environment variable holding the password."
)


@click.group("client")
def client_group() -> None:
    """Set up pip, poetry, uv and twine for a private index, and check it."""


@client_group.command("setup")
@_INDEX_URL
@click.option("--name", default="private-pypi", show_default=True, help="The index's name.")
@click.option(
    "--index",
    "index",
    metavar="NAME",
    help="A named index on the server: URLs become <base>/NAME/simple/ and <base>/NAME/legacy/.",
)
@_USERNAME
@_PASSWORD_ENV
@click.option("--token-env", metavar="VAR", help="Environment variable holding an API token.")
@click.option("--pip", "tools", flag_value="pip", multiple=True, help="Set up pip (pip.conf).")
@click.option("--poetry", "tools", flag_value="poetry", multiple=True, help="Set up poetry.")
@click.option("--uv", "tools", flag_value="uv", multiple=True, help="Set up uv (uv.toml).")
@click.option("--pypirc", "tools", flag_value="pypirc", multiple=True, help="Set up ~/.pypirc.")
@click.option(
    "--mode",
    type=click.Choice(["primary", "extra"]),
    default="primary",
    show_default=True,
    help="primary: only this index; extra: next to PyPI (dependency-confusion risk with pip).",
)
@click.option("--dry-run", is_flag=True, help="Show every change and command; change nothing.")
@click.option(
    "--project",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Write uv's index into this project's pyproject.toml instead of the user uv.toml.",
)
@click.option(
    "--ca-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CA certificate (PEM) of an index with a self-signed certificate.",
)
def setup_cmd(
    index_url: str,
    name: str,
    index: str | None,
    username: str | None,
    password_env: str | None,
    token_env: str | None,
    tools: tuple[str, ...],
    mode: str,
    dry_run: bool,
    project: Path | None,
    ca_cert: Path | None,
) -> None:
    """Configure the clients (all of them unless --pip/--poetry/--uv/--pypirc are given)."""
    if password_env and token_env:
        raise click.UsageError("--password-env and --token-env exclude each other")
    if password_env and not username:
        raise click.UsageError("--password-env needs --username")
    options = SetupOptions(
        index_url=index_url,
        name=name,
        index=index,
        username=username,
        password_env=password_env,
        token_env=token_env,
        tools=tuple(t for t in ALL_TOOLS if t in tools) if tools else ALL_TOOLS,
        mode="primary" if mode == "primary" else "extra",
        project=project.resolve() if project else None,
        ca_cert=check_ca_cert(ca_cert) if ca_cert else None,
    )
    plan = plan_client_setup(options)
    _echo_plan(plan, dry_run)
    if dry_run:
        click.echo("dry run: nothing changed")
        return
    applied = apply_client_setup(plan)
    for display, backup in applied.written:
        click.echo(f"wrote {display}" + (f" (backup: {backup})" if backup else ""))
    for command in applied.ran:
        click.echo(f"ran {command}")
    if not applied.written and not applied.ran:
        click.echo("already set up: nothing changed")


def _echo_plan(plan: SetupPlan, dry_run: bool) -> None:
    for tool in plan.tools:
        click.echo(f"{tool.tool}:")
        for warning in tool.warnings:
            click.echo(f"  warning: {warning}", err=True)
        if dry_run:
            for change in tool.changes:
                click.echo(f"  would write {change.display}:")
                click.echo(_indent(change.diff(plan.secrets), "    "))
            for command in tool.commands:
                click.echo(f"  would run: {command.display(plan.secrets)}")
        for step in tool.manual:
            click.echo(f"  to do: {step}")
        if not tool.changes and not tool.commands and not tool.manual:
            click.echo("  already set up")
        for note in tool.notes:
            first, _, rest = note.partition("\n")
            click.echo(f"  note: {first}")
            if rest:
                click.echo(_indent(rest, "    "))


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else "" for line in text.rstrip("\n").splitlines())


@client_group.command("check")
@_INDEX_URL
@click.option("--package", help="A package that pip, uv and poetry should resolve from it.")
@_USERNAME
@_PASSWORD_ENV
def check_cmd(
    index_url: str, package: str | None, username: str | None, password_env: str | None
) -> None:
    """Reach the index, show its API version and auth, and ask each client for --package."""
    if password_env and not username:
        raise click.UsageError("--password-env needs --username")
    options = SetupOptions(index_url=index_url, username=username, password_env=password_env)
    credentials = read_credentials(options, os.environ)
    report = check_index(index_url, package=package, credentials=credentials)
    problems = _echo_report(report)
    if problems:
        raise PublishError(
            f"the index check failed: {', '.join(problems)}",
            hint="see the reasons above; `releasekit client setup` writes a working configuration",
        )


def _echo_report(report: IndexReport) -> list[str]:
    """Print the report; the names of the checks that failed."""
    problems = []
    click.echo(f"index: {report.simple_url}")
    version = report.api_version or "unknown (no PEP 691/629 version)"
    click.echo(f"api version: {version} ({report.content_type or 'no content type'})")
    click.echo(f"auth: {report.auth}")
    if not report.auth_ok:
        problems.append("auth")
    if report.package is not None:
        if report.versions is None:
            click.echo(f"package {report.package}: not on the index (or not readable)")
            problems.append(report.package)
        else:
            shown = ", ".join(report.versions) or "files listed (HTML page)"
            click.echo(f"package {report.package}: {shown}")
    for client in report.clients:
        click.echo(f"{client.client}: {client.outcome}: {client.detail}")
        if client.outcome == "failed":
            problems.append(client.client)
    return problems
