"""How one release lands in a changelog kept by people or by another tool.  (pure)

- A section for the version already exists (notes written ahead): kept byte for byte, not
  duplicated; only the managed block goes, as on every release.
- The new heading copies the file's newest release heading (`## [1.2.0] - 2024-01-01`,
  `## v1.2.0 (2024-01-01)`, `## 1.2.0 (2024-01-01)`, `## 1.2.0 - 2024-01-01`); a file whose only
  heading is Keep a Changelog's `## [Unreleased]` gets `## [X.Y.Z] - date`; others the default.
- Hand-written entries under a kept `## [Unreleased]` heading move into the new section (below the
  generated groups), leaving the heading in place, empty.
- Link references at the bottom (`[unreleased]: .../compare/v1.1.0...HEAD`) get the new version's
  compare link, spelled like the file's own links, and `[unreleased]` moves on to the new tag.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from releasekit.changelog import (
    NEW_FILE,
    Heading,
    Layout,
    extract_section,
    hand_kept_unreleased,
    link_definitions_start,
    normalise_version,
    scan,
    section_end,
    split_lines,
    update_changelog,
    versions_in_changelog,
)
from releasekit.changelog_template import DEFAULT_HEADING, SectionInput, render_section
from releasekit.commits import Change
from releasekit.versioning import Level

KEEP_A_CHANGELOG_HEADING = "## [{version}] - {date}"
_DATE = r"\d{4}-\d{2}-\d{2}"
# `## [v]1.2.0` with optional brackets, then nothing, ` - DATE` (or an en/em dash) or ` (DATE)`.
_STYLED = re.compile(
    rf"(?P<hashes>#{{2,3}})(?P<gap>[ \t]+)(?P<open>\[?)(?P<v>[vV]?)(?P<version>[^\s\]\[()]+)"
    rf"(?P<close>\]?)(?P<link>\([^()\s]+\))?"
    rf"(?P<rest>(?:[ \t]+(?:[-–—][ \t]+{_DATE}|\({_DATE}\)))?)[ \t]*"
)
# `## [1.2.0](https://host/o/r/compare/v1.1.0...v1.2.0) (date)`: release-please's and git-cliff's
# headings link the version to its compare view; a new heading links to its own.
COMPARE_LINK = "({compare_url})"
_LINK_LINE = re.compile(r" {0,3}\[(?P<label>[^\]]+)\]:[ \t]+(?P<url>\S+)")
_COMPARE = re.compile(r"(?P<old>[^/.]+(?:\.[^/.]+)*?)\.\.\.(?P<new>[^/]+)$")


@dataclass(frozen=True)
class ReleaseChangelog:
    """The changelog after a release, the notes the tag carries, and what happened in one line."""

    after: str
    notes: str
    note: str | None = None


@dataclass(frozen=True)
class NewRelease:
    """The release being made, as the changelog needs it."""

    version: str
    date: datetime.date
    changes: Sequence[Change]
    tag: str
    previous_tag: str | None
    previous_version: str | None


def release_changelog(
    text: str | None,
    release: NewRelease,
    *,
    filename: str,
    repository_url: str | None,
    types: Mapping[str, Level],
    template: Path | None,
) -> ReleaseChangelog:
    """`text` (None: no file yet) with `release` in it, whatever shape the file has."""
    if text is None or not text.strip():
        text = NEW_FILE
    if normalise_version(release.version) in versions_in_changelog(text):
        after = update_changelog(text, [], None)
        kept = extract_section(after, release.version) or ""
        note = f"{filename} already has a section for {release.version}: kept as written"
        return ReleaseChangelog(_with_link(after, release), kept, note)
    style = heading_style(text) or DEFAULT_HEADING
    remaining, hand_written = take_unreleased_notes(text)
    section = render_section(
        SectionInput(
            release.version,
            release.date,
            release.changes,
            release.tag,
            release.previous_tag,
            release.previous_version,
            heading_style=style,
            hand_written=hand_written,
            link_reference=links_follow(remaining, release),
        ),
        repository_url=repository_url,
        types=types,
        template=template,
    )
    after = update_changelog(remaining, [section], None)
    return ReleaseChangelog(_with_link(after, release), section)


def heading_style(text: str | None) -> str | None:
    """`{version}`/`{date}` pattern of the newest release heading; None: no recognisable one."""
    if not text:
        return None
    lines = split_lines(text)
    layout = scan(lines)
    for heading in layout.headings:
        if heading.version is not None:
            return _style_of(lines[heading.line].rstrip("\r\n"), heading.version)
    kept = hand_kept_unreleased(lines, layout)
    if kept is not None and "[" in lines[kept.line]:
        return KEEP_A_CHANGELOG_HEADING
    return None


def _style_of(line: str, version: str) -> str | None:
    match = _STYLED.fullmatch(line)
    if match is None or match["version"] != version or bool(match["open"]) != bool(match["close"]):
        return None  # a codename, or a bracket left open: not a shape to copy blindly
    link = match["link"] or ""
    if link and (not match["open"] or "/compare/" not in link):
        return None  # a link to something other than the compare view: not copied blindly
    rest = re.sub(_DATE, "{date}", match["rest"])
    link = COMPARE_LINK if link else ""
    return f"{match['hashes']} {match['open']}{match['v']}{{version}}{match['close']}{link}{rest}"


def take_unreleased_notes(text: str) -> tuple[str, str]:
    """(`text` with its hand-kept Unreleased section emptied, the entries that were in it)."""
    lines = split_lines(text)
    layout = scan(lines)
    kept = hand_kept_unreleased(lines, layout)
    if kept is None:
        return text, ""
    start, stop = kept.line + 1, _body_end(lines, layout, kept)
    body = "".join(lines[start:stop])
    if not body.strip():
        return text, ""
    newline = "\r\n" if lines[kept.line].endswith("\r\n") else "\n"
    gap = [newline] if stop < len(lines) else []
    if not lines[kept.line].endswith("\n"):
        lines[kept.line] += newline
    return "".join(lines[:start] + gap + lines[stop:]), body.strip("\r\n")


def _body_end(lines: Sequence[str], layout: Layout, kept: Heading) -> int:
    end = section_end(lines, layout, kept)
    # The managed block inside the section is releasekit's, not hand-written: stop before it.
    starts = [line for line in layout.starts if line > kept.line]
    return min([end, *starts])


def _bracket_label(heading: str) -> str | None:
    match = re.search(r"\[([^\]]+)\](?!\()", heading)  # `[1.2.0](url)` links inline
    return match[1] if match else None


def links_follow(text: str | None, release: NewRelease) -> bool:
    """Whether `release`'s heading will be a link reference that the file's link list defines."""
    if not text:
        return False
    label = _bracket_label((heading_style(text) or "").replace("{version}", release.version))
    return label is not None and _link_plan(text, label, release) is not None


def add_links(text: str, releases: Iterable[NewRelease]) -> str:
    """The compare links of `releases` (oldest first) added to the file's link references."""
    for release in releases:
        text = _with_link(text, release)
    return text


