"""Who may do what on the index: `Authenticator.authorize(header, action, project)`.

Credentials come as HTTP Basic: a user from the bcrypt htpasswd file (`-P/--passwords`,
see `htpasswd.py`), or the user name `__token__` with an API token as the password (see
`tokens.py`; `Authorization: Bearer rk_...` works too). `authenticate` is pypiserver's `-a`:
the actions among list/download/update that need credentials; `admin` always does.

Outcomes: a `Principal`, or `AuthError` with 401 (credentials missing, wrong, unknown or expired:
send others) or 403 (valid but not allowed: asking again will not help). Both files are
re-read when they change, checked at most once per `reload_interval` seconds; a broken new
version is logged and the previous one kept, so a typo never locks everybody out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, Literal, TypeVar

from releasekit.errors import IndexServerError
from releasekit.server.htpasswd import (
    TOKEN_USERNAME,
    Role,
    UserTable,
    load_user_table,
    roles_path,
)
from releasekit.server.htpasswd import verify_password as _bcrypt_verify
from releasekit.server.tokens import ACTIONS, Action, ApiToken, find_token, load_tokens

__all__ = ["ROLE_ACTIONS", "Action", "AuthError", "Authenticator", "Principal"]

logger = logging.getLogger(__name__)

ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = {
    "read": frozenset({"list", "download"}),
    "upload": frozenset({"list", "download", "update"}),
    "admin": frozenset(ACTIONS),
}
WWW_AUTHENTICATE = 'Basic realm="releasekit", charset="UTF-8"'
_VERBS: Mapping[Action, str] = {
    "list": "list projects",
    "download": "download files",
    "update": "upload",
    "admin": "run admin actions (remove, yank)",
}
_T = TypeVar("_T")


@dataclass(frozen=True)
class Principal:
    """Who made a request; `token_id` names the token for the access log (never the secret)."""

    name: str | None
    kind: Literal["anonymous", "user", "token"]
    token_id: str | None = None


ANONYMOUS = Principal(None, "anonymous")


class AuthError(Exception):
    """A refused request: `status` 401 or 403 and a `detail` a person can act on (no secrets)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        """The response headers the refusal needs (RFC 9110: 401 carries a challenge)."""
        return {"WWW-Authenticate": WWW_AUTHENTICATE} if self.status == 401 else {}


