"""`releasekit server user ...` and `releasekit server token ...`: thin click commands.

The logic lives in `htpasswd.py` and `tokens.py`; these commands parse options, call one
function and print. Errors are IndexServerError, turned into one `error:` line by the root group.
File options read the server's own environment variables, so a container configured with
RELEASEKIT_SERVER_PASSWORDS / _TOKENS_FILE / _PACKAGES_DIR needs no flags here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from releasekit.errors import IndexServerError
from releasekit.server.auth import ROLE_ACTIONS
from releasekit.server.htpasswd import ROLES, Role, add_user, list_users, remove_user, set_role
from releasekit.server.htpasswd import load_user_table as _load_users
from releasekit.server.tokens import (
    ACTIONS,
    ALL_PROJECTS,
    TOKENS_FILE,
    create_token,
    load_tokens,
    parse_expiry,
    revoke_token,
)

_F = TypeVar("_F", bound=Callable[..., Any])
PACKAGES_DIR_ENV = "RELEASEKIT_SERVER_PACKAGES_DIR"
_FILE = click.Path(dir_okay=False, path_type=Path)


def _passwords_option(required: bool) -> Callable[[_F], _F]:
    return click.option(
        "-P",
        "--passwords",
        type=_FILE,
        required=required,
        envvar="RELEASEKIT_SERVER_PASSWORDS",
        help="The htpasswd file (the server's -P); roles live in FILE.roles.toml.",
    )


def packages_dir_option(func: _F) -> _F:
    """`-D/--packages-dir`: the one spelling of the packages directory on every command.

    No click envvar: the server's settings read RELEASEKIT_SERVER_PACKAGES_DIR themselves
    (below a flag and above the settings file), and the token commands add it.
    """
    return click.option(
        "-D",
        "--packages-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help=f"The packages directory (default: {PACKAGES_DIR_ENV}, or the settings file).",
    )(func)


def _tokens_options(func: _F) -> _F:
    func = click.option(
        "-D",
        "--packages-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=PACKAGES_DIR_ENV,
        help=f"The server's packages directory; the tokens file is DIR/{TOKENS_FILE}.",
    )(func)
    return click.option(
        "--tokens-file",
        type=_FILE,
        envvar="RELEASEKIT_SERVER_TOKENS_FILE",
        help="The tokens file (overrides --packages-dir).",
    )(func)


def _tokens_path(tokens_file: Path | None, packages_dir: Path | None) -> Path:
    if tokens_file is not None:
        return tokens_file
    if packages_dir is not None:
        return packages_dir / TOKENS_FILE
    raise IndexServerError(
        "no tokens file given",
        hint="pass -D/--packages-dir DIR (the server's packages directory) or --tokens-file FILE",
    )


@click.group("user")
def user_group() -> None:
    """Manage index users (a bcrypt htpasswd file plus a roles sidecar)."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), help="read, upload (default) or admin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@click.option("--update", is_flag=True, help="Replace the password of an existing user.")
