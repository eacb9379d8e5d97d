"""Retention rules of an index and the pure plan of what they delete.

The rules are the `retention` object of an index in the registry (indexes.py):

    {"keep_dev": 5, "keep_pre": 2, "older_than": "30d", "exclude": ["aegis-*"], "every": "24h"}

Decided semantics (PEP 440 order, never upload order):
- a version with `.devN` is a dev release, whatever else it carries (`2.0rc1.dev3`,
  `1.0.post1.dev2`); one with a/b/rc and no `.devN` is a pre-release (`1.0rc1`, `1.0rc1.post1`);
  everything else is final (`1.0`, `1.0.post1`, `1.0+local`) and is never deleted;
- per project, the newest `keep_dev` dev releases and the newest `keep_pre` pre-releases stay;
  a rule left out (None) deletes nothing of its kind;
- the newest version of a project always stays, whatever its kind;
- with `older_than`, a release goes only when every one of its files is older than that;
- a release's files go together: one file the index could not read keeps the whole release;
- files whose version is not PEP 440 are never touched (listed as skipped);
- projects matching an `exclude` glob (on the normalized name) are left alone.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from packaging.version import Version

from releasekit.errors import IndexServerError

Kind = Literal["dev", "pre", "final"]
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MIN_EVERY = 60  # seconds: a schedule is for housekeeping, not a busy loop over the store
_DURATION = re.compile(r"(\d{1,9})([A-Za-z]*)")
_KEYS = ("keep_dev", "keep_pre", "older_than", "exclude", "every")
_DURATION_HINT = "write a whole number and a unit: 30d, 24h, 90m, 2w (units: s, m, h, d, w)"


@dataclass(frozen=True)
class RetentionRules:
    """One index's rules; durations in seconds, with the text they were given in."""

    keep_dev: int | None = None
    keep_pre: int | None = None
    older_than: str | None = None
    exclude: tuple[str, ...] = ()
    every: str | None = None

    @property
    def older_than_seconds(self) -> int | None:
        return None if self.older_than is None else parse_duration(self.older_than, "older-than")

    @property
    def every_seconds(self) -> int | None:
        return None if self.every is None else parse_duration(self.every, "every")

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _KEYS if key != "exclude"} | {
            "exclude": list(self.exclude)
        }

    def describe(self) -> str:
        """`keep-dev 5, keep-pre 2, older-than 30d, exclude aegis-*, every 24h`."""
        parts = [f"keep-{kind} {n}" for kind, n in self.keeps() if n is not None]
        if self.older_than:
            parts.append(f"older-than {self.older_than}")
        parts += [f"exclude {glob}" for glob in self.exclude]
        parts.append(f"every {self.every}" if self.every else "on demand only")
        return ", ".join(parts)

    def keeps(self) -> tuple[tuple[Kind, int | None], ...]:
        return (("dev", self.keep_dev), ("pre", self.keep_pre))


def parse_duration(text: str, what: str) -> int:
    """Seconds in `30d`, `24h`, `90m`, `2w`, `45s`; IndexServerError naming `what` otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise IndexServerError(f"--{what} {text!r} is not a duration", hint=_DURATION_HINT)
    number, unit = int(match[1]), match[2].lower()
    if unit not in UNITS:
        problem = f"has an unknown unit {match[2]!r}" if unit else "has no unit"
        raise IndexServerError(f"--{what} {text!r} {problem}", hint=_DURATION_HINT)
    if number == 0:
        raise IndexServerError(
            f"--{what} {text!r} is zero", hint=f"give a longer time, or leave --{what} out"
        )
    return number * UNITS[unit]


def make_rules(
    *,
    keep_dev: int | None,
    keep_pre: int | None,
    older_than: str | None = None,
    exclude: Iterable[str] = (),
    every: str | None = None,
) -> RetentionRules:
    """Validated rules from CLI values (the same checks as `parse_rules`)."""
    for flag, value in (("keep-dev", keep_dev), ("keep-pre", keep_pre)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise IndexServerError(f"--{flag} must be a whole number, not {value!r}")
        if value is not None and value < 0:
            raise IndexServerError(
                f"--{flag} must be 0 or more, not {value}",
                hint="it is how many of the newest releases of that kind each project keeps",
            )
    if keep_dev is None and keep_pre is None:
        raise IndexServerError(
            "no retention rule given",
            hint="give --keep-dev N and/or --keep-pre M (or --off to turn retention off)",
        )
    globs = []
    for glob in exclude:
        if not isinstance(glob, str) or not glob.strip() or not glob.isprintable():
            raise IndexServerError(
                f"--exclude {glob!r} is not a project name pattern", hint="e.g. aegis-*"
            )
        globs.append(_normalize_glob(glob))
    if older_than is not None:
        older_than = _canonical_duration(older_than, "older-than")
    if every is not None:
        every = _canonical_duration(every, "every")
        if parse_duration(every, "every") < MIN_EVERY:
            raise IndexServerError(
                f"--every {every} is shorter than a minute",
                hint="retention is housekeeping: --every 24h is a good start",
            )
    return RetentionRules(keep_dev, keep_pre, older_than, tuple(globs), every)


def parse_rules(raw: Mapping[str, Any] | None, where: str) -> RetentionRules | None:
    """The registry's `retention` object as rules (None: off); IndexServerError naming `where`."""
    if raw is None:
        return None
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise IndexServerError(
            f"{where}: unknown retention keys {unknown}",
            hint=f"known keys: {', '.join(_KEYS)}; set the rules with "
            "`releasekit server index retention`",
        )
    exclude = raw.get("exclude") or []
    if not isinstance(exclude, list):
        raise IndexServerError(f"{where}: retention `exclude` must be a list of globs")
    texts = {key: raw.get(key) for key in ("older_than", "every")}
    for key, value in texts.items():
        if value is not None and not isinstance(value, str):
            raise IndexServerError(f"{where}: retention `{key}` must be a duration such as 30d")
    try:
        return make_rules(
            keep_dev=raw.get("keep_dev"),
            keep_pre=raw.get("keep_pre"),
            older_than=texts["older_than"],
            exclude=exclude,
            every=texts["every"],
        )
    except IndexServerError as exc:
        raise IndexServerError(f"{where}: {exc.message}", hint=exc.hint) from None


def _canonical_duration(text: str, what: str) -> str:
    parse_duration(text, what)
    match = _DURATION.fullmatch(text.strip())
    assert match is not None  # checked just above
    return f"{int(match[1])}{match[2].lower()}"


def _normalize_glob(glob: str) -> str:
    # Project names are compared normalized (PEP 503), so the pattern is normalized the same way.
    return re.sub(r"[-_.]+", "-", glob.strip()).lower()


def kind_of(version: Version) -> Kind:
    """dev (any `.devN`), pre (a/b/rc without `.devN`) or final (post-releases included)."""
    if version.dev is not None:
        return "dev"
    if version.pre is not None:
        return "pre"
    return "final"


def excluded(project: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(project, glob) for glob in globs)
