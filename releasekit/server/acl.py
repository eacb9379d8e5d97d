"""Per-index authorization: `authorize_index(request, index, action, project)`.

stand-in until branch indexes lands: branch `indexes` owns this module (per-index ACLs and
index-scoped tokens with a `promote` scope). Until then each index action maps onto the
server-wide action of the same weight, so `promote` needs upload rights (a token scoped to
`update` is enough) and `read` needs download rights.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from releasekit.server.auth import Action, Principal
from releasekit.server.indexes import IndexAction
from releasekit.server.state import authorize

# stand-in until branch indexes lands
_SERVER_ACTION: Mapping[IndexAction, Action] = {
    "read": "download",
    "upload": "update",
    "promote": "update",
    "admin": "admin",
}


async def authorize_index(
    request: Request, index: str, action: IndexAction, project: str | None
) -> Principal:
    """The principal allowed to take `action` on `index` (for `project`); raises AuthError.

    stand-in until branch indexes lands: the server-wide rights decide, for every index.
    """
    return await authorize(request, _SERVER_ACTION[action], project)
