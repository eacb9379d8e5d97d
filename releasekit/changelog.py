"""CHANGELOG.md as people keep it: where a release goes, and reading sections back.  (pure)

The file is newest first. releasekit owns exactly two things in it: the managed Unreleased block
between `UNRELEASED_START` and `UNRELEASED_END` (replaced on every run, never stacked) and the
release sections it inserts. Every other byte, line endings included, stays as it was. New
sections go, in this order of preference: right below the managed block; right below
`INSERT_MARKER`; right above the first release heading (`## 1.2.3`, `## [1.2.3] - date`,
`## v1.2.3 (date)`, `### 1.2.3`, ...); at the end of a hand-kept `## Unreleased` /
`## [Unreleased]` section; at the end of the title block (the `# Title` line and its intro, up to
the next heading or the link references at the bottom). A non-empty file with none of these (no
title, no release heading, no marker) is refused. Marker lines and headings count only outside
fenced code blocks. The one blank line that separates an inserted piece from its neighbours is
added with it, and a removed block takes one along, so blank lines never pile up.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from releasekit.changelog_template import SectionInput, render_section
from releasekit.commits import Change
from releasekit.errors import ChangelogError, VersionError
from releasekit.versioning import Level, Version

UNRELEASED_START = "<!-- releasekit: unreleased start -->"
UNRELEASED_END = "<!-- releasekit: unreleased end -->"
INSERT_MARKER = "<!-- releasekit: insert releases below -->"
NEW_FILE = (
    "# Changelog\n\n"
    "All notable changes to this project are listed here, newest first.\n\n"
    f"{INSERT_MARKER}\n"
)


# Atomic group and possessive quantifier: a long line of digits cannot make the match backtrack.
_RELEASE_HEADING = re.compile(
    r"#{2,3}[ \t]+\[?[vV]?"
    r"(?P<version>(?>\d+(?:!\d+)?(?:\.\d+)+)[0-9A-Za-z.!+_-]*+)\]?(?=$|[ \t(])"
)
_ANY_HEADING = re.compile(r"(#{1,6})(?:[ \t]|$)")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_LINK_DEF = re.compile(r" {0,3}\[[^\]]+\]:[ \t]")
_UNRELEASED_HEADING = re.compile(r"#{2,3}[ \t]+\[?unreleased\]?(?=$|[ \t(:-])", re.IGNORECASE)


def render_release_section(
    version: str,
    date: datetime.date,
    changes: Sequence[Change],
    *,
    tag: str,
    previous_tag: str | None,
    repository_url: str | None,
    types: Mapping[str, Level],
) -> str:
    """Markdown for one release in the default style: `## 1.3.0 - 2026-11-23`, groups, a link."""
    section = SectionInput(version, date, changes, tag, previous_tag)
    return render_section(section, repository_url=repository_url, types=types)


def render_unreleased(
    changes: Sequence[Change],
    *,
    last_tag: str | None,
    repository_url: str | None,
    types: Mapping[str, Level],
) -> str:
    """The managed block's contents: `## Unreleased` and the changes since `last_tag`.

    With nothing releasable it still renders a short "Nothing to release" block, so the block
    keeps its place in the file between runs.
    """
    section = SectionInput(None, None, changes, None, last_tag)
    return render_section(section, repository_url=repository_url, types=types)


def update_changelog(text: str | None, new_sections: Sequence[str], unreleased: str | None) -> str:
    """Return `text` with `new_sections` (newest first) inserted and the managed block replaced.

    `text` None or blank starts a new file. `unreleased` None (or blank) removes the managed
    block. A second complete managed block, e.g. pasted by hand, is removed too; unbalanced
    markers are refused, as is a non-empty file with nowhere to insert.
    """
    pieces = [_normalised(section) for section in new_sections if section.strip()]
    if unreleased is not None and unreleased.strip():
        pieces.insert(0, f"{UNRELEASED_START}\n{_normalised(unreleased)}{UNRELEASED_END}\n")
    if text is None or not text.strip():
        text = NEW_FILE
    lines = split_lines(text)
    layout = scan(lines)
    blocks = managed_blocks(layout)
    edits: list[tuple[int, int, list[str]]]
    if blocks:
        (start, stop), *extra = blocks
        edits = [(start, stop, pieces), *((s, e, []) for s, e in extra)]
    elif pieces:
        at = _insertion_point(lines, layout)
        edits = [(at, at, pieces)]
    else:
        return text
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    for start, stop, new in reversed(edits):  # back to front, so earlier indexes stay valid
        _replace_lines(lines, start, stop, new, newline)
    return "".join(lines)


def versions_in_changelog(text: str) -> set[str]:
    """The versions that have a release heading in `text`, normalised to PEP 440 when possible."""
    return {normalise_version(h.version) for h in scan(split_lines(text)).headings if h.version}


def extract_section(text: str, version: str) -> str | None:
    """The body of `version`'s section (without its heading), or None when it has none.

    Versions compare after normalisation, so `1.3.0rc1` finds a `## v1.3.0-rc.1` heading.
    """
    wanted = normalise_version(version)
    lines = split_lines(text)
    layout = scan(lines)
    for index, heading in enumerate(layout.headings):
        if heading.version is None or normalise_version(heading.version) != wanted:
            continue
        ends = [h.line for h in layout.headings[index + 1 :] if h.level <= heading.level]
        ends += [line for line in layout.markers if line > heading.line]
        stop = min(ends, default=len(lines))
        body = [line.rstrip("\r\n") for line in lines[heading.line + 1 : stop]]
        # Link definitions at the end of the file belong to the whole file, not the last section.
        while body and (not body[-1].strip() or (stop == len(lines) and _LINK_DEF.match(body[-1]))):
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        return "\n".join(body) + "\n" if body else ""
    return None


@dataclass(frozen=True)
class Heading:
    line: int
    level: int
    version: str | None  # None for headings that are not release headings
    unreleased: bool = False  # a `## Unreleased` heading (inside the managed block or not)


@dataclass(frozen=True)
class Layout:
    headings: tuple[Heading, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    inserts: tuple[int, ...]

    @property
    def markers(self) -> tuple[int, ...]:
        return self.starts + self.ends + self.inserts


def split_lines(text: str) -> list[str]:
    """Lines with their endings; only `\\n` ends a line, so joining gives back `text` exactly."""
    return re.findall(r"[^\n]*\n|[^\n]+", text)


def scan(lines: Sequence[str]) -> Layout:
    """Find headings and marker lines, skipping fenced code blocks."""
    headings: list[Heading] = []
    found: dict[str, list[int]] = {UNRELEASED_START: [], UNRELEASED_END: [], INSERT_MARKER: []}
    fence: str | None = None
    for index, line in enumerate(lines):
        content = line.rstrip("\r\n")
        opening = _FENCE.match(content)
        if fence is not None:
            if opening and opening[1][0] == fence[0] and len(opening[1]) >= len(fence):
                fence = None if not content[opening.end() :].strip() else fence
            continue
        if opening:
            fence = opening[1]
        elif content.rstrip() in found:
            found[content.rstrip()].append(index)
        elif heading := _ANY_HEADING.match(content):
            release = _RELEASE_HEADING.match(content)
            version = release["version"] if release else None
            unreleased = version is None and _UNRELEASED_HEADING.match(content) is not None
            headings.append(Heading(index, len(heading[1]), version, unreleased))
    return Layout(
        tuple(headings),
        tuple(found[UNRELEASED_START]),
        tuple(found[UNRELEASED_END]),
        tuple(found[INSERT_MARKER]),
    )


def managed_blocks(layout: Layout) -> list[tuple[int, int]]:
    """Line ranges [start, stop) of the managed blocks; unbalanced markers are refused."""
    events = sorted([(n, True) for n in layout.starts] + [(n, False) for n in layout.ends])
    blocks: list[tuple[int, int]] = []
    opened: int | None = None
    for line, is_start in events:
        if is_start:
            if opened is not None:
                raise _block_error(f"opens it on line {opened + 1} and again on line {line + 1}")
            opened = line
        else:
            if opened is None:
                raise _block_error(f"closes it on line {line + 1} without opening it first")
            blocks.append((opened, line + 1))
            opened = None
    if opened is not None:
        raise _block_error(f"opens it on line {opened + 1} and never closes it")
    return blocks


def _block_error(problem: str) -> ChangelogError:
    return ChangelogError(
        f"the changelog's managed Unreleased block is broken: the changelog {problem}",
        hint=f"Keep one `{UNRELEASED_START}` line and one `{UNRELEASED_END}` line after it"
        " (or delete both); releasekit rewrites what lies between them.",
    )


def _insertion_point(lines: Sequence[str], layout: Layout) -> int:
    if layout.inserts:
        return layout.inserts[0] + 1
    for heading in layout.headings:
        if heading.version is not None:
            return heading.line
    kept = hand_kept_unreleased(lines, layout)
    if kept is not None:
        return section_end(lines, layout, kept)
    title = next((h for h in layout.headings if h.level == 1), None)
    if title is not None:
        following = [h.line for h in layout.headings if h.line > title.line]
        return min(following, default=link_definitions_start(lines))
    raise ChangelogError(
        "the changelog has no place to insert releases: it is not empty, but has no `# Title`"
        " line, no release heading such as `## 1.2.3` and no releasekit marker",
        hint=f"Start the file with a title line such as `# Changelog`, or add the line"
        f" `{INSERT_MARKER}` where new releases should go, then run again.",
    )


def hand_kept_unreleased(lines: Sequence[str], layout: Layout) -> Heading | None:
    """The first `## Unreleased` heading a person keeps (outside the managed block)."""
    blocks = managed_blocks(layout)
    for heading in layout.headings:
        if heading.unreleased and not any(a <= heading.line < b for a, b in blocks):
            return heading
    return None


def section_end(lines: Sequence[str], layout: Layout, heading: Heading) -> int:
    """Where `heading`'s section stops: the next heading at its level or above, a marker, or the
    link references at the bottom of the file."""
    ends = [h.line for h in layout.headings if h.line > heading.line and h.level <= heading.level]
    ends += [line for line in layout.markers if line > heading.line]
    return min(ends, default=max(heading.line + 1, link_definitions_start(lines)))


def link_definitions_start(lines: Sequence[str]) -> int:
    """The first line of the link reference definitions that end the file (len(lines) if none)."""
    start = len(lines)
    index = len(lines) - 1
    while index >= 0 and (not lines[index].strip() or _LINK_DEF.match(lines[index])):
        if lines[index].strip():
            start = index
        index -= 1
    return start


def _replace_lines(lines: list[str], start: int, stop: int, pieces: list[str], nl: str) -> None:
    """Put `pieces` in place of lines[start:stop], one blank line between neighbours."""
    before = lines[start - 1] if start > 0 else None
    after = lines[stop] if stop < len(lines) else None
    if not pieces:
        # A removed block takes one of the blank lines around it along, so that adding and
        # removing it again does not let blank lines pile up.
        # A block at the very top of the file has no line before it: the blank after it goes.
        if (before is None or not before.strip()) and after is not None and not after.strip():
            stop += 1
        elif before is not None and not before.strip() and after is None:
            start -= 1
        del lines[start:stop]
        return
    chunk = "\n".join(pieces)
    if before is not None and before.strip():
        chunk = "\n" + chunk
    if after is not None and after.strip():
        chunk += "\n"
    chunk = chunk.replace("\n", nl)
    if before is not None and not before.endswith("\n"):
        chunk = nl + chunk
    lines[start:stop] = [chunk]


def _normalised(markdown: str) -> str:
    """Rendered Markdown with `\\n` endings, no surrounding blank lines, one final newline."""
    return markdown.replace("\r\n", "\n").strip("\n") + "\n"


def normalise_version(version: str) -> str:
    try:
        return str(Version.parse(version.strip()))
    except VersionError:
        return version.strip()
