"""Conventional-commit parsing: raw git commits -> Change values.  (pure: no git, no I/O)"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from releasekit.versioning import Level


@dataclass(frozen=True, slots=True)
class RawCommit:
    """One commit as `git log` gives it."""

    sha: str
    parents: tuple[str, ...]
    message: str

    @property
    def subject(self) -> str:
        """The first non-blank line."""
        return self.message.lstrip().partition("\n")[0].strip()

    @property
    def body(self) -> str:
        return self.message.lstrip().partition("\n")[2].strip("\r\n").rstrip()

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True, slots=True)
class Change:
    """One conventional change: a commit header, or one bullet of a squash-merge body."""

    sha: str
    type: str
    scope: str | None
    description: str
    breaking: bool
    breaking_notes: tuple[str, ...]
    footers: tuple[tuple[str, str], ...]
    reverts: str | None = None

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True)
class ChangeSet:
    """The changes of a commit range, in the order of the given commits."""

    changes: tuple[Change, ...]
    ignored: tuple[RawCommit, ...]
    cancelled: tuple[Change, ...]


# `type(scope)!: description`. Any type word parses; the configured type map decides its level.
_HEADER_PATTERN = (
    r"(?P<type>[A-Za-z][A-Za-z0-9_-]*)(?:\((?P<scope>[^()\r\n]*[^()\s][^()\r\n]*)\))?"
    r"(?P<bang>!)?: [ \t]*(?P<description>\S(?:[^\r\n]*\S)?)[ \t]*"
)
_GIT_REVERT_PATTERN = r'Revert "(?P<reverted>[^\r\n]*)"[ \t]*'
# One pattern for a subject line and for a squash bullet, so both read the same grammar.
_SUBJECT = re.compile(rf"{_HEADER_PATTERN}|{_GIT_REVERT_PATTERN}")
# A squash-merge bullet: "* feat: x" or "- fix(scope): y" at the start of a body line.
_BULLET = re.compile(rf"^[*-][ \t]+(?:{_HEADER_PATTERN}|{_GIT_REVERT_PATTERN})$", re.MULTILINE)
_SEPARATOR = re.compile(r"^-{3,}[ \t]*$", re.MULTILINE)
_BREAKING_TOKENS = ("BREAKING CHANGE", "BREAKING-CHANGE")
# `Token: value` or `Token #value`; BREAKING CHANGE (uppercase, as the spec demands) may also
# end its line and continue below.
_FOOTER_KEY = r"(?:BREAKING[ -]CHANGE(?=:(?:[ \t]|$))|[A-Za-z][\w-]*(?=:[ \t]| #))"
_FOOTER_LINE = re.compile(rf"^({_FOOTER_KEY})(?::[ \t]?| (?=#))", re.MULTILINE)
_FOOTER_KEY_AT = re.compile(_FOOTER_KEY, re.MULTILINE)
# Footers begin at a paragraph whose first line is a footer line, and run to the end.
_FOOTER_PARAGRAPH = re.compile(rf"\n[ \t]*\n(?={_FOOTER_KEY})", re.MULTILINE)
_SCISSORS = re.compile(r"^# -+ >8 -+$", re.MULTILINE)
_GIT_SUBJECTS = ("Merge ", 'Revert "', "fixup! ", "squash! ", "amend! ")
# The start of a header up to its colon, loose enough to say what went wrong after it.
_PREFIX = re.compile(r"[A-Za-z][\w-]*(?:\((?P<scope>[^()]*)\))?!?(?P<space>[ \t]*):")
# A scope that holds a parenthesis (`feat(a(b)): x`, `feat(a)(b): x`): refused by both.
_NESTED_SCOPE = re.compile(r"[A-Za-z][\w-]*\([^\r\n]*?[()][^\r\n]*?\)!?[ \t]*:")
_EXAMPLE = "a valid header looks like 'feat(parser): accept empty input'"
_REVERTS_SHA = re.compile(r"This reverts commit (?P<sha>[0-9a-fA-F]{7,40})\b")
_SHA = re.compile(r"[0-9a-fA-F]{7,40}")
_PR_SUFFIX = re.compile(r"\s*\(#\d+\)$")


def changes_of(commit: RawCommit) -> tuple[Change, ...]:
    """The conventional changes one commit carries: its header and any squash-body bullets."""
    if len(commit.parents) > 1:
        return ()  # the merged commits are in the log themselves
    message = commit.message.replace("\r\n", "\n") if "\r" in commit.message else commit.message
    if message[:1].isspace():
        message = _skip_blank_lines(message)
    subject, _, rest = message.partition("\n")
    body = rest.strip("\n").rstrip()
    header = _change(commit.sha, subject.strip(), body, None)
    if not body or ("* " not in body and "- " not in body):
        return () if header is None else (header,)
    # A "---" line ends the squashed messages: after it come GitHub's Co-authored-by trailers
    # or dependabot's YAML ("- dependency-name: x"), never changes.
    separator = _SEPARATOR.search(body)
    end = len(body) if separator is None else separator.start()
    bullets = list(_BULLET.finditer(body, 0, end))
    if not bullets:
        return () if header is None else (header,)
    changes: list[Change] = []
    for index, bullet in enumerate(bullets):
        stop = bullets[index + 1].start() if index + 1 < len(bullets) else end
        text = "\n".join(line.strip() for line in body[bullet.end() : stop].splitlines())
        change = _change(commit.sha, bullet.group().lstrip("*- \t"), text.strip("\n"), bullet)
        if change is not None:
            changes.append(change)
    if header is not None:
        # The squash subject is usually the PR title repeating one bullet: count it once, but
        # only when it says the same thing (`feat!: x (#12)` over `* feat: x` is a major).
        key = _identity(subject.strip())
        if all(key != _identity(bullet.group().lstrip("*- \t")) for bullet in bullets):
            preamble = body[: bullets[0].start()] + body[end:]
            changes.insert(
                0, _change(commit.sha, subject.strip(), preamble.strip(), None) or header
            )
    return tuple(changes)


def _skip_blank_lines(message: str) -> str:
    """`message` from its first non-blank line on (git keeps leading blank lines of `-F` files)."""
    lines = message.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def _identity(line: str) -> tuple[str, str | None, bool, str] | None:
    """What makes two header lines the same change: type, scope, `!` and description."""
    match = _SUBJECT.fullmatch(line)
    if match is None or match["type"] is None:
        return None if match is None else ("revert", None, False, match["reverted"])
    scope = match["scope"].strip() if match["scope"] is not None else None
    description = _PR_SUFFIX.sub("", match["description"])
    return (match["type"].lower(), scope, match["bang"] is not None, description)


def collect_changes(
    commits: Sequence[RawCommit], parsed: Mapping[str, tuple[Change, ...]] | None = None
) -> ChangeSet:
    """Parse `commits`; a revert and the commit it reverts cancel out when both are in the list.

    Changes keep the order of `commits` (give them oldest first to get an oldest-first list).
    `parsed` (sha -> `changes_of` result) skips commits parsed already, e.g. while streaming.
    """
    if parsed is None:
        per_commit = [changes_of(commit) for commit in commits]
    else:
        per_commit = [parsed.get(c.sha) or changes_of(c) for c in commits]
    ignored = tuple(
        c for c, ch in zip(commits, per_commit, strict=True) if not ch and not c.is_merge
    )
    changes = [change for group in per_commit for change in group]
    reverts = [change for change in changes if change.reverts is not None]
    if not reverts:
        return ChangeSet(tuple(changes), ignored, ())
    shas = sorted(commit.sha.lower() for commit in commits)
    # reverted target sha -> the revert changes that name it
    reverted_by: dict[str, list[Change]] = {}
    targets: dict[int, str] = {}
    for revert in reverts:
        target = _find_sha(shas, revert.reverts or "")
        if target is not None:
            reverted_by.setdefault(target, []).append(revert)
            targets[id(revert)] = target
    active: dict[int, bool] = {}

    def is_active(change: Change, seen: frozenset[int]) -> bool:
        # A revert is in effect unless a revert in effect reverts it (revert of a revert ...).
        if id(change) not in active:
            reverters = reverted_by.get(change.sha.lower(), [])
            active[id(change)] = not any(
                is_active(r, seen | {id(change)}) for r in reverters if id(r) not in seen
            )
        return active[id(change)]

    cancelled_ids = set()
    for revert in reverts:
        if id(revert) in targets and is_active(revert, frozenset()):
            cancelled_ids.add(id(revert))
            cancelled_ids.update(id(c) for c in changes if c.sha.lower() == targets[id(revert)])
    kept = tuple(c for c in changes if id(c) not in cancelled_ids)
    cancelled = tuple(c for c in changes if id(c) in cancelled_ids)
    return ChangeSet(kept, ignored, cancelled)


def release_level(changes: Iterable[Change], types: Mapping[str, Level]) -> Level:
    """Breaking -> MAJOR; otherwise the highest level the type map gives (unknown types: NONE)."""
    level = Level.NONE
    for change in changes:
        if change.breaking:
            return Level.MAJOR
        level = max(level, types.get(change.type, Level.NONE))
    return level


def lint_message(message: str, allowed_types: Collection[str] | None = None) -> str | None:
    """None when `message` is a valid commit message, else one sentence saying what is wrong."""
    text = message.replace("\r\n", "\n")
    scissors = _SCISSORS.search(text)
    if scissors is not None:
        text = text[: scissors.start()]
    lines = [line.rstrip() for line in text.split("\n") if not line.startswith("#")]
    while lines and not lines[0]:
        lines.pop(0)
    if not lines or not any(lines):
        return f"the commit message is empty; {_EXAMPLE}"
    header = lines[0]
    if header.startswith(_GIT_SUBJECTS):
        return None  # git's own merge, revert and autosquash subjects
    if len(lines) > 1 and lines[1].strip():
        return f"the header {header!r} must be followed by an empty line before the body"
    match = _SUBJECT.fullmatch(header.strip())
    if match is None:
        return _diagnose(header)
    kind = match["type"]
    if kind is not None and allowed_types is not None:
        allowed = {t.lower() for t in allowed_types}
        if kind.lower() not in allowed:
            return (
                f"type {kind!r} is not one of this project's commit types "
                f"({', '.join(sorted(allowed))}); use one of them, or allow it with "
                f'{kind.lower()} = "none" under [tool.releasekit.types]'
            )
    body = "\n".join(lines[2:]).strip("\n")
    for token, value in _footers(body) if "BREAKING" in body else ():
        if token in _BREAKING_TOKENS and not value:
            # The version rule still reads it as breaking; the linter wants the reason written.
            return f"the {token} footer is empty; say what breaks and how to migrate"
    return None


def _diagnose(header: str) -> str:
    """Why a header is not `type(scope)!: description`, in one sentence."""
    nested = _NESTED_SCOPE.match(header)
    if nested is not None:
        return f"the scope in {header!r} contains parentheses; {_EXAMPLE}"
    prefix = _PREFIX.match(header)
    if prefix is None:
        return f"{header!r} is not a conventional commit header; {_EXAMPLE}"
    if prefix["space"]:
        return f"remove the space before ':' in {header!r}; {_EXAMPLE}"
    if prefix["scope"] is not None and not prefix["scope"].strip():
        return f"the scope in {header!r} is empty; name a scope or drop the '()'; {_EXAMPLE}"
    rest = header[prefix.end() :]
    if not rest.strip():
        return f"the header {header!r} has no description after ':'; {_EXAMPLE}"
    if not rest.startswith(" "):
        return f"put a space after ':' in {header!r}; {_EXAMPLE}"
    return f"{header!r} is not a conventional commit header; {_EXAMPLE}"


def _find_sha(shas: list[str], prefix: str) -> str | None:
    """The one sha in sorted `shas` starting with `prefix` (None if absent or ambiguous)."""
    prefix = prefix.lower()
    index = bisect.bisect_left(shas, prefix)
    if index == len(shas) or not shas[index].startswith(prefix):
        return None
    if index + 1 < len(shas) and shas[index + 1].startswith(prefix):
        return None
    return shas[index]


def _change(sha: str, line: str, body: str, match: re.Match[str] | None) -> Change | None:
    """Build the Change of one header line (already matched for bullets) and its body."""
    if match is None:
        match = _SUBJECT.fullmatch(line)
        if match is None:
            return None
    kind, scope, bang, description, reverted = match.group(
        "type", "scope", "bang", "description", "reverted"
    )
    footers = _footers(body) if body else ()
    notes: tuple[str, ...] = ()
    if footers and "BREAKING" in body:
        notes = tuple(value for token, value in footers if token in _BREAKING_TOKENS)
    if reverted is not None:
        return Change(sha, "revert", None, reverted, False, notes, footers, _reverted_sha(body, ()))
    kind = kind.lower()
    reverts = None
    if kind == "revert":
        reverts = _reverted_sha(body, footers)
        if len(description) > 1 and description[0] == description[-1] == '"':
            description = description[1:-1]
    if scope is not None:
        scope = scope.strip()
    breaking = bang is not None or bool(notes)
    return Change(sha, kind, scope, description, breaking, notes, footers, reverts)


def _footers(body: str) -> tuple[tuple[str, str], ...]:
    """Conventional Commits footers: from the first footer paragraph to the end of the body."""
    if _FOOTER_KEY_AT.match(body):
        start = 0
    else:
        paragraph = _FOOTER_PARAGRAPH.search(body)
        if paragraph is None:
            return ()
        start = paragraph.end()
    # split() yields ["", token, value, token, value, ...]: a value runs (over several lines
    # if need be) until the next footer token.
    parts = _FOOTER_LINE.split(body[start:])
    return tuple(zip(parts[1::2], map(str.strip, parts[2::2]), strict=True))


def _reverted_sha(body: str, footers: tuple[tuple[str, str], ...]) -> str | None:
    match = _REVERTS_SHA.search(body) if "This reverts commit" in body else None
    if match is not None:
        return match["sha"].lower()
    for token, value in footers:
        if token.lower() == "refs":
            for word in value.replace(",", " ").split():
                if _SHA.fullmatch(word):
                    return word.lower()
    return None