def _with_link(text: str, release: NewRelease) -> str:
    style = heading_style(text)
    label = _bracket_label((style or "").replace("{version}", release.version))
    plan = None if label is None else _link_plan(text, label, release)
    if plan is None:
        return text
    lines = split_lines(text)
    for index, replace, line in sorted(plan, reverse=True):
        lines[index : index + int(replace)] = [line]
    return "".join(lines)


def _link_plan(text: str, label: str, release: NewRelease) -> list[tuple[int, bool, str]] | None:
    """Edits to the link references: (line index, replace it (else insert before it), line)."""
    lines = split_lines(text)
    start = link_definitions_start(lines)
    links: dict[str, tuple[int, str]] = {}
    for index in range(start, len(lines)):
        match = _LINK_LINE.match(lines[index])
        if match:
            links.setdefault(match["label"].lower(), (index, match["url"]))
    if not links or label.lower() in links:
        return None
    newline = "\r\n" if lines[start].endswith("\r\n") else "\n"
    if "unreleased" in links:
        # `[unreleased]: BASE/compare/v1.1.0...HEAD` -> `[1.2.0]: BASE/compare/v1.1.0...v1.2.0`
        # below it, and `[unreleased]` now starts at the new tag.
        index, url = links["unreleased"]
        found = _COMPARE.search(url)
        if found is None:
            return None
        head = url[: found.start()]
        moved = lines[index].replace(url, f"{head}{release.tag}...{found['new']}", 1)
        added = f"[{label}]: {head}{found['old']}...{release.tag}{newline}"
        return [(index, True, moved), (index + 1, False, added)]
    # No `[unreleased]`: follow the previous version's own compare link, above it.
    for key, (index, url) in links.items():
        if release.previous_version and normalise_version(key) == release.previous_version:
            found = _COMPARE.search(url)
            if found is None:
                return None
            added = f"[{label}]: {url[: found.start()]}{found['new']}...{release.tag}{newline}"
            return [(index, False, added)]
    return None
