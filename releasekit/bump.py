"""Manual bumps: `releasekit bump LEVEL` writes the next version into the version files only."""

from __future__ import annotations

from releasekit.config import Config
from releasekit.errors import GitError
from releasekit.git import GitRepository
from releasekit.project import FileEdit, load_project, version_edits
from releasekit.versioning import Version, bump_version, ensure_forward


def plan_bump(
    config: Config, level: str, prerelease_type: str | None
) -> tuple[Version, Version, tuple[FileEdit, ...]]:
    """(current, new, edits): the base is the declared version or the newest tag, whichever is higher."""
    project = load_project(config)
    current = Version.parse(project.declared_version)
    try:
        # Only the highest reachable tag matters: bounded checks, not a walk of all history.
        tags = GitRepository(config.root).release_tags(config.tag_format, down_to_final=True)
    except GitError:
        tags = []  # bumping files works outside a git repository too
    if tags and tags[0].version > current:
        current = tags[0].version
    new = bump_version(current, level, prerelease_type)
    ensure_forward(current, new)
    return current, new, version_edits(project, str(new))
