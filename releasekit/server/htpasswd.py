"""The users of the index: a standard bcrypt htpasswd file plus a roles sidecar.

The htpasswd file stays exactly what `htpasswd -B` writes (`user:$2y$...`), so Apache tools keep
working on it. Roles live next to it in `<passwords>.roles.toml`:

    [roles]
    alice = "admin"
    ci-reader = "read"

A user missing from the sidecar (or every user, when there is no sidecar) has the role `upload`,
which is what every pypiserver user could do. Only bcrypt entries are accepted: the other htpasswd
schemes are unsalted or fast (`{SHA}`, `$apr1$`, DES crypt, plaintext) and have no maintained
verifier since passlib was abandoned and `crypt` left the standard library.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

import bcrypt
import tomlkit

from releasekit.atomic import SECRET, KeepMode, write_atomic
from releasekit.errors import IndexServerError

Role = Literal["read", "upload", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
DEFAULT_ROLE: Role = "upload"
TOKEN_USERNAME = "__token__"  # noqa: S105  (a user name, not a secret)
BCRYPT_MAX_BYTES = 72

_BCRYPT_ENTRY = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
_FIX_HINT = "re-create the entry with `htpasswd -B FILE USER` or `releasekit server user add USER --update --passwords FILE`"


@dataclass(frozen=True)
class UserTable:
    """Users as loaded from an htpasswd file: bcrypt hashes and roles."""

    hashes: Mapping[str, bytes]
    roles: Mapping[str, Role]

    def role(self, user: str) -> Role:
        """The user's role; users not named in the sidecar get `upload`."""
        return self.roles.get(user, DEFAULT_ROLE)


def roles_path(passwords: Path) -> Path:
    """Where the roles sidecar of an htpasswd file lives."""
    return passwords.with_name(passwords.name + ".roles.toml")


def describe_scheme(entry: str) -> str:
    """Name the htpasswd scheme of a hash we refuse, so the message says what was found."""
    if entry.startswith("{SHA}"):
        return "SHA-1 (`htpasswd -s`)"
    if entry.startswith("$apr1$"):
        return "Apache MD5 (`htpasswd -m`)"
    if entry.startswith(("$1$", "$5$", "$6$")):
        return "crypt(3) MD5/SHA-2"
    if entry.startswith("$2"):
        return "malformed bcrypt"
    if len(entry) == 13 and re.fullmatch(r"[./A-Za-z0-9]{13}", entry):
        return "DES crypt (`htpasswd -d`)"
    return "plaintext or unknown"


def parse_htpasswd(text: str, source: Path) -> dict[str, bytes]:
    """Strictly parse an htpasswd file: bcrypt entries only, each problem named by line."""
    hashes: dict[str, bytes] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, entry = line.partition(":")
        where = f"{source}:{lineno}"
        if not sep or not user:
            raise IndexServerError(f"{where}: not a `user:hash` line", hint=_FIX_HINT)
        if user in hashes:
            raise IndexServerError(
                f"{where}: user {user!r} appears twice", hint="delete one of the two lines"
            )
        if not _BCRYPT_ENTRY.fullmatch(entry):
            raise IndexServerError(
                f"{where}: user {user!r} has a {describe_scheme(entry)} password; only bcrypt is accepted",
                hint=_FIX_HINT.replace("USER", user),
            )
        hashes[user] = entry.encode("ascii")
    return hashes


