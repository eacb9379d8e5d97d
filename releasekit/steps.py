"""The steps that carry a release plan out, and the resume point an interrupted run leaves.

Each step does one thing to the repository and reports it through `progress`; `pipeline.py`
runs them in design order and decides, from the resume point, which are still to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from releasekit.config import Config
from releasekit.errors import GitError, VersionError
from releasekit.git import GitRepository
from releasekit.project import FileEdit, apply_edits
from releasekit.release import Progress, ReleasePlan
from releasekit.versioning import Version


def release_commit_version(message: str, template: str) -> Version | None:
    """The version of a release commit made from `template`, or None for any other message."""
    subject = message.strip().splitlines()[0].strip() if message.strip() else ""
    head, _, tail = template.strip().splitlines()[0].partition("{version}")
    pattern = re.escape(head) + r"(?P<version>\S+?)" + re.escape(tail)
    match = re.fullmatch(pattern, subject)
    if match is None:
        return None
    try:
        return Version.parse(match.group("version"))
    except VersionError:
        return None


@dataclass(frozen=True)
class ResumePoint:
    """HEAD is a release commit from an earlier run that stopped half-way."""

    version: Version
    tag: str
    tagged: bool


def find_resume_point(repo: GitRepository, config: Config) -> ResumePoint | None:
    """Detect a release commit at HEAD (tagged or not) left by an interrupted run."""
    version = release_commit_version(repo.head_message(), config.commit_message)
    if version is None:
        return None
    tag = config.format_tag(str(version))
    if repo.tag_exists(tag):
        if not repo.tag_points_at_head(tag):
            return None
        return ResumePoint(version, tag, tagged=True)
    return ResumePoint(version, tag, tagged=False)


def write_and_commit(repo: GitRepository, plan: ReleasePlan, progress: Progress) -> str:
    """Write every planned file and make the release commit; on failure restore the files."""
    apply_edits(plan.edits)
    progress(f"wrote {', '.join(edit.relpath for edit in plan.edits)}")
    try:
        sha = repo.commit_paths([edit.path for edit in plan.edits], plan.commit_message)
    except Exception:
        apply_edits([_reverse(edit) for edit in plan.edits])
        raise
    progress(f"committed {sha[:7]} {plan.commit_message}")
    return sha


def _reverse(edit: FileEdit) -> FileEdit:
    return FileEdit(
        path=edit.path, relpath=edit.relpath, before=edit.after, after=edit.before or ""
    )


def tag_release(
    repo: GitRepository, tag: str, version: Version, notes: str, progress: Progress
) -> None:
    repo.create_tag(tag, f"Release {version}\n\n{notes}".rstrip() + "\n")
    progress(f"tagged {tag}")


def push_release(
    repo: GitRepository, remote: str | None, branch: str, tag: str, progress: Progress
) -> None:
    """Push branch and tag atomically; a no-op for what the remote already has."""
    if remote is None:
        raise GitError(
            "--push-tag was given but the repository has no remote",
            hint="add one with `git remote add origin URL`, or drop --push-tag",
        )
    branch_done, tag_done = repo.remote_has(remote, branch, tag)
    if branch_done and tag_done:
        progress(f"{remote} already has {branch} and {tag}")
        return
    repo.push(remote, branch, tag)
    progress(f"pushed {branch} and {tag} to {remote}")
