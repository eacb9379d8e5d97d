"""Who may do what on which index: the one authorization entry point of index-aware routes.

Rules (docs/indexes.md has the tested matrix):
- An index without ACL entries follows the server-wide rules exactly (`-a/--authenticate` and
  the htpasswd roles, `auth.py`); `promote` there follows the rule of uploads (`update`).
- An index with ACL entries lets only the listed principals take the listed actions:
  `:anonymous:` grants to everybody, `:authenticated:` to every valid user or token, a user
  name to that user and their tokens, `token:<id>` to that token. Users with the server-wide
  `admin` role may do everything everywhere. `-a` and the other roles do not apply there.
- A token is always capped by its own scopes (actions, projects, indexes), on every index.
- Reading an index reads what it serves, inherited files included; it grants nothing on the
  bases themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request

from releasekit.server.auth import (
    ANONYMOUS,
    Action,
    Authenticator,
    AuthError,
    Identity,
    Principal,
    check_token_scope,
    verb,
)
from releasekit.server.indexes import (
    ANONYMOUS as ANYONE,
)
from releasekit.server.indexes import (
    AUTHENTICATED,
    IndexAction,
    IndexConfig,
)

if TYPE_CHECKING:
    from releasekit.server.state import IndexState

__all__ = ["IndexNotFound", "authorize_index", "check_access", "index_state"]

# What each route action asks of an index, and what authorize_index asks of a token.
INDEX_ACTION: Mapping[Action, IndexAction] = {
    "list": "read",
    "download": "read",
    "update": "upload",
    "promote": "promote",
    "admin": "admin",
}
ROUTE_ACTION: Mapping[IndexAction, Action] = {
    "read": "download",
    "upload": "update",
    "promote": "promote",
    "admin": "admin",
}


class IndexNotFound(HTTPException):
    """A request named an index that does not exist: a 404 problem naming the known ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        shown = name if len(name) <= 60 else name[:60] + "..."  # never echo a huge name back
        super().__init__(404, f"there is no index {shown!r}; known indexes: {', '.join(known)}")
        self.known = known


def granted(config: IndexConfig, identity: Identity | None) -> frozenset[IndexAction]:
    """The actions `config`'s ACL grants to `identity` (None: no credentials sent)."""
    acl = config.acl
    actions = set(acl.get(ANYONE, ()))
    if identity is None:
        return frozenset(actions)
    if identity.role == "admin":
        return frozenset(ROUTE_ACTION)
    principal = identity.principal
    actions |= acl.get(AUTHENTICATED, set())
    if principal.name is not None:
        actions |= acl.get(principal.name, set())
    if principal.token_id is not None:
        actions |= acl.get(f"token:{principal.token_id}", set())
    return frozenset(actions)


async def check_access(
    authenticator: Authenticator,
    config: IndexConfig,
    authorization: str | None,
    action: Action,
    project: str | None,
    client: str = "-",
) -> Principal:
    """The principal allowed to take `action` on the index `config` describes, or AuthError."""
    index = config.name
    if not config.acl:
        return await authenticator.authorize(authorization, action, project, client, index)
    wanted = INDEX_ACTION[action]
    if wanted in granted(config, None):
        return ANONYMOUS  # as on the root paths: what anybody may do needs no credentials
    if not authorization or not authorization.strip():
        raise AuthError(
            401,
            f"credentials are required to {verb(action)} on the index {index!r}; send a user "
            "name and password, or the user name __token__ with an API token",
        )
    identity = await authenticator.identify(authorization, client)
    if identity.token is not None:
        check_token_scope(identity.token, action, project, index)
    if wanted in granted(config, identity):
        return identity.principal
    who = principal_label(identity.principal)
    raise AuthError(
        403,
        f"{who} may not {verb(action)} on the index {index!r} (its ACL grants {wanted} to "
        f"{', '.join(sorted(p for p, a in config.acl.items() if wanted in a)) or 'nobody'}); "
        f"an admin can grant it with `releasekit server index acl {index} "
        f"{principal_acl_name(identity.principal)} {wanted}`",
    )


def principal_label(principal: Principal) -> str:
    """`user 'alice'` or `token 3f9a... (owner 'ci')` for messages."""
    if principal.kind == "token":
        return f"token {principal.token_id} (owner {principal.name!r})"
    return f"user {principal.name!r}"


def principal_acl_name(principal: Principal) -> str:
    """The ACL entry that would name `principal`."""
    if principal.kind == "token":
        return f"token:{principal.token_id}"
    return str(principal.name)


def index_state(request: Request, name: str) -> IndexState:
    """The state of the index `name` on this server; IndexNotFound (a 404 problem) if unknown."""
    indexes = request.app.state.indexes
    state: IndexState | None = indexes.get(name)
    if state is None:
        raise IndexNotFound(name, indexes.known())
    return state


async def authorize_index(
    request: Request, index: str, action: IndexAction, project: str | None
) -> Principal:
    """The principal allowed to take `action` on `index` (and `project`), or AuthError.

    `read` asks a token for `download`, `upload` for `update`; `promote` and `admin` for
    themselves. An unknown index raises IndexNotFound; an index created a moment ago (not
    picked up by the registry poll yet) is picked up first.
    """
    indexes = request.app.state.indexes
    if indexes.get(index) is None:
        await run_in_threadpool(indexes.refresh)
    state = index_state(request, index)
    client = request.client.host if request.client else "-"
    principal = await state.check(
        request.headers.get("authorization"), ROUTE_ACTION[action], project, client
    )
    info = request.scope.get("releasekit")
    if info is not None:
        info.user = principal.name
    return principal
