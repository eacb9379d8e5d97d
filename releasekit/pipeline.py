"""`releasekit release`: plan every step, then carry out those still to do.

Order (design §3): version files and lockfiles -> changelog -> release commit -> build -> tag ->
publish -> push (-> forge release, its own command). The build comes before the tag, so a failed
build leaves no tag. A run that stops after the release commit leaves HEAD as the release commit;
the next run plans the same steps with the first ones done and carries on with the rest, so a
release is never bumped twice. `--dry-run` prints the plan and stops before `carry_out`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    StepPlan,
    Wanted,
    find_resume_point,
    fresh_steps,
    push_release,
    resumed_steps,
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
class Prepared:
    """A planned release: the version decision (None when resuming) and every step of it.

    `steps` is None when there is nothing to release (`plan.reason` says why).
    """

    plan: ReleasePlan | None
    steps: StepPlan | None = None
    remote: str | None = None


def prepare_release(
    config: Config, request: ReleaseRequest, *, publish: PublishOptions | None = None
) -> Prepared:
    """Decide the release and list its steps; refusals come here, before anything changes."""
    repo = GitRepository(config.root)
    start = changelog_to_release(repo, config)
    branch = repo.current_branch()
    resume = find_resume_point(repo, config)
    if resume is not None:
        prepared = _resumed(repo, config, resume, request, publish, branch)
        if prepared.steps is not None and prepared.steps.pending:
            resolve_channel(config, branch, request.prerelease)  # the same refusal as a fresh run
            return prepared
    state = gather_state(repo, config)
    plan = plan_release(state, config, request)
    current = state.history.current
    if not plan.releasable:
        if current is not None and (request.push or publish):
            # Commits came after a release whose push or upload failed: finish that release.
            point = ResumePoint(current.version, current.name, tagged=True)
            prepared = _resumed(repo, config, point, request, publish, branch)
            if prepared.steps is not None and prepared.steps.pending:
                return prepared
        return Prepared(plan)
    plan = with_changelog(plan, config, start, state.today)  # only now, with the version decided
    if repo.tag_exists(plan.tag):
        raise GitError(
            f"tag {plan.tag} already exists (not reachable from {plan.branch})",
            hint=f"see where it points with `git show {plan.tag}`; delete it if it is stale, "
            "or release another version",
        )
    remote = _remote_for(repo, request)
    listed, label = _index_listing(config, str(plan.next), publish)
    if listed and publish is not None and not publish.force:
        raise PublishError(
            f"{state.project.name} {plan.next} already exists on {label}: "
            + ", ".join(sorted(listed)),
            hint="release another version, or pass --force if the index allows overwriting",
        )
    wanted = Wanted(label, publish.outdir if publish else "dist", remote)
    assert plan.next is not None
    steps = StepPlan(
        plan.next,
        plan.tag,
        plan.branch,
        fresh_steps(plan, config.changelog_file, wanted),
        index_files=listed if publish else None,
    )
    return Prepared(plan, steps, remote)


def _remote_for(repo: GitRepository, request: ReleaseRequest) -> str | None:
    """The remote --push-tag pushes to; refused up front when there is none."""
    if not request.push:
        return None
    remote = repo.remote_name()
    if remote is None:
        raise GitError(
            "--push-tag was given but the repository has no remote",
            hint="add one with `git remote add origin URL`, or drop --push-tag",
        )
    return remote


def _index_listing(
    config: Config, version: str, publish: PublishOptions | None
) -> tuple[dict[str, str], str | None]:
    """What the index lists for `version` (asked once, before any step) and the index's label."""
    if publish is None:
        return {}, None
    from releasekit.build import project_name
    from releasekit.publish import existing_files, resolve_target

    target = resolve_target(config, publish.repository)
    return existing_files(target, project_name(config.root), version), target.label


def _resumed(
    repo: GitRepository,
    config: Config,
    point: ResumePoint,
    request: ReleaseRequest,
    publish: PublishOptions | None,
    branch: str,
) -> Prepared:
    """The steps of a release an earlier run began: commit done, maybe tag, upload, push too."""
    listed, label = _index_listing(config, str(point.version), publish)
    published = any(f.endswith(".whl") for f in listed) and any(
        f.endswith(".tar.gz") for f in listed
    )
    remote = _remote_for(repo, request)
    pushed = remote is not None and all(repo.remote_has(remote, branch, point.tag))
    sha = repo.commit_of(point.tag) if point.tagged else repo.head_sha()
    wanted = Wanted(label, publish.outdir if publish else "dist", remote)
    subject = config.commit_message.replace("{version}", str(point.version)).splitlines()[0]
    steps = StepPlan(
        point.version,
        point.tag,
        branch,
        resumed_steps(point, sha, subject, branch, wanted, published=published, pushed=pushed),
        resumed=True,
        index_files=listed if publish else None,
    )
    if not steps.pending:
        return Prepared(None, steps, remote)
    if steps.todo("publish") and point.tagged and not repo.tag_points_at_head(point.tag):
        raise PublishError(
            f"{point.tag} was never uploaded, and HEAD has moved on since",
            hint=f"check out {point.tag} and run `releasekit publish` there, then release again",
        )
    if steps.todo("tag") and repo.tag_exists(point.tag):
        raise GitError(
            f"tag {point.tag} exists but does not point at the release commit HEAD",
            hint=f"inspect it with `git show {point.tag}`; delete it if it is stale",
        )
    return Prepared(None, steps, remote)


def carry_out(
    config: Config,
    prepared: Prepared,
    *,
    publish: PublishOptions | None,
    progress: Progress,
) -> None:
    """Run the planned steps still to do, in order; each reports what it did through `progress`."""
    steps = prepared.steps
    assert steps is not None
    repo = GitRepository(config.root)
    plan = prepared.plan
    if steps.todo("commit"):
        assert plan is not None
        if plan.changelog_note:
            progress(plan.changelog_note)
        write_and_commit(repo, plan, config.changelog_file, progress)
    dists = _build(config, steps.version, publish, progress) if steps.todo("build") else None
    if steps.todo("tag"):
        notes = plan.section if plan is not None else _notes_of(config, steps.version)
        tag_release(repo, steps.tag, steps.version, notes, progress)
    if steps.todo("publish") and publish is not None and dists is not None:
        _publish(config, dists, publish, progress, steps.index_files)
    if steps.todo("push"):
        push_release(repo, prepared.remote, steps.branch, steps.tag, progress)


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
    config: Config,
    dists: Distributions,
    publish: PublishOptions,
    progress: Progress,
    present: Mapping[str, str] | None,
) -> None:
    from releasekit.publish import publish as upload_and_verify

    upload_and_verify(
        config,
        dists,
        repository=publish.repository,
        force=publish.force,
        progress=progress,
        present=present,
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


def _notes_of(config: Config, version: Version) -> str:
    from releasekit.changelog import extract_section
    from releasekit.notes import read_changelog

    return extract_section(read_changelog(config) or "", str(version)) or ""