def parse_roles(text: str, source: Path) -> dict[str, Role]:
    """Parse the roles sidecar (`[roles] user = "read"|"upload"|"admin"`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise IndexServerError(f"{source}: not valid TOML ({exc})") from exc
    unknown = set(data) - {"roles"}
    table = data.get("roles", {})
    if unknown or not isinstance(table, dict):
        raise IndexServerError(
            f"{source}: expected only a [roles] table, found {sorted(unknown) or 'roles = ...'}",
            hint='write `[roles]` then one `user = "read"|"upload"|"admin"` line per user',
        )
    roles: dict[str, Role] = {}
    for user, role in table.items():
        if role not in ROLES:
            raise IndexServerError(
                f"{source}: user {user!r} has unknown role {role!r}",
                hint=f"use one of {', '.join(ROLES)}",
            )
        roles[user] = cast(Role, role)
    return roles


def load_user_table(passwords: Path) -> UserTable:
    """Read and validate an htpasswd file and its roles sidecar (if present)."""
    try:
        text = passwords.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise IndexServerError(
            f"password file {passwords} does not exist",
            hint="create it with `releasekit server user add NAME --passwords FILE` or `htpasswd -cB FILE NAME`",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexServerError(f"cannot read password file {passwords}: {exc}") from exc
    hashes = parse_htpasswd(text, passwords)
    sidecar = roles_path(passwords)
    roles = parse_roles(sidecar.read_text(encoding="utf-8"), sidecar) if sidecar.exists() else {}
    return UserTable(hashes=hashes, roles=roles)


def hash_password(password: str, *, rounds: int = 12) -> bytes:
    """bcrypt-hash a new password (cost 12 by default), refusing what bcrypt would truncate."""
    secret = password.encode("utf-8")
    if not secret:
        raise IndexServerError("the password is empty", hint="choose a non-empty password")
    if len(secret) > BCRYPT_MAX_BYTES:
        raise IndexServerError(
            f"the password is {len(secret)} bytes; bcrypt uses at most {BCRYPT_MAX_BYTES}",
            hint="choose a shorter password (or use an API token for machines)",
        )
    return bcrypt.hashpw(secret, bcrypt.gensalt(rounds=rounds))


def verify_password(password: str, entry: bytes) -> bool:
    """Check a password against a bcrypt entry (slow: the caller caches results)."""
    # Apache's `htpasswd -B` silently uses only the first 72 bytes; bcrypt 5 raises instead,
    # so truncate to accept exactly the passwords Apache would.
    return bcrypt.checkpw(password.encode("utf-8")[:BCRYPT_MAX_BYTES], entry)


def write_private_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically; new files get mode 0600, existing ones keep their mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, mode=KeepMode(SECRET))


# Editing (the CLI). These read the file leniently, so `user add --update` can replace a
# refused `{SHA}` line: that is the migration path the start-up error points to.


@dataclass(frozen=True)
class UserEntry:
    """One user as `user list` shows it: never the hash."""

    name: str
    role: Role
    problem: str | None  # why the server would refuse this line, if it would


def _read_lines(passwords: Path) -> list[str]:
    return passwords.read_text(encoding="utf-8").splitlines() if passwords.exists() else []


def _entry_index(lines: list[str], user: str) -> int | None:
    for index, line in enumerate(lines):
        if line.strip().partition(":")[0] == user and not line.lstrip().startswith("#"):
            return index
    return None


def _edit_roles(passwords: Path, user: str, role: Role | None) -> bytes | None:
    """The new sidecar bytes after setting (or, with None, dropping) `user`'s role; None = no change."""
    sidecar = roles_path(passwords)
    if not sidecar.exists():
        if role is None or role == DEFAULT_ROLE:
            return None  # no sidecar means "everyone uploads": keep the file pypiserver-shaped
        doc = tomlkit.document()
        doc.add(tomlkit.comment('Roles for the htpasswd users: "read", "upload" or "admin".'))
        doc.add(tomlkit.comment('Users not listed here have the role "upload".'))
        doc.add("roles", tomlkit.table())
    else:
        text = sidecar.read_text(encoding="utf-8")
        parse_roles(text, sidecar)  # refuse to edit a sidecar the server would refuse
        doc = tomlkit.parse(text)
        doc.setdefault("roles", tomlkit.table())
    table = cast(dict[str, str], doc["roles"])
    if role is None:
        if user not in table:
            return None
        del table[user]
    else:
        table[user] = role
    return tomlkit.dumps(doc).encode("utf-8")


