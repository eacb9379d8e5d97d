"""Render one changelog section (a release, or the Unreleased block) through a Jinja2 template.

The default template ships in `releasekit/templates/changelog_section.md.j2`; `changelog_template`
in `[tool.releasekit]` replaces it. Templates run in a sandbox with StrictUndefined, so a typo is
an error naming the file, the line and the variable, never a silently empty changelog. Every
variable a template sees is built here (`section_context`) and listed in docs/changelog-template.md.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from releasekit.changelog_default import render_default
from releasekit.commits import Change
from releasekit.errors import ChangelogError
from releasekit.versioning import Level

if TYPE_CHECKING:
    import jinja2

DEFAULT_TEMPLATE = Path(__file__).parent / "templates" / "changelog_section.md.j2"
DEFAULT_HEADING = "## {version} - {date}"
BREAKING = "Breaking changes"
_GROUPS = {"feat": "Features", "fix": "Bug fixes", "perf": "Performance", "revert": "Reverts"}
_OTHER = "Other changes"
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
# Inline punctuation that changes rendering; `_` only at a word edge (GFM ignores it intraword).
_INLINE_SPECIAL = re.compile(r"[\\`*\[\]<>~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# Text at the start of a list item that would turn into a heading, quote, nested list or rule.
_BLOCK_START = re.compile(r"^(?:([#+-])|(\d+)([.)]))")
_HEX = re.compile(r"[0-9a-fA-F]+")
# Text that needs neither escaping nor whitespace folding (most descriptions): returned as is.
_PLAIN = re.compile(r"[^\s\\`*\[\]<>~_]+(?: [^\s\\`*\[\]<>~_]+)*")


class Entry(NamedTuple):
    """One change as a template sees it (`entry.*` in docs/changelog-template.md).

    A NamedTuple, not a frozen dataclass: a full render builds one per change, and a frozen
    dataclass takes three times as long to construct.
    """

    type: str
    scope: str | None
    label: str
    description: str
    text: str
    sha: str
    short_sha: str
    commit_url: str | None
    breaking: bool
    breaking_notes: tuple[str, ...]
    reverts: str | None
    reverts_short_sha: str | None
    reverts_url: str | None


class Group(NamedTuple):
    """A titled list of entries (`group.title`, `group.entries`, `group.breaking`)."""

    title: str
    entries: tuple[Entry, ...]
    breaking: bool


@dataclass(frozen=True)
class SectionInput:
    """What one section is about; `version` None renders the Unreleased block."""

    version: str | None
    date: datetime.date | None
    changes: Sequence[Change]
    tag: str | None
    previous_tag: str | None
    previous_version: str | None = None
    heading_style: str = DEFAULT_HEADING
    hand_written: str = ""
    link_reference: bool = False


def section_context(
    section: SectionInput, *, repository_url: str | None, types: Mapping[str, Level]
) -> dict[str, Any]:
    """Every variable a section template sees."""
    base = base_url(repository_url)
    groups = group_changes(section.changes, base, types)
    unreleased = section.version is None
    date = section.date.isoformat() if section.date else ""
    if unreleased:
        # Inside a hand-kept `## [Unreleased]` section the block needs no heading of its own.
        heading = "## Unreleased" if section.heading_style else ""
    else:
        heading = section.heading_style.replace("{version}", section.version or "")
        heading = heading.replace("{date}", date)
    compare_url = compare_label = None
    if base is not None and not (unreleased and not groups):
        if section.previous_tag is not None:
            compare_label = f"{section.previous_tag}...{section.tag or 'HEAD'}"
            compare_url = f"{base}/compare/{_quote(compare_label)}"
        elif section.tag is not None:
            compare_label, compare_url = section.tag, f"{base}/tree/{_quote(section.tag)}"
    if "{compare_url}" in heading:  # a linked heading; no repository URL: a plain one
        heading = heading.replace("{compare_url}", compare_url or "")
        if compare_url is None:
            heading = heading.replace(f"[{section.version}]()", section.version or "")
    return {
        "version": section.version,
        "date": date,
        "tag": section.tag,
        "previous_version": section.previous_version,
        "previous_tag": section.previous_tag,
        "heading": heading,
        "unreleased": unreleased,
        "groups": groups,
        "entries": [entry for group in groups for entry in group.entries],
        "compare_url": compare_url,
        "compare_label": compare_label,
        "repository_url": base,
        "hand_written": section.hand_written.strip("\n"),
        "link_reference": section.link_reference,
    }


def render_section(
    section: SectionInput,
    *,
    repository_url: str | None,
    types: Mapping[str, Level],
    template: Path | None = None,
) -> str:
    """Markdown for one section, through `template` (default: the shipped one)."""
    context = section_context(section, repository_url=repository_url, types=types)
    if template is None:
        text = _tidy(render_default(context))  # the shipped template's bytes, without Jinja
    else:
        text = _tidy(render_template(template, context))
    hand = context["hand_written"]
    if hand and hand not in text:  # a custom template that forgot them: never lose them
        text = f"{text}\n{hand}\n"
    return text


def render_template(path: Path, context: dict[str, Any]) -> str:
    """`context` through the Jinja2 template at `path`; errors name the file and line."""
    compiled = _load(path)
    try:
        return compiled.render(context)
    except Exception as exc:  # any failure inside a user's template is the template's fault
        raise _template_error(path, exc) from exc


def _tidy(text: str) -> str:
    """One final newline and no blank lines at either end."""
    return text.replace("\r\n", "\n").strip("\n") + "\n"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """Jinja2's immutable sandbox: a template comes with the repository being released."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML: descriptions are escaped for Markdown already
    )


