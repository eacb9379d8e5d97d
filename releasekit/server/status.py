"""PEP 792 project status markers, set by admins and kept in `.releasekit/status.json`.

Like yanks, a status is not derivable from the files, so it lives in its own state file:
`{"<project>": {"status": "quarantined", "reason": "..."}}`; projects not named are active.
Index semantics (PEP 792): archived and quarantined projects take no uploads; a quarantined
project's files are neither listed nor served; deprecated behaves as active.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, get_args

from releasekit.errors import IndexServerError
from releasekit.server.storage import Storage

Status = Literal["active", "archived", "quarantined", "deprecated"]
STATUSES: tuple[Status, ...] = get_args(Status)
STATUS_NAME = "status.json"
MAX_REASON = 1000


@dataclass(frozen=True)
class ProjectStatus:
    """One project's marker; `reason` is free text shown to clients (may be empty)."""

    status: Status
    reason: str = ""

    @property
    def takes_uploads(self) -> bool:
        return self.status in ("active", "deprecated")

    @property
    def serves_files(self) -> bool:
        return self.status != "quarantined"


ACTIVE = ProjectStatus("active")


def read_statuses(storage: Storage) -> dict[str, ProjectStatus]:
    """Every non-active status by normalized project name."""
    raw = storage.read_state(STATUS_NAME)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
        return {
            str(name): ProjectStatus(_status(entry["status"]), str(entry.get("reason", "")))
            for name, entry in data.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        raise IndexServerError(
            f"{STATUS_NAME} in the state directory is malformed",
            hint="fix it by hand or remove it (that makes every project active)",
        ) from None


def _status(value: object) -> Status:
    for status in STATUSES:
        if value == status:
            return status
    raise ValueError(f"unknown status {value!r}")


def write_statuses(storage: Storage, statuses: dict[str, ProjectStatus]) -> None:
    """Persist the non-active statuses (durably: losing a quarantine must not happen)."""
    data = {
        name: {"status": entry.status, "reason": entry.reason}
        for name, entry in sorted(statuses.items())
        if entry.status != "active"
    }
    storage.write_state(STATUS_NAME, json.dumps(data, indent=1).encode())


def parse_status(status: str, reason: str) -> ProjectStatus:
    """A validated marker from CLI input."""
    try:
        value = _status(status)
    except ValueError:
        raise IndexServerError(
            f"unknown project status {status!r}", hint=f"use one of {', '.join(STATUSES)}"
        ) from None
    if len(reason) > MAX_REASON or any(ord(c) < 32 for c in reason):
        raise IndexServerError(
            f"the reason must be one line of at most {MAX_REASON} characters",
            hint="shorten it; clients show it next to the project",
        )
    return ProjectStatus(value, reason)
