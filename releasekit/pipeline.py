"""`releasekit release`: plan, then carry the plan out step by step, resuming where a run stopped.

Order (design §3): version files + changelog -> release commit -> build -> tag -> publish -> push.
The build comes before the tag, so a failed build leaves no tag. A run that stops after the
release commit leaves HEAD as the release commit; the next run sees it and carries on with what is
missing (tag, upload, push), so a release is never bumped twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from releasekit.changelog_step import changelog_to_release, with_changelog
from releasekit.config import Config
from releasekit.errors import GitError, PublishError
from releasekit.git import GitRepository
from releasekit.release import (
    Progress,
    ReleasePlan,
    ReleaseRequest,
    gather_state,
    plan_release,
    resolve_channel,
)
from releasekit.steps import (
    ResumePoint,
    find_resume_point,
    push_release,
    tag_release,
    write_and_commit,
)
from releasekit.versioning import Version

if TYPE_CHECKING:
    from releasekit.build import Distributions


@dataclass(frozen=True)
class PublishOptions:
    """Where and how `release --publish` builds and uploads."""

    repository: str | None = None
    force: bool = False
    isolation: bool = True
    outdir: str = "dist"


@dataclass(frozen=True)
class ReleaseOutcome:
    """What a run did (or, for a dry run, would do)."""

    plan: ReleasePlan | None
    resumed: ResumePoint | None = None
    steps: tuple[str, ...] = field(default_factory=tuple)


def run_release(
    config: Config,
    request: ReleaseRequest,
    *,
    publish: PublishOptions | None = None,
    dry_run: bool,
    progress: Progress,
) -> ReleaseOutcome:
    """Plan and (unless `dry_run`) carry out a release; finishes an interrupted one first."""
    repo = GitRepository(config.root)
    start = changelog_to_release(repo, config)
    branch = repo.current_branch()
    resume = find_resume_point(repo, config)
    if resume is not None:
        pending = _pending(repo, config, resume, request, publish, branch)
        if pending:
            resolve_channel(config, branch, request.prerelease)  # the same refusal as a fresh run
            return _resume(repo, config, resume, pending, publish, branch, dry_run, progress)
    state = gather_state(repo, config)
    plan = plan_release(state, config, request)
    if plan.releasable:  # only now, with the version decided, does the changelog come in
        plan = with_changelog(plan, config, start, state.today)
    current = state.history.current
    if not plan.releasable and current is not None and (request.push or publish):
        # Commits came after a release whose push or upload failed: finish that release.
        point = ResumePoint(current.version, current.name, tagged=True)
        pending = _pending(repo, config, point, request, publish, branch)
        if pending:
            return _resume(repo, config, point, pending, publish, branch, dry_run, progress)
    if plan.releasable and repo.tag_exists(plan.tag):
        raise GitError(
            f"tag {plan.tag} already exists (not reachable from {plan.branch})",
            hint=f"see where it points with `git show {plan.tag}`; delete it if it is stale, "
            "or release another version",
        )
    if plan.releasable and publish is not None:
        _refuse_existing(config, state.project.name, plan, publish)
    if not plan.releasable or dry_run:
        return ReleaseOutcome(plan=plan)
    assert plan.next is not None
    steps: list[str] = []

    def record(line: str) -> None:
        steps.append(line)
        progress(line)

    if plan.changelog_note:
        record(plan.changelog_note)
    write_and_commit(repo, plan, record)
    dists = _build(config, plan.next, publish, record) if publish else None
    tag_release(repo, plan.tag, plan.next, plan.section, record)
    if publish and dists:
        _publish(config, dists, publish, record)
    if request.push:
        push_release(repo, plan.push_to, plan.branch, plan.tag, record)
    return ReleaseOutcome(plan=plan, steps=tuple(steps))


def _refuse_existing(config: Config, name: str, plan: ReleasePlan, publish: PublishOptions) -> None:
    """Before anything changes: the version must not be on the index yet (unless --force)."""
    from releasekit.publish import existing_files, resolve_target

    target = resolve_target(config, publish.repository)
    present = existing_files(target, name, str(plan.next))
    if present and not publish.force:
        raise PublishError(
            f"{name} {plan.next} already exists on {target.label}: {', '.join(sorted(present))}",
            hint="release another version, or pass --force if the index allows overwriting",
        )


def _pending(
    repo: GitRepository,
    config: Config,
    point: ResumePoint,
    request: ReleaseRequest,
    publish: PublishOptions | None,
    branch: str,
) -> list[str]:
    """The steps an earlier run of this release did not finish: tag, publish, push."""
    steps = [] if point.tagged else ["tag"]
    if publish is not None and not _published(config, point.version, publish):
        steps.append("publish")
    if request.push:
        remote = repo.remote_name()
        done = remote is not None and all(repo.remote_has(remote, branch, point.tag))
        if not done:
            steps.append("push")
    return steps


def _published(config: Config, version: Version, publish: PublishOptions) -> bool:
    """Whether the index already lists an sdist and a wheel of `version`."""
    from releasekit.build import project_name
    from releasekit.publish import existing_files, resolve_target

    target = resolve_target(config, publish.repository)
    files = existing_files(target, project_name(config.root), str(version))
    return any(f.endswith(".whl") for f in files) and any(f.endswith(".tar.gz") for f in files)


def _resume(
    repo: GitRepository,
    config: Config,
    point: ResumePoint,
    pending: list[str],
    publish: PublishOptions | None,
    branch: str,
    dry_run: bool,
    progress: Progress,
) -> ReleaseOutcome:
    progress(f"resuming the release of {point.version}: {', '.join(pending)} left to do")
    if dry_run:
        return ReleaseOutcome(plan=None, resumed=point, steps=tuple(f"would {s}" for s in pending))
    if "publish" in pending and point.tagged and not repo.tag_points_at_head(point.tag):
        raise PublishError(
            f"{point.tag} was never uploaded, and HEAD has moved on since",
            hint=f"check out {point.tag} and run `releasekit publish` there, then release again",
        )
    steps: list[str] = []

    def record(line: str) -> None:
        steps.append(line)
        progress(line)

    dists = (
        _build(config, point.version, publish, record) if publish and "publish" in pending else None
    )
    if "tag" in pending:
        if repo.tag_exists(point.tag):
            raise GitError(
                f"tag {point.tag} exists but does not point at the release commit HEAD",
                hint=f"inspect it with `git show {point.tag}`; delete it if it is stale",
            )
        tag_release(repo, point.tag, point.version, _notes_of(config, point), record)
    if publish and dists:
        _publish(config, dists, publish, record)
    if "push" in pending:
        push_release(repo, repo.remote_name(), branch, point.tag, record)
    return ReleaseOutcome(plan=None, resumed=point, steps=tuple(steps))


def _build(
    config: Config, version: Version, publish: PublishOptions | None, progress: Progress
) -> Distributions:
    from releasekit.build import build_distributions

    options = publish or PublishOptions()
    outdir = config.root / options.outdir
    return build_distributions(
        config.root, str(version), outdir=outdir, isolation=options.isolation, progress=progress
    )


def _publish(
    config: Config, dists: Distributions, publish: PublishOptions, progress: Progress
) -> None:
    from releasekit.publish import publish as upload_and_verify

    upload_and_verify(
        config, dists, repository=publish.repository, force=publish.force, progress=progress
    )


def publish_current(
    config: Config, publish: PublishOptions, *, skip_build: bool, progress: Progress
) -> list[str]:
    """`releasekit publish`: build (or reuse) and upload the version declared in pyproject.toml."""
    from releasekit.build import find_distributions
    from releasekit.project import load_project

    version = Version.parse(load_project(config).declared_version)
    GitRepository(config.root).ensure_clean()
    if skip_build:
        dists = find_distributions(config.root, str(version), outdir=config.root / publish.outdir)
    else:
        dists = _build(config, version, publish, progress)
    from releasekit.publish import publish as upload_and_verify

    return upload_and_verify(
        config, dists, repository=publish.repository, force=publish.force, progress=progress
    )


def _notes_of(config: Config, point: ResumePoint) -> str:
    from releasekit.changelog import extract_section
    from releasekit.notes import read_changelog

    return extract_section(read_changelog(config) or "", str(point.version)) or ""
