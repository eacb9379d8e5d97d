"""Per-index authorization: `authorize_index(request, index, action, project)`, and
`index_state(request, name)`, the served state of an index.

stand-in until branch indexes lands: branch `indexes` owns this module (per-index ACLs,
index-scoped tokens with a `promote` scope, one served state per index). Until then each index
action maps onto the server-wide action of the same weight, so `promote` needs upload rights
(a token scoped to `update` is enough) and `read` needs download rights; only the default index
has a served state in this app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request

from releasekit.server.auth import Action, Principal
from releasekit.server.indexes import ROOT_INDEX, IndexAction
from releasekit.server.state import authorize

if TYPE_CHECKING:
    from releasekit.server.state import IndexState

# stand-in until branch indexes lands
_SERVER_ACTION: Mapping[IndexAction, Action] = {
    "read": "download",
    "upload": "update",
    "promote": "update",
    "admin": "admin",
}


class IndexNotFound(HTTPException):
    """An index this app does not serve: a 404 naming the known ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        shown = name if len(name) <= 60 else name[:60] + "..."
        super().__init__(404, f"there is no index {shown!r}; known indexes: {', '.join(known)}")
        self.known = known


def index_state(request: Request, name: str) -> IndexState:
    """The served state of `name`; IndexNotFound when this app does not serve it.

    stand-in until branch indexes lands: only the default index is served here.
    """
    if name == ROOT_INDEX:
        state: IndexState = request.app.state.index
        return state
    raise IndexNotFound(name, [ROOT_INDEX])


async def authorize_index(
    request: Request, index: str, action: IndexAction, project: str | None
) -> Principal:
    """The principal allowed to take `action` on `index` (for `project`); raises AuthError.

    stand-in until branch indexes lands: the server-wide rights decide, for every index.
    """
    return await authorize(request, _SERVER_ACTION[action], project)
