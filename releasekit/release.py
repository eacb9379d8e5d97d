"""Release planning (pure) and the steps that carry a plan out (resumable).

`plan_release(state, config, request)` decides the version, the version-file edits, tag and commit
message, from git and pyproject.toml only: the changelog never decides or blocks a version. The
release pipeline adds the changelog edit afterwards (`notes.release_edit`). `--dry-run` prints
the plan; `pipeline.prepare_release` lists its steps and `pipeline.carry_out` runs them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from releasekit.commits import Change, ChangeSet, RawCommit, collect_changes, release_level
from releasekit.config import Config
from releasekit.errors import ConfigError, GitError, VersionError
from releasekit.git import GitRepository
from releasekit.history import History, read_history
from releasekit.project import FileEdit, ProjectInfo, load_project, version_edits
from releasekit.versioning import (
    Level,
    Version,
    bump_version,
    ensure_forward,
    next_version,
    parse_tag,
)

MANUAL_LEVELS = ("major", "minor", "patch", "prerelease", "release")
PRERELEASE_TYPES = {"alpha": "alpha", "a": "alpha", "beta": "beta", "b": "beta", "rc": "rc"}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReleaseRequest:
    """What the user asked for: a level (auto or manual) and optionally a prerelease channel."""

    level: str = "auto"
    prerelease: str | None = None
    push: bool = False


@dataclass(frozen=True)
class RepoState:
    """Everything read from the repository before planning (the I/O half); never the changelog."""

    history: History
    project: ProjectInfo
    today: dt.date
    remote: str | None


@dataclass(frozen=True)
class ReleasePlan:
    """A fully decided release; `next` is None when there is nothing to release."""

    current: Version | None
    next: Version | None
    reason: str
    channel: str
    branch: str
    level: Level
    changes: tuple[Change, ...]
    ignored: tuple[RawCommit, ...]
    edits: tuple[FileEdit, ...] = ()
    section: str = ""
    """The release notes (tag message): filled in by the changelog step, after the version."""
    tag: str = ""
    commit_message: str = ""
    push_to: str | None = None
    notes_changes: tuple[Change, ...] = ()
    """What the changelog section lists: since the last final release (since the last tag for
    a prerelease)."""
    previous_tag: str | None = None
    changelog_note: str | None = None

    @property
    def releasable(self) -> bool:
        return self.next is not None


def gather_state(repo: GitRepository, config: Config) -> RepoState:
    """Read git history and the project (deepening a shallow clone first); never the changelog:
    the version does not depend on it."""
    repo.ensure_full_history()
    history = read_history(repo, config.tag_format)
    if history.current is None:
        _refuse_foreign_tags(repo, config)
    project = load_project(config)
    today = dt.datetime.now(dt.UTC).date()
    return RepoState(history, project, today, repo.remote_name())


def _refuse_foreign_tags(repo: GitRepository, config: Config) -> None:
    """No tag matches tag_format, yet some look like releases: adopting them beats a new 0.1.0."""
    foreign = []
    for name in repo.tag_names():
        if parse_tag(name, config.tag_format) is not None:
            continue  # our spelling, only not reachable from HEAD (another branch)
        try:
            Version.parse(name.removeprefix("v"))
        except VersionError:
            continue
        foreign.append(name)
    if foreign:
        spelled = "{version}" if not foreign[0].startswith("v") else "v{version}"
        raise ConfigError(
            f"no tag matches tag_format {config.tag_format!r}, but {', '.join(foreign[:5])} "
            "look like release tags: a first release now would ignore that history",
            hint=f'set tag_format = "{spelled}" under [tool.releasekit] to adopt them',
        )


def resolve_channel(config: Config, branch: str, prerelease: str | None) -> str:
    """The channel from --prerelease-type, else from the branch map; refuse unmapped branches."""
    if prerelease is not None:
        if prerelease not in PRERELEASE_TYPES:
            raise VersionError(
                f"unknown prerelease type {prerelease!r}", hint="use alpha, beta or rc"
            )
        return PRERELEASE_TYPES[prerelease]
    channel = config.channel_for(branch)
    if channel is None:
        mapped = ", ".join(f"{name} -> {value}" for name, value in config.branches.items())
        raise GitError(
            f"branch {branch!r} has no release channel (configured: {mapped})",
            hint=f'add it under [tool.releasekit.branches], e.g. "{branch}" = "rc", '
            "or pass --prerelease-type alpha|beta|rc",
        )
    return channel  # validated by the config: final, alpha, beta or rc


def decide_version(
    state: RepoState,
    config: Config,
    request: ReleaseRequest,
    channel: str,
    since_final: ChangeSet,
    since_current: ChangeSet,
) -> tuple[Version | None, str, Level]:
    """Next version (None: nothing to release), the reason, and the level since the current release."""
    history = state.history
    declared = Version.parse(state.project.declared_version)
    current = history.current.version if history.current else None
    last_final = history.last_final.version if history.last_final else None
    level_final = release_level(since_final.changes, config.types)
    level_current = release_level(since_current.changes, config.types)
    if request.level == "auto":
        new = next_version(
            current=current,
            last_final=last_final,
            declared=declared,
            level_since_final=level_final,
            level_since_current=level_current,
            channel=channel,
            major_on_zero=config.major_on_zero,
        )
        if new is None:
            where = f"since {history.current.name}" if history.current else "in the history"
            return None, f"nothing to release: no releasable commits {where}", level_current
        return new, _auto_reason(level_final, level_current, current), level_current
    if request.level not in MANUAL_LEVELS:
        raise VersionError(
            f"unknown bump level {request.level!r}",
            hint="use auto, major, minor, patch, prerelease or release",
        )
    base = max(current, declared) if current else declared
    pre_type = None if channel == "final" else channel
    if request.level == "prerelease" and pre_type is None:
        pre_type = "rc"
    new = bump_version(base, request.level, pre_type)
    return new, f"manual {request.level} bump of {base}", level_current


def _auto_reason(level_final: Level, level_current: Level, current: Version | None) -> str:
    if current is None:
        return "first release: the version declared in pyproject.toml"
    return f"{level_current.name.lower()}-level changes since {current} ({level_final.name.lower()} since the last final release)"


def plan_release(state: RepoState, config: Config, request: ReleaseRequest) -> ReleasePlan:
    """Decide the whole release; raises on refusals, returns next=None when nothing is releasable."""
    base, since_final, changeset = _decide(state, config, request)
    new = base.next
    if new is None:
        return base
    tag = config.format_tag(str(new))  # prepare_release checks that no branch has this tag yet
    # A final release lists everything since the last final release; a prerelease since the last tag.
    listed = (changeset if new.is_prerelease else since_final).changes
    return replace(
        base,
        edits=tuple(version_edits(state.project, str(new))),
        tag=tag,
        commit_message=config.commit_message.replace("{version}", str(new)),
        push_to=state.remote if request.push else None,
        notes_changes=listed,
        previous_tag=_previous_tag(state.history, new),
    )


def plan_version(state: RepoState, config: Config, request: ReleaseRequest) -> ReleasePlan:
    """Only the version decision: no file is read for editing (what `version --print` needs)."""
    return _decide(state, config, request)[0]


def _decide(
    state: RepoState, config: Config, request: ReleaseRequest
) -> tuple[ReleasePlan, ChangeSet, ChangeSet]:
    """The plan without files, and the changes since the last final release and the last tag."""
    history = state.history
    channel = resolve_channel(config, history.branch, request.prerelease)
    current = history.current.version if history.current else None
    since_final = collect_changes(history.commits_since_final)
    changeset = collect_changes(
        [c for c in history.commits_since_final if c.sha in history.since_current]
    )
    new, reason, level = decide_version(state, config, request, channel, since_final, changeset)
    deciding = tuple(
        c for c in changeset.changes if c.breaking or config.level_of(c.type) > Level.NONE
    )
    base = ReleasePlan(
        current=current,
        next=None,
        reason=reason,
        channel=channel,
        branch=history.branch,
        level=level,
        changes=deciding,
        ignored=changeset.ignored,
    )
    if new is None:
        return base, since_final, changeset
    if current is not None:
        ensure_forward(current, new)
    return replace(base, next=new), since_final, changeset


def _previous_tag(history: History, new: Version) -> str | None:
    if new.is_prerelease:
        return history.current.name if history.current else None
    return history.last_final.name if history.last_final else None


def describe_changes(changes: Sequence[Change]) -> list[str]:
    """One line per change that decided the version: `abc1234 feat(scope)!: description`."""
    lines = []
    for change in changes:
        scope = f"({change.scope})" if change.scope else ""
        bang = "!" if change.breaking else ""
        lines.append(f"{change.short_sha} {change.type}{scope}{bang}: {change.description}")
    return lines
