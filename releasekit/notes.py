"""Release notes from git history: one version's section, or CHANGELOG.md brought up to date.

History is read as one `git log` plus one tag listing; commits are attributed to releases in one
pass (`split_into_releases`), so a 50k-commit history renders in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from releasekit.changelog import (
    extract_section,
    render_release_section,
    render_unreleased,
    update_changelog,
    versions_in_changelog,
)
from releasekit.commits import Change, ChangeSet, RawCommit, changes_of, collect_changes
from releasekit.config import Config
from releasekit.errors import ChangelogError, VersionError
from releasekit.git import GitRepository, Tag
from releasekit.history import split_into_releases
from releasekit.project import FileEdit
from releasekit.versioning import Version


@dataclass(frozen=True)
class ReleasedVersion:
    """A release tag with the commits its changelog section covers."""

    tag: Tag
    previous_tag: str | None
    changes: ChangeSet


def released_versions(
    repo: GitRepository, config: Config
) -> tuple[list[ReleasedVersion], ChangeSet]:
    """Every reachable release, oldest first, plus the unreleased changes after the newest tag.

    A final release covers everything since the previous final release (its prereleases included);
    a prerelease covers what came since the tag before it.
    """
    parsed: dict[str, tuple[Change, ...]] = {}
    commits = repo.log(None, each=lambda c: parsed.__setitem__(c.sha, changes_of(c)))
    # The whole log is at hand, so reachability is a set lookup, not a second history walk.
    shas = {commit.sha for commit in commits}
    tags = sorted(
        (t for t in repo.all_tags(config.tag_format) if t.sha in shas), key=lambda t: t.version
    )
    groups = split_into_releases(commits, {t.sha: t.name for t in tags}, [t.name for t in tags])
    releases: list[ReleasedVersion] = []
    pending: list[RawCommit] = []  # commits of prereleases since the last final release
    previous: Tag | None = None
    previous_final: Tag | None = None
    for tag in tags:
        own = groups.get(tag.name, ())
        if tag.version.is_prerelease:
            covered: tuple[RawCommit, ...] = own
            prev_name = previous.name if previous else None
            pending.extend(own)
        else:
            covered = (*own, *pending)
            prev_name = previous_final.name if previous_final else None
            pending = []
            previous_final = tag
        releases.append(ReleasedVersion(tag, prev_name, collect_changes(covered, parsed)))
        previous = tag
    return releases, collect_changes(groups.get(None, ()), parsed)


def render_section(config: Config, release: ReleasedVersion) -> str:
    return render_release_section(
        str(release.tag.version),
        release.tag.date,
        release.changes.changes,
        tag=release.tag.name,
        previous_tag=release.previous_tag,
        repository_url=config.repository_url,
        types=config.types,
    )


def section_for(config: Config, version: str) -> str:
    """The notes of one version: its section in CHANGELOG.md if present, else rendered from git."""
    wanted = Version.parse(version)
    path = config.changelog_path
    if path.is_file():
        found = extract_section(path.read_text(encoding="utf-8"), str(wanted))
        if found is not None:
            return found
    releases, _ = released_versions(GitRepository(config.root), config)
    for release in releases:
        if release.tag.version == wanted:
            return render_section(config, release)
    raise VersionError(
        f"no release {wanted} in {config.changelog_file} or among the tags reachable from HEAD",
        hint="list releases with `git tag --list`; the tag must match tag_format "
        f"{config.tag_format!r}",
    )


def _unreleased(config: Config, releases: Sequence[ReleasedVersion], unreleased: ChangeSet) -> str:
    return render_unreleased(
        unreleased.changes,
        last_tag=releases[-1].tag.name if releases else None,
        repository_url=config.repository_url,
        types=config.types,
    )


def full_changelog(config: Config) -> str:
    """A complete CHANGELOG.md rendered from scratch: every release and the Unreleased block."""
    releases, unreleased = released_versions(GitRepository(config.root), config)
    sections = [render_section(config, r) for r in reversed(releases)]
    return update_changelog(None, sections, _unreleased(config, releases, unreleased))


def changelog_update(config: Config, *, only_unreleased: bool) -> FileEdit:
    """CHANGELOG.md with missing releases inserted and the Unreleased block refreshed.

    Sections already in the file are never re-rendered: every hand-written byte stays.
    """
    path = config.changelog_path
    before = path.read_text(encoding="utf-8") if path.is_file() else None
    releases, unreleased = released_versions(GitRepository(config.root), config)
    newest = _newest_present(before)
    missing = [
        r for r in releases if not only_unreleased and (newest is None or r.tag.version > newest)
    ]
    sections = [render_section(config, r) for r in reversed(missing)]
    try:
        after = update_changelog(before, sections, _unreleased(config, releases, unreleased))
    except ChangelogError as exc:
        raise ChangelogError(f"{config.changelog_file}: {exc.message}", hint=exc.hint) from exc
    return FileEdit(path=path, relpath=config.changelog_file, before=before, after=after)


def _newest_present(text: str | None) -> Version | None:
    """The newest release already written; older tags missing from the file are left alone."""
    versions = []
    for raw in versions_in_changelog(text or ""):
        try:
            versions.append(Version.parse(raw))
        except VersionError:
            continue
    return max(versions, default=None)
