"""Render release sections and update CHANGELOG.md incrementally.  (pure)

The file is newest first. releasekit owns exactly two things in it: the managed Unreleased block
between `UNRELEASED_START` and `UNRELEASED_END` (replaced on every run, never stacked) and the
release sections it inserts. Every other byte, line endings included, stays as it was. New
sections go right below the managed block, else right below `INSERT_MARKER`, else right above the
first release heading (`## 1.2.3`, `## [1.2.3] - date`, `## v1.2.3 (date)`, `### 1.2.3`, ...);
a non-empty file with none of those is refused. Marker lines count only at the start of a line
and outside fenced code blocks. The one blank line that separates an inserted piece from its
neighbours is added with it, and a removed block takes one along, so blank lines never pile up.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

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

_GROUPS = {"feat": "Features", "fix": "Bug fixes", "perf": "Performance", "revert": "Reverts"}
_OTHER = "Other changes"

# Atomic group and possessive quantifier: a long line of digits cannot make the match backtrack.
_RELEASE_HEADING = re.compile(
    r"#{2,3}[ \t]+\[?[vV]?"
    r"(?P<version>(?>\d+(?:!\d+)?(?:\.\d+)+)[0-9A-Za-z.!+_-]*+)\]?(?=$|[ \t(])"
)
_ANY_HEADING = re.compile(r"(#{1,6})(?:[ \t]|$)")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_LINK_DEF = re.compile(r" {0,3}\[[^\]]+\]:[ \t]")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
# Inline punctuation that changes rendering; `_` only at a word edge (GFM ignores it intraword).
_INLINE_SPECIAL = re.compile(r"[\\`*\[\]<>~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# Text at the start of a list item that would turn into a heading, quote, nested list or rule.
_BLOCK_START = re.compile(r"^(?:([#+-])|(\d+)([.)]))")


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
    """Markdown for one release: `## 1.3.0 - 2026-11-23`, grouped entries, a compare link."""
    base = _base_url(repository_url)
    lines = [f"## {version} - {date.isoformat()}", ""]
    lines += _render_groups(changes, base, types) or ["No notable changes.", ""]
    if base is not None:
        if previous_tag is None:
            lines += [f"**Full changelog:** [{tag}]({base}/tree/{_quote(tag)})", ""]
        else:
            span = f"{previous_tag}...{tag}"
            lines += [f"**Full changelog:** [{span}]({base}/compare/{_quote(span)})", ""]
    return "\n".join(lines[:-1]) + "\n"


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
    base = _base_url(repository_url)
    lines = ["## Unreleased", ""]
    groups = _render_groups(changes, base, types)
    if not groups:
        since = f" since `{last_tag}`" if last_tag else " yet"
        return "\n".join([*lines, f"Nothing to release{since}."]) + "\n"
    lines += groups
    if base is not None and last_tag is not None:
        span = f"{last_tag}...HEAD"
        lines += [f"**Full changelog:** [{span}]({base}/compare/{_quote(span)})", ""]
    return "\n".join(lines[:-1]) + "\n"


def _render_groups(
    changes: Sequence[Change], base: str | None, types: Mapping[str, Level]
) -> list[str]:
    """`### Group` headings with their entries, each group followed by a blank line."""
    groups: dict[str, list[str]] = {"Breaking changes": [], **{g: [] for g in _GROUPS.values()}}
    groups[_OTHER] = []
    for change in changes:
        if change.breaking:
            groups["Breaking changes"].extend(_entry(change, base, with_type=False, notes=True))
        elif types.get(change.type, Level.NONE) is not Level.NONE:
            group = _GROUPS.get(change.type, _OTHER)
            groups[group].extend(_entry(change, base, with_type=group == _OTHER, notes=False))
    lines: list[str] = []
    for title, entries in groups.items():
        if entries:
            lines += [f"### {title}", "", *entries, ""]
    return lines


def _entry(change: Change, base: str | None, *, with_type: bool, notes: bool) -> list[str]:
    label = change.type if with_type else ""
    if change.scope:
        label = f"{label}({change.scope})" if label else change.scope
    prefix = f"**{_escape(label)}:** " if label else ""
    refs = _commit_ref(change.sha, base)
    if change.reverts is not None:
        refs += f", reverts {_commit_ref(change.reverts, base)}"
    description = _escape(change.description)
    if not prefix:
        description = _BLOCK_START.sub(
            lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", description
        )
    lines = [f"- {prefix}{description} ({refs})"]
    for note in change.breaking_notes if notes else ():
        # Notes are the author's own Markdown; indenting keeps them inside the list item (and away
        # from column 0, where headings and markers are recognised). Only an HTML comment opener
        # is defused, since an unclosed one would hide the rest of the changelog.
        lines.append("")
        for text in note.replace("\r\n", "\n").split("\n"):
            lines.append(f"  {text.replace('<!--', '&lt;!--')}".rstrip())
    return lines


def _commit_ref(sha: str, base: str | None) -> str:
    short = sha[:7]
    return f"`{short}`" if base is None else f"[{short}]({base}/commit/{quote(sha)})"


def _base_url(repository_url: str | None) -> str | None:
    if not repository_url:
        return None
    url = repository_url.rstrip("/")
    return url.removesuffix(".git")


def _quote(path: str) -> str:
    return quote(path, safe="/.@+!-_~")


# Text that needs neither escaping nor whitespace folding (most descriptions): returned as is.
_PLAIN = re.compile(r"[^\s\\`*\[\]<>~_]+(?: [^\s\\`*\[\]<>~_]+)*")


def _escape(text: str) -> str:
    """Escape Markdown-significant characters, leaving `code spans` as written."""
    if _PLAIN.fullmatch(text):
        return text
    text = " ".join(text.split())  # one line, whatever the commit parser let through
    out: list[str] = []
    position = 0
    for match in _CODE_SPAN.finditer(text):
        out += [_escape_plain(text[position : match.start()]), match[0]]
        position = match.end()
    out.append(_escape_plain(text[position:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    return _INLINE_SPECIAL.sub(lambda m: "\\" + m[0], text)


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
    lines = _split_lines(text)
    layout = _scan(lines)
    blocks = _managed_blocks(layout)
    edits: list[tuple[int, int, list[str]]]
    if blocks:
        (start, stop), *extra = blocks
        edits = [(start, stop, pieces), *((s, e, []) for s, e in extra)]
    elif pieces:
        at = _insertion_point(layout)
        edits = [(at, at, pieces)]
    else:
        return text
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    for start, stop, new in reversed(edits):  # back to front, so earlier indexes stay valid
        _replace_lines(lines, start, stop, new, newline)
    return "".join(lines)


def versions_in_changelog(text: str) -> set[str]:
    """The versions that have a release heading in `text`, normalised to PEP 440 when possible."""
    return {_normalise_version(h.version) for h in _scan(_split_lines(text)).headings if h.version}


def extract_section(text: str, version: str) -> str | None:
    """The body of `version`'s section (without its heading), or None when it has none.

    Versions compare after normalisation, so `1.3.0rc1` finds a `## v1.3.0-rc.1` heading.
    """
    wanted = _normalise_version(version)
    lines = _split_lines(text)
    layout = _scan(lines)
    for index, heading in enumerate(layout.headings):
        if heading.version is None or _normalise_version(heading.version) != wanted:
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
class _Heading:
    line: int
    level: int
    version: str | None  # None for headings that are not release headings


@dataclass(frozen=True)
class _Layout:
    headings: tuple[_Heading, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    inserts: tuple[int, ...]

    @property
    def markers(self) -> tuple[int, ...]:
        return self.starts + self.ends + self.inserts


def _split_lines(text: str) -> list[str]:
    """Lines with their endings; only `\\n` ends a line, so joining gives back `text` exactly."""
    return re.findall(r"[^\n]*\n|[^\n]+", text)


def _scan(lines: Sequence[str]) -> _Layout:
    """Find headings and marker lines, skipping fenced code blocks."""
    headings: list[_Heading] = []
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
            headings.append(_Heading(index, len(heading[1]), version))
    return _Layout(
        tuple(headings),
        tuple(found[UNRELEASED_START]),
        tuple(found[UNRELEASED_END]),
        tuple(found[INSERT_MARKER]),
    )


def _managed_blocks(layout: _Layout) -> list[tuple[int, int]]:
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


def _insertion_point(layout: _Layout) -> int:
    if layout.inserts:
        return layout.inserts[0] + 1
    for heading in layout.headings:
        if heading.version is not None:
            return heading.line
    raise ChangelogError(
        "the changelog has no place to insert releases: it is not empty, but has no releasekit"
        " marker and no release heading such as `## 1.2.3`",
        hint=f"Add the line `{INSERT_MARKER}` where new releases should go (below the title), then"
        " run again.",
    )


def _replace_lines(lines: list[str], start: int, stop: int, pieces: list[str], nl: str) -> None:
    """Put `pieces` in place of lines[start:stop], one blank line between neighbours."""
    before = lines[start - 1] if start > 0 else None
    after = lines[stop] if stop < len(lines) else None
    if not pieces:
        # A removed block takes one of the blank lines around it along, so that adding and
        # removing it again does not let blank lines pile up.
        if before is not None and not before.strip() and (after is None or not after.strip()):
            start, stop = (start, stop + 1) if after is not None else (start - 1, stop)
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


def _normalise_version(version: str) -> str:
    try:
        return str(Version.parse(version.strip()))
    except VersionError:
        return version.strip()
