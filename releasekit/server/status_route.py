"""The HTTP answers PEP 792 statuses cause: no downloads of quarantined files, no uploads to
archived or quarantined projects. Each is a problem+json 4xx naming the status and reason.
"""

from __future__ import annotations

from starlette.responses import Response

from releasekit.server.problems import problem
from releasekit.server.status import ProjectStatus


def _because(status: ProjectStatus) -> str:
    return f" ({status.reason})" if status.reason else ""


def quarantine_problem(status: ProjectStatus | None, project: str) -> Response | None:
    """A 404 for any file of a quarantined project, else None."""
    if status is None or status.serves_files:
        return None
    return problem(
        404,
        f"project {project!r} is quarantined on this index{_because(status)}; "
        "its files are not served",
        "quarantined",
        hint="ask the index admins; they lift it with `releasekit server status PROJECT active`",
    )


def closed_problem(status: ProjectStatus | None, project: str) -> Response | None:
    """A 403 for an upload to an archived or quarantined project, else None."""
    if status is None or status.takes_uploads:
        return None
    return problem(
        403,
        f"project {project!r} is {status.status} on this index{_because(status)}; "
        "it takes no new uploads",
        f"project-{status.status}",
        hint="ask the index admins to set it active again (`releasekit server status`)",
    )