def _load(path: Path) -> jinja2.Template:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ChangelogError(
            f"cannot read the changelog template {path}: {reason}",
            hint="fix changelog_template under [tool.releasekit] (a path relative to the project)",
        ) from exc
    try:
        return _compile(source)
    except Exception as exc:
        raise _template_error(path, exc) from exc


@lru_cache(maxsize=8)
def _compile(source: str) -> jinja2.Template:
    return _environment().from_string(source)


def _template_error(path: Path, exc: BaseException) -> ChangelogError:
    """`file:line: what` for a syntax error, an undefined variable or a failing expression."""
    from jinja2 import TemplateSyntaxError, UndefinedError

    line = exc.lineno if isinstance(exc, TemplateSyntaxError) else _template_line(exc.__traceback__)
    where = f"{path}:{line}" if line else str(path)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, UndefinedError):
        hint = "use only the variables listed in docs/changelog-template.md (e.g. version, groups)"
    else:
        hint = "fix the template, or remove changelog_template to use the default one"
    return ChangelogError(f"changelog template {where}: {message}", hint=hint)


def _template_line(tb: TracebackType | None) -> int | None:
    """Jinja rewrites tracebacks so the template's own frames carry template line numbers."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def group_changes(
    changes: Sequence[Change], base: str | None, types: Mapping[str, Level]
) -> list[Group]:
    """Breaking changes first, then features, fixes, performance, reverts and other types."""
    buckets: dict[str, list[Entry]] = {BREAKING: [], **{g: [] for g in _GROUPS.values()}}
    buckets[_OTHER] = []
    shown = {kind for kind, level in types.items() if level is not Level.NONE}
    for change in changes:
        if change.breaking:
            buckets[BREAKING].append(_entry(change, base, with_type=False))
        elif change.type in shown:
            title = _GROUPS.get(change.type, _OTHER)
            buckets[title].append(_entry(change, base, with_type=title == _OTHER))
    return [Group(t, tuple(e), t == BREAKING) for t, e in buckets.items() if e]


def _entry(change: Change, base: str | None, *, with_type: bool) -> Entry:
    scope = change.scope
    label = change.type if with_type else ""
    if scope:
        label = f"{label}({scope})" if label else scope
    description = escape_markdown(change.description)
    if not label and _BLOCK_START.match(description):
        description = _BLOCK_START.sub(
            lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", description
        )
    sha, reverts, notes = change.sha, change.reverts, change.breaking_notes
    # Positional: a full render builds tens of thousands of these (field order as in Entry).
    return Entry(
        change.type,
        scope,
        escape_markdown(label) if label else label,
        description,
        change.description,
        sha,
        sha[:7],
        None if base is None else f"{base}/commit/{sha}",
        change.breaking,
        tuple(map(_note, notes)) if notes else (),
        reverts,
        reverts[:7] if reverts else None,
        _commit_url(reverts, base) if reverts else None,
    )


def _note(note: str) -> str:
    # Notes are the author's own Markdown. Only an HTML comment opener is defused, since an
    # unclosed one would hide the rest of the changelog; trailing blanks go.
    lines = note.replace("\r\n", "\n").replace("<!--", "&lt;!--").split("\n")
    return "\n".join(line.rstrip() for line in lines)


def _commit_url(sha: str, base: str | None) -> str | None:
    if base is None:
        return None
    return f"{base}/commit/{sha if _HEX.fullmatch(sha) else quote(sha)}"


def base_url(repository_url: str | None) -> str | None:
    if not repository_url:
        return None
    return repository_url.rstrip("/").removesuffix(".git")


def _quote(path: str) -> str:
    return quote(path, safe="/.@+!-_~")


def escape_markdown(text: str) -> str:
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