@_passwords_option(required=True)
@click.option("--bcrypt-cost", type=click.IntRange(4, 31), default=12, hidden=True)
def user_add(
    name: str,
    role: Role | None,
    password_stdin: bool,
    update: bool,
    passwords: Path,
    bcrypt_cost: int,
) -> None:
    """Add user NAME (bcrypt, cost 12); the file is created with mode 0600 if missing."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    final = add_user(passwords, name, password, role=role, update=update, rounds=bcrypt_cost)
    click.echo(f"{'Updated' if update else 'Added'} user {name} with role {final} in {passwords}")


@user_group.command("remove")
@click.argument("name")
@_passwords_option(required=True)
def user_remove(name: str, passwords: Path) -> None:
    """Remove user NAME (their API tokens stop working too)."""
    remove_user(passwords, name)
    click.echo(f"Removed user {name} from {passwords}")


@user_group.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@_passwords_option(required=True)
def user_set_role(name: str, role: Role, passwords: Path) -> None:
    """Give user NAME the role ROLE, keeping the password."""
    set_role(passwords, name, role)
    click.echo(f"User {name} now has role {role}")


@user_group.command("list")
@_passwords_option(required=True)
def user_list(passwords: Path) -> None:
    """List users and roles (never hashes)."""
    for entry in list_users(passwords):
        note = f"  (refused by the server: {entry.problem} password)" if entry.problem else ""
        click.echo(f"{entry.name}\t{entry.role}{note}")


@click.group("token")
def token_group() -> None:
    """Manage API tokens (sent as the password with the user name __token__)."""


@token_group.command("create")
@click.option("--owner", required=True, help="The user the token acts for.")
@click.option(
    "--project", "projects", multiple=True, help="A project it may act on (repeatable; default *)."
)
@click.option(
    "--action",
    "actions",
    type=click.Choice(ACTIONS),
    multiple=True,
    help="An action it may do (repeatable; default update).",
)
@click.option(
    "--index",
    "indexes",
    multiple=True,
    help="An index it works on (repeatable; root is the default index; default every index).",
)
@click.option("--expires", help="30d (days from now) or a date such as 2026-12-31 (00:00 UTC).")
@click.option("--description", default="", help="What the token is for (shown by `list`).")
@_tokens_options
@_passwords_option(required=False)
def token_create(
    owner: str,
    projects: tuple[str, ...],
    actions: tuple[str, ...],
    indexes: tuple[str, ...],
    expires: str | None,
    description: str,
    tokens_file: Path | None,
    packages_dir: Path | None,
    passwords: Path | None,
) -> None:
    """Create a token and print it once."""
    now = datetime.now(UTC)
    if passwords is not None:
        _check_owner(passwords, owner, actions or ("update",))
    new = create_token(
        _tokens_path(tokens_file, packages_dir),
        owner=owner,
        projects=projects or (ALL_PROJECTS,),
        actions=actions or ("update",),
        expires=None if expires is None else parse_expiry(expires, now=now),
        description=description,
        now=now,
        indexes=indexes or None,
    )
    click.echo(new.value)
    click.echo(
        f"Created token {new.token.id} for {owner}. It will not be shown again: store it now "
        "(user name __token__, the token as the password).",
        err=True,
    )


def _check_owner(passwords: Path, owner: str, actions: tuple[str, ...]) -> None:
    """Refuse a token its owner could never use (the server caps tokens by the owner's role)."""
    users = _load_users(passwords)
    if owner not in users.hashes:
        raise IndexServerError(
            f"{owner!r} is not a user in {passwords}",
            hint="add the user first with `releasekit server user add`",
        )
    role = users.role(owner)
    beyond = sorted(set(actions) - ROLE_ACTIONS[role])
    if beyond:
        raise IndexServerError(
            f"user {owner!r} has the role {role!r}, which does not allow {', '.join(beyond)}",
            hint=f"change the role with `releasekit server user set-role {owner} ROLE` or drop those --action values",
        )


@token_group.command("revoke")
@click.argument("token_id")
@_tokens_options
def token_revoke(token_id: str, tokens_file: Path | None, packages_dir: Path | None) -> None:
    """Delete token TOKEN_ID; the server refuses it from its next reload (within a second)."""
    removed = revoke_token(_tokens_path(tokens_file, packages_dir), token_id)
    click.echo(f"Revoked token {removed.id} (owner {removed.owner})")


@token_group.command("list")
@_tokens_options
def token_list(tokens_file: Path | None, packages_dir: Path | None) -> None:
    """List tokens: id, owner, scopes, expiry (never secrets)."""
    now = datetime.now(UTC)
    for token in load_tokens(_tokens_path(tokens_file, packages_dir)).values():
        expiry = "never" if token.expires is None else f"{token.expires:%Y-%m-%d %H:%M}Z"
        if token.expires is not None and token.expires <= now:
            expiry += " (expired)"
        scopes = ",".join(token.projects), ",".join(token.actions)
        where = [] if token.indexes is None else [f"indexes={','.join(token.indexes)}"]
        fields = [token.id, token.owner, *scopes, *where, expiry, token.description]
        click.echo("\t".join(fields).rstrip())