class _WatchedFile(Generic[_T]):
    """A file's parsed contents, re-read when the (inode, mtime, size) of any watched path changes."""

    def __init__(
        self,
        path: Path,
        load: Callable[[Path], _T],
        interval: float,
        clock: Callable[[], float],
        also: tuple[Path, ...] = (),
    ) -> None:
        self._path, self._load, self._interval, self._clock = path, load, interval, clock
        self._watched = (path, *also)
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._value = load(path)  # start-up: a broken file raises IndexServerError
        self._checked = clock()

    def _stat(self) -> tuple[tuple[int, int, int] | None, ...]:
        return tuple(_signature(path) for path in self._watched)

    def get(self) -> _T:
        """The current contents; costs one stat() at most once per interval."""
        with self._lock:
            now = self._clock()
            if now - self._checked < self._interval:
                return self._value
            self._checked = now
            signature = self._stat()
            if signature == self._signature:
                return self._value
            # Record the signature even on failure, so a broken file is logged once, not per second.
            self._signature = signature
            try:
                self._value = self._load(self._path)
            except IndexServerError as exc:
                logger.error("%s; keeping the previous version of %s", exc.message, self._path)
            else:
                logger.info("reloaded %s", self._path)
            return self._value


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class _VerifyCache:
    """Bounded LRU of bcrypt outcomes, so pip's many requests pay bcrypt's cost once.

    Keys are BLAKE2 digests of (user, password, entry) under a random per-process key, so the
    password itself is never kept; a changed htpasswd entry (new password) misses the cache.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._key = os.urandom(32)
        self._items: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, user: str, password: str, entry: bytes) -> bool:
        digest = hashlib.blake2b(key=self._key, digest_size=32)
        for part in (user.encode(), password.encode(), entry):
            digest.update(len(part).to_bytes(4, "big") + part)
        key = digest.digest()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        result = _bcrypt_verify(password, entry)  # slow; run outside the lock
        with self._lock:
            self._items[key] = result
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return result


def _parse_authorization(header: str) -> tuple[str, str]:
    """(user, password) from `Basic ...`, or (`__token__`, token) from `Bearer ...`."""
    scheme, _, param = header.strip().partition(" ")
    if scheme.lower() == "bearer" and param.strip():
        return TOKEN_USERNAME, param.strip()
    if scheme.lower() != "basic":
        raise AuthError(401, "unsupported Authorization scheme; send HTTP Basic credentials")
    try:
        decoded = base64.b64decode(param.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError(401, "malformed Basic credentials; send base64 of user:password") from None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise AuthError(401, "malformed Basic credentials; send base64 of user:password")
    return user, password


class Authenticator:
    """Decides, per request, whether an action is allowed; holds no request state."""

    def __init__(
        self,
        *,
        users: _WatchedFile[UserTable] | None,
        tokens: _WatchedFile[dict[str, ApiToken]] | None,
        authenticate: frozenset[str],
        cache_size: int = 1024,
    ) -> None:
        unknown = set(authenticate) - {"list", "download", "update"}
        if unknown:
            raise ValueError(f"unknown actions in authenticate: {sorted(unknown)}")
        self._users, self._tokens = users, tokens
        self._authenticate = authenticate
        self._cache = _VerifyCache(cache_size)

    @classmethod
    def from_settings(
        cls,
        *,
        passwords: Path | None,
        authenticate: frozenset[str],
        tokens_file: Path | None,
        reload_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> Authenticator:
        """Load both files (raising IndexServerError if either is invalid) and watch them."""
        users = (
            None
            if passwords is None
            else _WatchedFile(
                passwords, load_user_table, reload_interval, clock, also=(roles_path(passwords),)
            )
        )
        tokens = (
            None
            if tokens_file is None
            else _WatchedFile(tokens_file, load_tokens, reload_interval, clock)
        )
        return cls(users=users, tokens=tokens, authenticate=authenticate)

    def authorize(
        self, authorization: str | None, action: Action, project: str | None = None
    ) -> Principal:
        """The principal allowed to do `action` (on `project`), or raise AuthError 401/403.

        Pass `project` whenever the request concerns one; None means "no single project" (the
        root listing, or a credentials check before an upload body is read), and then only the
        action scope of a token is checked.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if action != "admin" and action not in self._authenticate:
            return ANONYMOUS
        users = self._users.get() if self._users else None
        tokens = self._tokens.get() if self._tokens else {}
        if users is None and not tokens:
            raise AuthError(
                403,
                f"this server accepts no credentials, so nobody can {_VERBS[action]}; "
                "start it with -P/--passwords FILE (or create an API token)",
            )
        if not authorization or not authorization.strip():
            raise AuthError(
                401,
                f"credentials are required to {_VERBS[action]}; send a user name and password, "
                "or the user name __token__ with an API token",
            )
        user, password = _parse_authorization(authorization)
        if user == TOKEN_USERNAME:
            return self._authorize_token(tokens, users, password, action, project)
        return self._authorize_user(users, user, password, action)

    def _authorize_user(
        self, users: UserTable | None, user: str, password: str, action: Action
    ) -> Principal:
        if users is None:
            raise AuthError(
                401,
                "this server has no password file, so user names cannot log in; use the user "
                "name __token__ with an API token, or start the server with -P/--passwords FILE",
            )
        entry = users.hashes.get(user)
        if entry is None or not self._cache.check(user, password, entry):
            raise AuthError(401, f"wrong password for user {user!r}, or no such user")
        _require_role(users, user, action, f"user {user!r}")
        return Principal(user, "user")

    def _authorize_token(
        self,
        tokens: Mapping[str, ApiToken],
        users: UserTable | None,
        value: str,
        action: Action,
        project: str | None,
    ) -> Principal:
        token = find_token(tokens, value)
        if token is None:
            raise AuthError(
                401,
                "the API token is not valid (unknown, revoked or mistyped); "
                "create one with `releasekit server token create`",
            )
        if token.expires is not None and token.expires <= datetime.now(UTC):
            raise AuthError(
                401,
                f"token {token.id} expired on {token.expires:%Y-%m-%d %H:%M} UTC; create a new one "
                "with `releasekit server token create`",
            )
        if action not in token.actions:
            raise AuthError(
                403,
                f"token {token.id} is scoped to the actions {', '.join(token.actions)}; "
                f"it cannot {_VERBS[action]}",
            )
        if not token.allows_project(project):
            raise AuthError(
                403,
                f"token {token.id} is scoped to the projects {', '.join(token.projects)}; "
                f"it cannot {_VERBS[action]} for {project!r}",
            )
        if users is not None:
            # A token never outlives or outranks its owner: removing a user kills their tokens.
            if token.owner not in users.hashes:
                raise AuthError(
                    401,
                    f"token {token.id} belongs to {token.owner!r}, who is no longer a user; "
                    "create a new token for an existing user",
                )
            _require_role(
                users, token.owner, action, f"the owner {token.owner!r} of token {token.id}"
            )
        return Principal(token.owner, "token", token.id)


def _require_role(users: UserTable, user: str, action: Action, who: str) -> None:
    role = users.role(user)
    if action not in ROLE_ACTIONS[role]:
        needed = "admin" if action == "admin" else "upload" if action == "update" else "read"
        raise AuthError(
            403,
            f"{who} has the role {role!r}, which cannot {_VERBS[action]}; an admin can grant it "
            f"with `releasekit server user set-role {user} {needed}`",
        )
