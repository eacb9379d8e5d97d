"""The changelog step of `releasekit release`: which text it starts from, and its edit.

It runs only once the version is decided (`plan_release` never reads the changelog). A tree left
dirty by `releasekit changelog [--unreleased]` is accepted and folded into the release commit;
any other uncommitted change is refused, as before.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from pathlib import Path

from releasekit.changelog import update_changelog
from releasekit.changelog_release import NewRelease, ReleaseChangelog, release_changelog
from releasekit.config import Config
from releasekit.errors import ChangelogError, GitError
from releasekit.git import GitRepository
from releasekit.notes import ensure_markdown, read_changelog, updated_text
from releasekit.project import FileEdit
from releasekit.release import ReleasePlan
from releasekit.versioning import parse_tag


@dataclass(frozen=True)
class StartingText:
    """The changelog a release starts from, and whether it carries uncommitted output of
    `releasekit changelog` that the release commit folds in."""

    text: str | None
    folded: bool = False


def changelog_to_release(repo: GitRepository, config: Config) -> StartingText:
    """Refuse a dirty tree, except for a changelog that only holds what releasekit wrote.

    `releasekit changelog [--unreleased]` leaves CHANGELOG.md modified; the next release must not
    refuse because of it. Accepted: the changelog is the only modified tracked file, and it
    differs from HEAD's copy only by the managed Unreleased block (which every release removes)
    or is exactly what `releasekit changelog` makes of HEAD's copy. The release then writes its
    section into that text and commits it. Anything else (a hand edit not committed yet) is
    refused as before, since a release commit must not sweep up unreviewed prose.
    """
    path = config.changelog_path
    text = read_changelog(config)
    dirty = repo.dirty_paths()
    relpath = _relative(path, repo) if path.exists() else None
    if not dirty:
        return StartingText(text)
    if relpath is not None and dirty == [relpath] and text is not None:
        committed = repo.file_at_head(relpath)
        if committed is not None and _only_releasekit_output(repo, config, committed, text):
            return StartingText(text, folded=True)
        raise GitError(
            f"{config.changelog_file} has uncommitted changes that releasekit did not write",
            hint=f"commit them (git commit {relpath}) or discard them (git restore {relpath}), "
            "then release again",
        )
    repo.ensure_clean()
    return StartingText(text)


def _relative(path: Path, repo: GitRepository) -> str | None:
    try:
        return path.resolve().relative_to(repo.root).as_posix()
    except ValueError:  # a changelog outside the repository is nothing git reports as dirty
        return None


def _only_releasekit_output(
    repo: GitRepository, config: Config, committed: str, working: str
) -> bool:
    """Whether `working` is `committed` plus what `changelog [--unreleased]` writes, in any order."""
    try:
        bare = update_changelog(working, [], None)  # managed blocks out: every release drops them
        if update_changelog(committed, [], None) == bare:
            return True
        caught_up = updated_text(repo, config, committed, only_unreleased=False)
        return update_changelog(caught_up, [], None) == bare
    except ChangelogError:
        return False


def with_changelog(
    plan: ReleasePlan, config: Config, start: StartingText, today: datetime.date
) -> ReleasePlan:
    """`plan` with the changelog edit, the tag notes and the one-line note of what happened."""
    assert plan.next is not None
    # The release this one follows: the last final release for a final, the last tag otherwise.
    previous = parse_tag(plan.previous_tag, config.tag_format) if plan.previous_tag else None
    release = NewRelease(
        str(plan.next),
        today,
        plan.notes_changes,
        plan.tag,
        plan.previous_tag,
        str(previous) if previous else None,
    )
    edit, result = release_edit(config, start.text, release)
    notes = [result.note] if result.note else []
    if start.folded:
        notes.append(
            f"{config.changelog_file}: uncommitted output of `releasekit changelog` folded in"
        )
    edits = (*plan.edits, edit) if edit.before != edit.after else plan.edits
    return replace(plan, edits=edits, section=result.notes, changelog_note="; ".join(notes) or None)


def release_edit(
    config: Config, text: str | None, release: NewRelease
) -> tuple[FileEdit, ReleaseChangelog]:
    """The changelog edit of a release being made (after its version is decided)."""
    ensure_markdown(config)
    try:
        result = release_changelog(
            text,
            release,
            filename=config.changelog_file,
            repository_url=config.repository_url,
            types=config.types,
            template=config.template_path,
        )
    except ChangelogError as exc:
        raise ChangelogError(f"{config.changelog_file}: {exc.message}", hint=exc.hint) from exc
    edit = FileEdit(
        path=config.changelog_path, relpath=config.changelog_file, before=text, after=result.after
    )
    return edit, result