def validate_username(name: str) -> None:
    """Refuse names htpasswd cannot hold or that are reserved for tokens."""
    if name == TOKEN_USERNAME:
        raise IndexServerError(
            f"{TOKEN_USERNAME!r} is reserved for API tokens",
            hint="create a token with `releasekit server token create` instead",
        )
    if not _USERNAME.fullmatch(name):
        raise IndexServerError(
            f"invalid user name {name!r}",
            hint="use letters, digits and . _ @ + - (starting with a letter or digit, at most 100)",
        )


def add_user(
    passwords: Path,
    name: str,
    password: str,
    *,
    role: Role | None = None,
    update: bool = False,
    rounds: int = 12,
) -> Role:
    """Add `name` (or, with `update`, replace its password); returns the user's role."""
    validate_username(name)
    lines = _read_lines(passwords)
    index = _entry_index(lines, name)
    if index is not None and not update:
        raise IndexServerError(
            f"user {name!r} already exists in {passwords}",
            hint="pass --update to replace the password (and --role to change the role)",
        )
    entry = f"{name}:{hash_password(password, rounds=rounds).decode('ascii')}"
    new_role = role if role is not None or index is not None else DEFAULT_ROLE
    roles = _edit_roles(passwords, name, new_role) if new_role is not None else None
    if index is None:
        lines.append(entry)
    else:
        lines[index] = entry
    # Roles first: if the second write fails, a role for a missing user is harmless, while a
    # new user without its intended (lower) role would briefly hold `upload`.
    if roles is not None:
        write_private_file(roles_path(passwords), roles)
    write_private_file(passwords, ("\n".join(lines) + "\n").encode("utf-8"))
    return role_of(passwords, name)


def remove_user(passwords: Path, name: str) -> None:
    """Delete `name` from the htpasswd file and the roles sidecar."""
    lines = _read_lines(passwords)
    index = _entry_index(lines, name)
    if index is None:
        raise IndexServerError(
            f"no user {name!r} in {passwords}", hint="`releasekit server user list` shows the users"
        )
    roles = _edit_roles(passwords, name, None)
    del lines[index]
    write_private_file(passwords, "".join(line + "\n" for line in lines).encode("utf-8"))
    if roles is not None:
        write_private_file(roles_path(passwords), roles)


def role_of(passwords: Path, name: str) -> Role:
    """The role recorded for `name` (the default when the sidecar does not name it)."""
    sidecar = roles_path(passwords)
    if not sidecar.exists():
        return DEFAULT_ROLE
    return parse_roles(sidecar.read_text(encoding="utf-8"), sidecar).get(name, DEFAULT_ROLE)


def list_users(passwords: Path) -> list[UserEntry]:
    """Every user with its role and, for lines the server would refuse, why."""
    if not passwords.exists():
        raise IndexServerError(f"password file {passwords} does not exist")
    sidecar = roles_path(passwords)
    roles = parse_roles(sidecar.read_text(encoding="utf-8"), sidecar) if sidecar.exists() else {}
    entries = []
    for line in _read_lines(passwords):
        user, sep, entry = line.strip().partition(":")
        if not sep or user.startswith("#"):
            continue
        problem = None if _BCRYPT_ENTRY.fullmatch(entry) else describe_scheme(entry)
        entries.append(UserEntry(user, roles.get(user, DEFAULT_ROLE), problem))
    return entries


def set_role(passwords: Path, name: str, role: Role) -> None:
    """Change an existing user's role without touching the password."""
    if _entry_index(_read_lines(passwords), name) is None:
        raise IndexServerError(
            f"no user {name!r} in {passwords}",
            hint="add it first with `releasekit server user add`",
        )
    roles = _edit_roles(passwords, name, role)
    if roles is not None:
        write_private_file(roles_path(passwords), roles)
