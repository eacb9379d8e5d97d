"""Release notes from git history: one version's section, or CHANGELOG.md brought up to date.

Only what is missing is read: `--unreleased` reads `<last tag>..HEAD`; `changelog` reads from the
last final release the file already has (nothing at all when it is up to date); only a file with
no release yet, or `--stdout`, reads the whole history. Commits are attributed to releases in one
pass (`split_into_releases`).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass

from releasekit.changelog import (
    extract_section,
    hand_kept_unreleased,
    managed_blocks,
    scan,
    split_lines,
    update_changelog,
    versions_in_changelog,
)
from releasekit.changelog_release import NewRelease, add_links, heading_style, links_follow
from releasekit.changelog_template import DEFAULT_HEADING, SectionInput, render_section
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
    previous_version: Version | None = None


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while a history is read.

    Reading 100k commits creates some 400k small acyclic objects (commits, changes, tuples);
    the collector would walk them again and again as they pile up, a fifth of the CPU of a full
    render. Reference counting still frees everything; nothing read here forms a cycle.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # Straight into the oldest generation, unscanned: re-enabling with them all still young
        # would make the very next allocation scan every one of them once more.
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def released_versions(
    repo: GitRepository, config: Config, since: Tag | None = None
) -> tuple[list[ReleasedVersion], ChangeSet]:
    """Reachable releases after `since` (None: all), oldest first, and the changes after the newest."""
    with _no_cycle_collection():
        return _released_versions(repo, config, since)


def _released_versions(
    repo: GitRepository, config: Config, since: Tag | None
) -> tuple[list[ReleasedVersion], ChangeSet]:
    """Reachable releases after `since` (None: all), oldest first, and the changes after the newest.

    A final release covers everything since the previous final release (its prereleases included);
    a prerelease covers what came since the tag before it. `since` must be a final release (or
    None): it is where the history read starts.
    """
    parsed: dict[str, tuple[Change, ...]] = {}
    commits = repo.log(
        f"{since.sha}..HEAD" if since else None,
        each=lambda c: parsed.__setitem__(c.sha, changes_of(c)),
    )
    # The log is at hand, so reachability is a set lookup, not a second history walk.
    shas = {commit.sha for commit in commits}
    tags = sorted(
        (t for t in repo.all_tags(config.tag_format) if t.sha in shas), key=lambda t: t.version
    )
    groups = split_into_releases(commits, {t.sha: t.name for t in tags}, [t.name for t in tags])
    releases: list[ReleasedVersion] = []
    pending: list[RawCommit] = []  # commits of prereleases since the last final release
    previous: Tag | None = since
    previous_final: Tag | None = since
    for tag in tags:
        own = groups.get(tag.name, ())
        if tag.version.is_prerelease:
            covered: tuple[RawCommit, ...] = own
            before = previous
            pending.extend(own)
        else:
            covered = (*own, *pending)
            before = previous_final
            pending = []
            previous_final = tag
        releases.append(
            ReleasedVersion(
                tag,
                before.name if before else None,
                collect_changes(covered, parsed),
                before.version if before else None,
            )
        )
        previous = tag
    return releases, collect_changes(groups.get(None, ()), parsed)


def render_released(
    config: Config, release: ReleasedVersion, style: str = DEFAULT_HEADING, *, linked: bool = False
) -> str:
    section = SectionInput(
        str(release.tag.version),
        release.tag.date,
        release.changes.changes,
        release.tag.name,
        release.previous_tag,
        str(release.previous_version) if release.previous_version else None,
        heading_style=style,
        link_reference=linked,
    )
    return _render(config, section)


def _as_new(release: ReleasedVersion) -> NewRelease:
    previous = str(release.previous_version) if release.previous_version else None
    return NewRelease(
        str(release.tag.version),
        release.tag.date,
        release.changes.changes,
        release.tag.name,
        release.previous_tag,
        previous,
    )


def _render(config: Config, section: SectionInput) -> str:
    return render_section(
        section,
        repository_url=config.repository_url,
        types=config.types,
        template=config.template_path,
    )


def read_changelog(config: Config) -> str | None:
    """The changelog's text, None when there is no file; ChangelogError when it is not text."""
    path = config.changelog_path
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ChangelogError(
            f"{config.changelog_file} is not UTF-8 text (byte {exc.start} cannot be decoded)",
            hint="convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8), or point changelog_file"
            " at another file",
        ) from exc


def ensure_markdown(config: Config) -> None:
    """Refuse to write Markdown sections into a reStructuredText changelog (PSR's, pypa/build's)."""
    if config.changelog_path.suffix.lower() in {".rst", ".rest"}:
        raise ChangelogError(
            f"{config.changelog_file} is not Markdown; releasekit writes Markdown sections and"
            " would mix the two",
            hint='set changelog_file = "CHANGELOG.md" under [tool.releasekit] (it is created on'
            f" the next release) and keep {config.changelog_file} as it is, or convert it to"
            " Markdown",
        )


