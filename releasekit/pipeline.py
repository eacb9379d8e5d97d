"""`releasekit release`: plan, then carry the plan out step by step, resuming where a run stopped.

Order (design §3): version files + changelog -> release commit -> tag -> push. A run that stops
after the release commit leaves HEAD as an untagged release commit; the next run sees it and goes
on from the tag, so a release is never bumped twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from releasekit.config import Config
from releasekit.errors import GitError
from releasekit.git import GitRepository
from releasekit.release import (
    Progress,
    ReleasePlan,
    ReleaseRequest,
    ResumePoint,
    find_resume_point,
    gather_state,
    plan_release,
    push_release,
    resolve_channel,
    tag_release,
    write_and_commit,
)


@dataclass(frozen=True)
class ReleaseOutcome:
    """What a run did (or, for a dry run, would do)."""

    plan: ReleasePlan | None
    resumed: ResumePoint | None = None
    steps: tuple[str, ...] = field(default_factory=tuple)

    @property
    def released(self) -> bool:
        return self.resumed is not None or (self.plan is not None and self.plan.releasable)


def run_release(
    config: Config, request: ReleaseRequest, *, dry_run: bool, progress: Progress
) -> ReleaseOutcome:
    """Plan and (unless `dry_run`) carry out a release; resumes an interrupted one first."""
    repo = GitRepository(config.root)
    repo.ensure_clean()
    branch = repo.current_branch()
    resume = find_resume_point(repo, config)
    if resume is not None and _unfinished(repo, resume, request, branch):
        return _resume(repo, config, resume, request, branch, dry_run=dry_run, progress=progress)
    _, state = gather_state(config, for_release=True)
    plan = plan_release(state, config, request)
    if not plan.releasable and request.push and state.history.current is not None:
        # An earlier push failed and commits came after it: the release is done, its push is not.
        point = ResumePoint(state.history.current.version, state.history.current.name, tagged=True)
        if _unfinished(repo, point, request, branch):
            return _resume(repo, config, point, request, branch, dry_run=dry_run, progress=progress)
    if plan.releasable and repo.tag_exists(plan.tag):
        raise GitError(
            f"tag {plan.tag} already exists (not reachable from {plan.branch})",
            hint=f"see where it points with `git show {plan.tag}`; delete it if it is stale, "
            "or release another version",
        )
    if not plan.releasable or dry_run:
        return ReleaseOutcome(plan=plan)
    steps: list[str] = []

    def record(line: str) -> None:
        steps.append(line)
        progress(line)

    assert plan.next is not None
    write_and_commit(repo, plan, record)
    tag_release(repo, plan.tag, plan.next, plan.section, record)
    if request.push:
        push_release(repo, plan.push_to, plan.branch, plan.tag, record)
    return ReleaseOutcome(plan=plan, steps=tuple(steps))


def _unfinished(
    repo: GitRepository, resume: ResumePoint, request: ReleaseRequest, branch: str
) -> bool:
    """An untagged release commit, or a tagged one whose requested push has not happened."""
    if not resume.tagged:
        return True
    if not request.push:
        return False
    remote = repo.remote_name()
    if remote is None:
        return True  # push_release explains the missing remote
    branch_done, tag_done = repo.remote_has(remote, branch, resume.tag)
    return not (branch_done and tag_done)


def _resume(
    repo: GitRepository,
    config: Config,
    resume: ResumePoint,
    request: ReleaseRequest,
    branch: str,
    *,
    dry_run: bool,
    progress: Progress,
) -> ReleaseOutcome:
    resolve_channel(config, branch, request.prerelease)  # the same refusal as a fresh run
    steps: list[str] = []
    pending = ([] if resume.tagged else [f"tag {resume.tag}"]) + (
        [f"push {branch} and {resume.tag}"] if request.push else []
    )
    progress(
        f"resuming the release of {resume.version}: {', '.join(pending) or 'nothing left'} to do"
    )
    if dry_run:
        return ReleaseOutcome(plan=None, resumed=resume, steps=tuple(f"would {s}" for s in pending))

    def record(line: str) -> None:
        steps.append(line)
        progress(line)

    if not resume.tagged:
        if repo.tag_exists(resume.tag):
            raise GitError(
                f"tag {resume.tag} exists but does not point at the release commit HEAD",
                hint=f"inspect it with `git show {resume.tag}`; delete it if it is stale",
            )
        tag_release(repo, resume.tag, resume.version, _notes_of(config, resume), record)
    if request.push:
        push_release(repo, repo.remote_name(), branch, resume.tag, record)
    return ReleaseOutcome(plan=None, resumed=resume, steps=tuple(steps))


def _notes_of(config: Config, resume: ResumePoint) -> str:
    from releasekit.changelog import extract_section

    path = config.changelog_path
    if not path.is_file():
        return ""
    return extract_section(path.read_text(encoding="utf-8"), str(resume.version)) or ""
