"""Who may do what on the index: `Authenticator.authorize(header, action, project)`.

Credentials come as HTTP Basic: a user from the bcrypt htpasswd file (`-P/--passwords`,
see `htpasswd.py`), or the user name `__token__` with an API token as the password (see
`tokens.py`; `Authorization: Bearer rk_...` works too). `authenticate` is pypiserver's `-a`:
the actions among list/download/update that need credentials; `admin` always does.

Outcomes: a `Principal`, or `AuthError` with 401 (credentials missing, wrong, unknown or expired:
send others), 403 (valid but not allowed: asking again will not help), 429 (too many failures
from this address or for this user: wait `Retry-After` seconds, see `throttle.py`) or 503 (too
many password checks waiting). Passwords are checked off the event loop (`passwords.py`).
Both files are re-read when they change, checked at most once per `reload_interval` seconds; a
broken new version is logged and the previous one kept, so a typo never locks everybody out.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from releasekit.server.htpasswd import (
    TOKEN_USERNAME,
    Role,
    UserTable,
    load_user_table,
    roles_path,
)
from releasekit.server.htpasswd import verify_password as _bcrypt_verify
from releasekit.server.passwords import PasswordChecker, PoolBusy
from releasekit.server.throttle import Throttle, ThrottlePolicy
from releasekit.server.tokens import ACTIONS, Action, ApiToken, find_token, load_tokens
from releasekit.server.watched import WatchedFile

__all__ = ["ROLE_ACTIONS", "Action", "AuthError", "Authenticator", "Identity", "Principal"]

logger = logging.getLogger(__name__)

ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = {
    "read": frozenset({"list", "download"}),
    # Promoting copies bytes someone uploaded: who may upload may promote (indexes.md).
    "upload": frozenset({"list", "download", "update", "promote"}),
    "admin": frozenset(ACTIONS),
}
WWW_AUTHENTICATE = 'Basic realm="releasekit", charset="UTF-8"'
_VERBS: Mapping[Action, str] = {
    "list": "list projects",
    "download": "download files",
    "update": "upload",
    "admin": "run admin actions (remove, yank)",
    "promote": "promote releases",
}
# Never anonymous unless an index's ACL says so: -a/--authenticate does not cover it.
ALWAYS_AUTHENTICATED: frozenset[Action] = frozenset({"admin"})
# Promoting copies bytes into an index: it needs credentials exactly when uploading does.
_AUTHENTICATED_AS: Mapping[Action, str] = {"promote": "update"}


@dataclass(frozen=True)
class Principal:
    """Who made a request; `token_id` names the token for the access log (never the secret)."""

    name: str | None
    kind: Literal["anonymous", "user", "token"]
    token_id: str | None = None


ANONYMOUS = Principal(None, "anonymous")


@dataclass(frozen=True)
class Identity:
    """Who valid credentials name: the principal, its server-wide role (a token's: its
    owner's; None without a password file) and the token, if one was used."""

    principal: Principal
    role: Role | None
    token: ApiToken | None = None


class AuthError(Exception):
    """A refused request: `status` (401, 403, 429, 503) and a `detail` a person can act on."""

    def __init__(self, status: int, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        """The problem's stable `code`."""
        return _CODES.get(self.status, "unauthorized")

    @property
    def headers(self) -> dict[str, str]:
        """The response headers the refusal needs (RFC 9110: 401 carries a challenge)."""
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if self.status == 401 else {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


_CODES = {401: "unauthorized", 403: "forbidden", 429: "too-many-failures", 503: "busy"}


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
        users: WatchedFile[UserTable] | None,
        tokens: WatchedFile[dict[str, ApiToken]] | None,
        authenticate: frozenset[str],
        throttle: ThrottlePolicy | None = None,
        threads: int | None = None,
        cache_ttl: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        unknown = set(authenticate) - {"list", "download", "update"}
        if unknown:
            raise ValueError(f"unknown actions in authenticate: {sorted(unknown)}")
        self._users, self._tokens = users, tokens
        self._authenticate = authenticate
        self._throttle = Throttle(throttle or ThrottlePolicy(), clock)
        self._passwords = PasswordChecker(
            _verify, threads=threads or default_threads(), ttl=cache_ttl, clock=clock
        )
        # Called with "wrong", "throttled" or "busy" for each such refusal (the app counts them).
        self.on_refusal: Callable[[str], None] = lambda reason: None

    @classmethod
    def from_settings(
        cls,
        *,
        passwords: Path | None,
        authenticate: frozenset[str],
        tokens_file: Path | None,
        reload_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        throttle: ThrottlePolicy | None = None,
        threads: int | None = None,
        cache_ttl: float = 120.0,
    ) -> Authenticator:
        """Load both files (raising IndexServerError if either is invalid) and watch them."""
        users = (
            None
            if passwords is None
            else WatchedFile(
                passwords, load_user_table, reload_interval, clock, also=(roles_path(passwords),)
            )
        )
        tokens = (
            None
            if tokens_file is None
            else WatchedFile(tokens_file, load_tokens, reload_interval, clock)
        )
        return cls(
            users=users,
            tokens=tokens,
            authenticate=authenticate,
            throttle=throttle,
            threads=threads,
            cache_ttl=cache_ttl,
            clock=clock,
        )

    def reload_tokens(self) -> None:
        """See a token the server just minted or burned at the next request."""
        if self._tokens is not None:
            self._tokens.expire()

    def close(self) -> None:
        """Stop the password-check threads (the app's shutdown calls this)."""
        self._passwords.close()

    async def authorize(
        self,
        authorization: str | None,
        action: Action,
        project: str | None = None,
        client: str = "-",
        index: str = "root",
    ) -> Principal:
        """The principal allowed to do `action` (on `project`), or raise AuthError.

        Pass `project` whenever the request concerns one; None means "no single project" (the
        root listing, or a credentials check before an upload body is read), and then only the
        action scope of a token is checked. `client` is the address failures are counted for;
        `index` the index asked, for tokens scoped to indexes. These are the server-wide rules:
        an index with ACL entries is decided in acl.py.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        needs = _AUTHENTICATED_AS.get(action, action)
        if action not in ALWAYS_AUTHENTICATED and needs not in self._authenticate:
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
            self._refuse_if_throttled(client, None)
            return self._authorize_token(tokens, users, password, action, project, client, index)
        if users is None:
            raise AuthError(
                401,
                "this server has no password file, so user names cannot log in; use the user "
                "name __token__ with an API token, or start the server with -P/--passwords FILE",
            )
        await self._check_password(users, user, password, client)
        _require_role(users, user, action, f"user {user!r}")
        return Principal(user, "user")

    async def identify(self, authorization: str, client: str = "-") -> Identity:
        """Check the credentials alone (no action, no scope): who they name, or AuthError 401.

        For indexes with ACL entries (acl.py), where the ACL, not the role, decides.
        """
        users = self._users.get() if self._users else None
        tokens = self._tokens.get() if self._tokens else {}
        user, password = _parse_authorization(authorization)
        if user == TOKEN_USERNAME:
            self._refuse_if_throttled(client, None)
            token = self._valid_token(tokens, password, client)
            if users is None:
                return Identity(Principal(token.owner, "token", token.id), None, token)
            _check_owner(users, token)
            return Identity(
                Principal(token.owner, "token", token.id), users.role(token.owner), token
            )
        if users is None:
            raise AuthError(
                401,
                "this server has no password file, so user names cannot log in; use the user "
                "name __token__ with an API token, or start the server with -P/--passwords FILE",
            )
        await self._check_password(users, user, password, client)
        return Identity(Principal(user, "user"), users.role(user))

    async def _check_password(
        self, users: UserTable, user: str, password: str, client: str
    ) -> None:
        if user in users.hashes and self._passwords.cached(users, user, password):
            return  # verified a moment ago: no bcrypt, and no throttle for a right password
        self._refuse_if_throttled(client, user)
        try:
            ok = await self._passwords.check(users, user, password)
        except PoolBusy:
            self.on_refusal("busy")
            raise AuthError(
                503, "too many password checks are waiting; try again in a second", 1
            ) from None
        if not ok:
            self._failed(client, user)
            raise AuthError(401, f"wrong password for user {user!r}, or no such user")
        self._throttle.success(client, user)

    def _failed(self, client: str, user: str | None) -> None:
        self.on_refusal("wrong")
        blocked = self._throttle.failure(client, user)
        if blocked:  # once per block: the blocks double, so a guesser cannot flood the log
            whom = "API tokens" if user is None else f"user {user!r}"
            logger.warning(
                "failed logins from %s (last for %s): blocked for %d s", client, whom, blocked
            )

    def _refuse_if_throttled(self, client: str, user: str | None) -> None:
        wait = self._throttle.retry_after(client, user)
        if wait:
            self.on_refusal("throttled")
            whom = "from this address" if user is None else f"from this address or for {user!r}"
            raise AuthError(
                429,
                f"too many failed logins {whom}; try again in {wait} s "
                "(each further failure doubles the wait)",
                wait,
            )

    def _authorize_token(
        self,
        tokens: Mapping[str, ApiToken],
        users: UserTable | None,
        value: str,
        action: Action,
        project: str | None,
        client: str,
        index: str,
    ) -> Principal:
        token = self._valid_token(tokens, value, client)
        check_token_scope(token, action, project, index)
        if users is not None:
            # A token never outlives or outranks its owner: removing a user kills their tokens.
            _check_owner(users, token)
            _require_role(
                users, token.owner, action, f"the owner {token.owner!r} of token {token.id}"
            )
        return Principal(token.owner, "token", token.id)

    def _valid_token(self, tokens: Mapping[str, ApiToken], value: str, client: str) -> ApiToken:
        """The stored token `value` names, unexpired; else AuthError 401."""
        token = find_token(tokens, value)
        if token is None:
            # Only a wrong secret counts: an expired or out-of-scope token is no guess.
            self._failed(client, None)
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
        return token


def check_token_scope(token: ApiToken, action: Action, project: str | None, index: str) -> None:
    """AuthError 403 unless the token's actions, projects and indexes cover the request."""
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
    if not token.allows_index(index):
        raise AuthError(
            403,
            f"token {token.id} is scoped to the indexes {', '.join(token.indexes or ())}; "
            f"it cannot {_VERBS[action]} on the index {index!r}",
        )


def verb(action: Action) -> str:
    """What an action lets someone do, for messages ("upload", "list projects")."""
    return _VERBS[action]


def _check_owner(users: UserTable, token: ApiToken) -> None:
    if token.owner not in users.hashes:
        raise AuthError(
            401,
            f"token {token.id} belongs to {token.owner!r}, who is no longer a user; "
            "create a new token for an existing user",
        )


def _require_role(users: UserTable, user: str, action: Action, who: str) -> None:
    role = users.role(user)
    if action not in ROLE_ACTIONS[role]:
        needed = (
            "admin"
            if action == "admin"
            else "upload"
            if action in ("update", "promote")
            else "read"
        )
        raise AuthError(
            403,
            f"{who} has the role {role!r}, which cannot {_VERBS[action]}; an admin can grant it "
            f"with `releasekit server user set-role {user} {needed}`",
        )


def default_threads() -> int:
    """Password-check threads: half the CPUs (at least one), leaving the rest for requests."""
    return max(1, (os.cpu_count() or 1) // 2)


def _verify(password: str, entry: bytes) -> bool:
    # Looked up at call time, so a test can slow the real check down to watch the event loop.
    return _bcrypt_verify(password, entry)