def section_for(config: Config, version: str) -> str:
    """The notes of one version: its section in CHANGELOG.md if present, else rendered from git."""
    wanted = Version.parse(version)
    path = config.changelog_path
    if path.is_file():
        found = extract_section(read_changelog(config) or "", str(wanted))
        if found is not None:
            return found
    releases, _ = released_versions(GitRepository(config.root), config)
    for release in releases:
        if release.tag.version == wanted:
            return render_released(config, release)
    raise VersionError(
        f"no release {wanted} in {config.changelog_file} or among the tags reachable from HEAD",
        hint="list releases with `git tag --list`; the tag must match tag_format "
        f"{config.tag_format!r}",
    )


def _unreleased(
    config: Config, last: Tag | None, unreleased: ChangeSet, *, heading: bool = True
) -> str:
    previous = last.name if last else None
    style = DEFAULT_HEADING if heading else ""
    return _render(
        config, SectionInput(None, None, unreleased.changes, None, previous, None, style)
    )


def full_changelog(config: Config) -> str:
    """A complete CHANGELOG.md rendered from scratch: every release and the Unreleased block."""
    releases, unreleased = released_versions(GitRepository(config.root), config)
    with _no_cycle_collection():
        sections = [render_released(config, r) for r in reversed(releases)]
    last = releases[-1].tag if releases else None
    return update_changelog(None, sections, _unreleased(config, last, unreleased))


def changelog_update(config: Config, *, only_unreleased: bool) -> FileEdit:
    """CHANGELOG.md brought up to date; with `only_unreleased`, just the managed block refreshed.

    Without it, the releases missing from the file are inserted in the file's heading style and a
    managed block already there is refreshed; none is added. Sections already in the file are
    never re-rendered: every hand-written byte stays.
    """
    ensure_markdown(config)
    path = config.changelog_path
    before = read_changelog(config)
    after = updated_text(GitRepository(config.root), config, before, only_unreleased)
    if before is None and not after:
        before = after  # no file and nothing to write: up to date, no empty file created
    return FileEdit(path=path, relpath=config.changelog_file, before=before, after=after)


def updated_text(
    repo: GitRepository, config: Config, before: str | None, only_unreleased: bool
) -> str:
    """What `releasekit changelog [--unreleased]` makes of the changelog text `before`."""
    try:
        has_block = bool(before) and bool(managed_blocks(scan(split_lines(before or ""))))
        sections: list[str] = []
        missing: list[ReleasedVersion] = []
        if not only_unreleased:
            missing = _missing_releases(repo, config, before)
            style = heading_style(before) or DEFAULT_HEADING
            linked = bool(missing) and links_follow(before, _as_new(missing[0]))
            sections = [render_released(config, r, style, linked=linked) for r in reversed(missing)]
        if not (only_unreleased or has_block):
            if not sections:
                return before or ""
            return add_links(update_changelog(before, sections, None), map(_as_new, missing))
        current = next(iter(repo.release_tags(config.tag_format, down_to_final=True)), None)
        _, pending = released_versions(repo, config, since=current)
        lines = split_lines(before or "")
        own_heading = hand_kept_unreleased(lines, scan(lines)) is None
        block = _unreleased(config, current, pending, heading=own_heading)
        return add_links(update_changelog(before, sections, block), map(_as_new, missing))
    except ChangelogError as exc:
        raise ChangelogError(f"{config.changelog_file}: {exc.message}", hint=exc.hint) from exc


def _missing_releases(
    repo: GitRepository, config: Config, text: str | None
) -> list[ReleasedVersion]:
    """Reachable releases newer than the newest the file has, read from the last final below them."""
    newest = _newest_present(text)
    tags = repo.all_tags(config.tag_format)  # highest first; one cheap call
    candidates = [t for t in tags if newest is None or t.version > newest]
    if not candidates:
        return []
    start: Tag | None = None
    if newest is not None:
        # The history read starts at the highest reachable final release the file has covered.
        for tag in tags:
            if (
                tag.version <= newest
                and not tag.version.is_prerelease
                and repo.is_ancestor(tag.sha)
            ):
                start = tag
                break
    releases, _ = released_versions(repo, config, since=start)
    return [r for r in releases if newest is None or r.tag.version > newest]


def _newest_present(text: str | None) -> Version | None:
    """The newest release already written; older tags missing from the file are left alone."""
    versions = []
    for raw in versions_in_changelog(text or ""):
        try:
            versions.append(Version.parse(raw))
        except VersionError:
            continue
    return max(versions, default=None)
