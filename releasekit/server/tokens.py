"""API tokens: `rk_<id>_<secret>`, used as the password with the username `__token__`.

The tokens file (default `<packages>/.releasekit/tokens.json`, mode 0600, replaced atomically)
holds, per token, its id, owner, scopes, dates and the sha256 of the whole token, never the
token itself. A fast hash is enough here, unlike for passwords: the secret is 160 random bits,
so there is no dictionary to try and a preimage search is out of reach; bcrypt's cost protects
only guessable secrets, and it would make every pip request pay ~0.25 s.

    {"version": 1, "tokens": [{"id": "3f9a0c1d2e4b", "sha256": "...", "owner": "ci",
      "description": "", "projects": ["*"], "actions": ["update"],
      "created": "2026-01-01T00:00:00Z", "expires": null}]}

A token may also carry `"indexes": ["staging"]`: it then works on those named indexes only
(indexes.py); a token without the field works on every index, as tokens made before indexes did.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from packaging.utils import canonicalize_name

from releasekit.errors import IndexServerError
from releasekit.server.htpasswd import write_private_file
from releasekit.server.indexes import check_name

Action = Literal["list", "download", "update", "admin", "promote"]
ACTIONS: tuple[Action, ...] = get_args(Action)
ALL_PROJECTS = "*"
TOKENS_FILE = Path(".releasekit/tokens.json")  # relative to the packages directory

_TOKEN = re.compile(r"rk_([0-9a-f]{12})_([a-z2-7]{32})")
_PREFIXED_ID = re.compile(r"rk_([0-9a-f]{12})_?")  # the start of a token, as people copy it
_PROJECT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_EXPIRES_IN = re.compile(r"(\d{1,5})d")


@dataclass(frozen=True)
class ApiToken:
    """One stored token: everything but the secret."""

    id: str
    sha256: str
    owner: str
    projects: tuple[str, ...]  # normalized names, or ("*",)
    actions: tuple[Action, ...]
    created: datetime
    expires: datetime | None = None
    description: str = ""
    indexes: tuple[str, ...] | None = None  # None: every index (tokens made before indexes)

    def allows_index(self, index: str) -> bool:
        """True for tokens without an index scope, and for the indexes named in it."""
        return self.indexes is None or index in self.indexes

    def allows_project(self, project: str | None) -> bool:
        """True for "*" tokens, and for project-scoped ones when `project` is in scope or None."""
        if ALL_PROJECTS in self.projects or project is None:
            return True
        return canonicalize_name(project) in self.projects

    def to_json(self) -> dict[str, Any]:
        """The stored form (see the module docstring)."""
        return {
            "id": self.id,
            "sha256": self.sha256,
            "owner": self.owner,
            "description": self.description,
            "projects": list(self.projects),
            "actions": list(self.actions),
            "created": _format_time(self.created),
            "expires": None if self.expires is None else _format_time(self.expires),
            # Written only when scoped, so unscoped tokens keep the format older servers read.
            **({} if self.indexes is None else {"indexes": list(self.indexes)}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApiToken:
        """Parse and validate one stored token; raises ValueError/KeyError/TypeError if malformed."""
        expires = data.get("expires")
        return cls(
            id=str(data["id"]),
            sha256=str(data["sha256"]),
            owner=str(data["owner"]),
            projects=normalize_projects(data["projects"]),
            actions=validate_actions(data["actions"]),
            created=_parse_time(str(data["created"])),
            expires=None if expires is None else _parse_time(str(expires)),
            description=str(data.get("description", "")),
            indexes=None if data.get("indexes") is None else normalize_indexes(data["indexes"]),
        )


@dataclass(frozen=True)
class NewToken:
    """A token just created: `value` is shown once and never stored."""

    token: ApiToken
    value: str


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def token_digest(value: str) -> str:
    """The stored form of a token: sha256 of the whole `rk_<id>_<secret>` string."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def token_id(value: str) -> str | None:
    """The id of a well-formed token string, else None (never raises on user input)."""
    match = _TOKEN.fullmatch(value)
    return match.group(1) if match else None


def normalize_projects(projects: Iterable[str]) -> tuple[str, ...]:
    """Normalized, sorted project names; "*" (alone) means every project."""
    names = set()
    for project in projects:
        if project == ALL_PROJECTS:
            return (ALL_PROJECTS,)
        if not isinstance(project, str) or not _PROJECT.fullmatch(project):
            raise ValueError(f"invalid project name {project!r}")
        names.add(canonicalize_name(project))
    if not names:
        raise ValueError("a token needs at least one project (or '*')")
    return tuple(sorted(names))


