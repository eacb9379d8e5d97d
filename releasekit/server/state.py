"""The per-app state (`IndexState`) and the authorization helpers every endpoint uses."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from releasekit.server.auth import Action, Authenticator, AuthError, Principal
from releasekit.server.catalogue import Catalogue
from releasekit.server.metrics import Metrics
from releasekit.server.pages import PageSet
from releasekit.server.problems import problem
from releasekit.server.settings import Settings
from releasekit.server.simple import RequestInfo
from releasekit.server.storage import Storage

logger = logging.getLogger("releasekit.server")


@dataclass
class IndexState:
    """Everything one app instance owns; nothing is module-level."""

    storage: Storage
    settings: Settings
    authorizer: Authenticator
    catalogue: Catalogue
    pages: PageSet
    metrics: Metrics
    stop: threading.Event = field(default_factory=threading.Event)

    def refresh(self) -> set[str]:
        """Pick up changes made behind our back; re-render and persist what changed."""
        changed = self.catalogue.refresh()
        if changed:
            self.pages.rebuild(changed)
            self.catalogue.save()
        return changed

    def poll(self) -> None:
        """Background loop: a stat or two per interval, a scan only when something moved."""
        self.pages.warm()
        while not self.stop.wait(self.settings.poll_interval):
            try:
                self.refresh()
            except Exception:  # the poller must survive a bad file or a full disk
                logger.exception("refreshing the catalogue failed")


def authorize(request: Request, action: Action, project: str | None) -> Principal:
    """Ask the authenticator; record who it was for the access log. Raises AuthError."""
    state: IndexState = request.app.state.index
    principal = state.authorizer.authorize(request.headers.get("authorization"), action, project)
    info: RequestInfo | None = request.scope.get("releasekit")
    if info is not None:
        info.user = principal.name
    return principal


def auth_problem(exc: AuthError) -> Response:
    """A 401/403 problem response, with the challenge header on 401."""
    return problem(
        exc.status,
        exc.detail,
        "unauthorized" if exc.status == 401 else "forbidden",
        headers=exc.headers,
    )
