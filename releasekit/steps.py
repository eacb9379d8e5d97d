"""The steps that carry a release plan out, and the resume point an interrupted run leaves.

Each step does one thing to the repository and reports it through `progress`; `pipeline.py`
runs them in design order and decides, from the resume point, which are still to do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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


def write_and_commit(
    repo: GitRepository, plan: ReleasePlan, changelog_file: str, progress: Progress
) -> str:
    """The write, changelog and commit steps; if any fails, every file written is restored."""
    files = [edit for edit in plan.edits if edit.relpath != changelog_file]
    logs = [edit for edit in plan.edits if edit.relpath == changelog_file]
    if files:
        apply_edits(files)
        progress(f"wrote {', '.join(edit.relpath for edit in files)}")
    written = list(files)
    try:
        if logs:
            apply_edits(logs)
            written.extend(logs)
            progress(f"wrote {changelog_file}")
        sha = repo.commit_paths([edit.path for edit in plan.edits], plan.commit_message)
    except Exception:
        apply_edits([_reverse(edit) for edit in written])
        for edit in written:
            if edit.before is None:  # a file this release created goes again, not left empty
                edit.path.unlink(missing_ok=True)
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


# -- the plan of steps: what a run will do, and what an earlier run already did ----------------

TODO, DONE, SKIP = "to do", "done", "skip"
STEP_NAMES = ("write", "changelog", "commit", "build", "tag", "publish", "push", "forge release")


@dataclass(frozen=True)
class Step:
    """One step of a release: its name, whether it is to do, done or skipped, and what it does."""

    name: str
    state: str
    detail: str


@dataclass(frozen=True)
class StepPlan:
    """Every step of one release, in the order they run; a resumed release has its first ones done.

    `index_files` is what the index listed for this version before anything ran (None without
    --publish): the publish step starts from it, so the index is asked once before and once after.
    """

    version: Version
    tag: str
    branch: str
    steps: tuple[Step, ...]
    resumed: bool = False
    index_files: Mapping[str, str] | None = None

    def todo(self, name: str) -> bool:
        return any(step.name == name and step.state == TODO for step in self.steps)

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps if step.state == TODO)


@dataclass(frozen=True)
class Wanted:
    """What this run was asked to do beyond commit and tag, with the words to show for it."""

    publish_to: str | None  # the index's label, None without --publish
    outdir: str
    remote: str | None  # None without --push-tag


def fresh_steps(plan: ReleasePlan, changelog_file: str, wanted: Wanted) -> tuple[Step, ...]:
    """The steps of a release nothing has been done for yet."""
    version = str(plan.next)
    files = [edit.relpath for edit in plan.edits if edit.relpath != changelog_file]
    logged = any(edit.relpath == changelog_file for edit in plan.edits)
    return (
        Step("write", TODO, ", ".join(files))
        if files
        else Step("write", SKIP, f"the version files already say {version}"),
        Step("changelog", TODO, f"section {version} in {changelog_file}")
        if logged
        else Step("changelog", SKIP, f"{changelog_file} already as it should be"),
        Step("commit", TODO, plan.commit_message),
        *_shipping(version, plan.branch, plan.tag, wanted, tagged=False, published=False),
    )


def resumed_steps(
    point: ResumePoint,
    sha: str,
    subject: str,
    branch: str,
    wanted: Wanted,
    *,
    published: bool,
    pushed: bool,
) -> tuple[Step, ...]:
    """The steps of a release whose commit (and maybe tag, upload) an earlier run made."""
    short = sha[:7]
    return (
        Step("write", DONE, f"in the release commit {short}"),
        Step("changelog", DONE, f"in the release commit {short}"),
        Step("commit", DONE, f"{short} {subject}"),
        *_shipping(
            str(point.version),
            branch,
            point.tag,
            wanted,
            tagged=point.tagged,
            published=published,
            pushed=pushed,
        ),
    )


def _shipping(
    version: str,
    branch: str,
    tag: str,
    wanted: Wanted,
    *,
    tagged: bool,
    published: bool,
    pushed: bool = False,
) -> tuple[Step, ...]:
    """build, tag, publish, push, forge release."""
    if wanted.publish_to is None:
        build = Step("build", SKIP, "pass --publish to build and upload")
        publish = Step("publish", SKIP, "pass --publish to upload")
    elif published:
        build = Step("build", SKIP, f"not needed: {version} is on {wanted.publish_to}")
        publish = Step("publish", DONE, f"{wanted.publish_to} lists the sdist and the wheel")
    else:
        build = Step("build", TODO, f"sdist and wheel of {version} into {wanted.outdir}/")
        publish = Step(
            "publish", TODO, f"upload to {wanted.publish_to}, then verify each file's sha256"
        )
    if wanted.remote is None:
        push = Step("push", SKIP, "pass --push-tag to push")
    elif pushed:
        push = Step("push", DONE, f"{wanted.remote} has {branch} and {tag}")
    else:
        push = Step("push", TODO, f"{branch} and {tag} to {wanted.remote} (atomically)")
    return (
        build,
        Step("tag", DONE, tag) if tagged else Step("tag", TODO, f"{tag} (annotated)"),
        publish,
        push,
        Step("forge release", SKIP, f"run `releasekit forge release {version}` after the push"),
    )