def normalize_indexes(indexes: Iterable[str]) -> tuple[str, ...]:
    """Sorted, checked index names (`root` is the default index); at least one."""
    names = set()
    for index in indexes:
        if not isinstance(index, str):
            raise ValueError(f"invalid index name {index!r}")
        try:
            names.add(check_name(index, allow_root=True))
        except IndexServerError as exc:
            raise ValueError(exc.message) from None
    if not names:
        raise ValueError("an index-scoped token needs at least one index")
    return tuple(sorted(names))


def validate_actions(actions: Iterable[str]) -> tuple[Action, ...]:
    """The actions in their canonical order; unknown ones raise ValueError."""
    wanted = set(actions)
    unknown = wanted - set(ACTIONS)
    if unknown or not wanted:
        raise ValueError(f"actions must be a non-empty subset of {', '.join(ACTIONS)}")
    return tuple(action for action in ACTIONS if action in wanted)


def parse_expiry(text: str, *, now: datetime) -> datetime:
    """`30d` (from now) or an ISO date/datetime (a date means its 00:00 UTC); must be in the future."""
    days = _EXPIRES_IN.fullmatch(text)
    try:
        if days:
            moment = now + timedelta(days=int(days.group(1)))
        elif len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        else:
            moment = _parse_time(text)
    except ValueError as exc:
        raise IndexServerError(
            f"cannot read the expiry {text!r}",
            hint="write a number of days such as 30d, or a date such as 2026-12-31",
        ) from exc
    if moment <= now:
        raise IndexServerError(
            f"the expiry {_format_time(moment)} is not in the future",
            hint="pick a later date",
        )
    return moment


def load_tokens(path: Path) -> dict[str, ApiToken]:
    """Every stored token by id; a missing file means no tokens."""
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("expected an object with version 1")
        tokens = [ApiToken.from_json(item) for item in data["tokens"]]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexServerError(
            f"token file {path} is unreadable or malformed ({exc})",
            hint="restore it from a backup, or delete it and create new tokens",
        ) from exc
    return {token.id: token for token in tokens}


def save_tokens(path: Path, tokens: Mapping[str, ApiToken]) -> None:
    """Write the tokens file atomically (0600 when new)."""
    body = {"version": 1, "tokens": [token.to_json() for token in tokens.values()]}
    write_private_file(path, (json.dumps(body, indent=2) + "\n").encode("utf-8"))


def create_token(
    path: Path,
    *,
    owner: str,
    projects: Iterable[str] = (ALL_PROJECTS,),
    actions: Iterable[str] = ("update",),
    expires: datetime | None = None,
    description: str = "",
    now: datetime | None = None,
    indexes: Iterable[str] | None = None,
) -> NewToken:
    """Create and store a token; the returned value is the only copy of the secret.

    `indexes` None: the token works on every index; else only on those named.
    """
    try:
        scopes = normalize_projects(projects), validate_actions(actions)
        index_scope = None if indexes is None else normalize_indexes(indexes)
    except ValueError as exc:
        raise IndexServerError(f"cannot create the token: {exc}") from exc
    if not owner:
        raise IndexServerError("a token needs an owner", hint="pass --owner USER")
    tokens = load_tokens(path)
    ident = secrets.token_hex(6)
    while ident in tokens:
        ident = secrets.token_hex(6)
    secret = base64.b32encode(secrets.token_bytes(20)).decode("ascii").lower()
    value = f"rk_{ident}_{secret}"
    created = (now or datetime.now(UTC)).replace(microsecond=0)
    token = ApiToken(
        ident, token_digest(value), owner, *scopes, created, expires, description, index_scope
    )
    save_tokens(path, {**tokens, ident: token})
    return NewToken(token, value)


def revoke_token(path: Path, ident: str) -> ApiToken:
    """Delete a token by id as `token list` prints it (`rk_<id>` and a whole token work too)."""
    prefixed = _PREFIXED_ID.fullmatch(ident)
    ident = token_id(ident) or (prefixed.group(1) if prefixed else ident)
    tokens = load_tokens(path)
    if ident not in tokens:
        raise IndexServerError(
            f"no token with id {ident!r} in {path}",
            hint="`releasekit server token list` shows the ids",
        )
    removed = tokens.pop(ident)
    save_tokens(path, tokens)
    return removed


def find_token(tokens: Mapping[str, ApiToken], value: str) -> ApiToken | None:
    """The stored token matching a presented value, compared in constant time."""
    ident = token_id(value)
    stored = tokens.get(ident) if ident else None
    if stored is None or not hmac.compare_digest(stored.sha256, token_digest(value)):
        return None
    return stored
