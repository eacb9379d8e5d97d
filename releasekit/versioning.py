"""Versions (PEP 440 out, PEP 440 or semver in) and the bump rules of design §3.  (pure)

PEP 440 grammar and ordering are `packaging`'s, semver spellings are `semver`'s: this module adds
only the bump rules.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import IntEnum

import semver
from packaging.version import InvalidVersion
from packaging.version import Version as Pep440Version

from releasekit.errors import ConfigError, VersionError


class Level(IntEnum):
    """How much a set of changes moves the version."""

    NONE = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3


CHANNELS = ("final", "alpha", "beta", "rc")
# Prerelease phases in PEP 440 order; a channel change may only move right.
_PHASES = ("a", "b", "rc")
# Channel and --prerelease names; "c", "pre" and "preview" are only read from versions.
_PHASE_OF = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "rc": "rc"}
_PEP440_PHASE = _PHASE_OF | {"c": "rc", "pre": "rc", "preview": "rc"}
_SEMVER_PHASE = {"a": "alpha", "b": "beta", "rc": "rc"}

_HINT = "use PEP 440 (1.3.0, 1.3.0rc1, 1.3.0.post1) or semver (1.3.0-rc.1, 1.3.0-beta.2)"


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    """A release version (three numbers; PEP 440 pre, post, dev), ordered as PEP 440 orders them.

    The spelling and the ordering are packaging's `Version`; semver spellings are read and
    written with `semver`. This class only holds the parts the bump rules work on.
    """

    major: int
    minor: int
    patch: int
    pre: tuple[str, int] | None = None
    post: int | None = None
    dev: int | None = None
    pep440: Pep440Version = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        numbers = (self.major, self.minor, self.patch, self.post, self.dev)
        if any(n is not None and n < 0 for n in numbers) or (self.pre and self.pre[1] < 0):
            raise VersionError(f"version numbers cannot be negative: {self!r}")
        if self.pre is not None and self.pre[0] not in _PHASES:
            raise VersionError(f"unknown prerelease phase {self.pre[0]!r}", hint="use a, b or rc")
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre is not None:
            text += f"{self.pre[0]}{self.pre[1]}"
        if self.post is not None:
            text += f".post{self.post}"
        if self.dev is not None:
            text += f".dev{self.dev}"
        object.__setattr__(self, "pep440", Pep440Version(text))

    @classmethod
    def parse(cls, text: str) -> Version:
        """Read a PEP 440 or semver spelling; raise VersionError for anything else."""
        stripped = text.strip()
        if "+" in stripped or "!" in stripped:
            reason = "an epoch (N!)" if "!" in stripped else "a local or build suffix (+...)"
            raise VersionError(f"{text!r} is not a version releasekit can use: {reason}", _HINT)
        version = _from_semver(stripped)
        if version is not None:
            return version
        try:
            parsed = Pep440Version(stripped)
        except InvalidVersion:
            reason = "an unknown format"
            raise VersionError(
                f"{text!r} is not a version releasekit can use: {reason}", _HINT
            ) from None
        if len(parsed.release) > 3:
            raise VersionError(f"{text!r} has more than three release numbers", _HINT)
        major, minor, patch = (*parsed.release, 0, 0)[:3]
        return cls(major, minor, patch, parsed.pre, parsed.post, parsed.dev)

    def __str__(self) -> str:
        return str(self.pep440)

    def to_semver(self) -> str:
        """The semver 2 spelling ("1.3.0-rc.1"); post and dev releases have none."""
        if self.post is not None or self.dev is not None:
            raise VersionError(
                f"{self} has no semver spelling (post and dev releases are PEP 440 only)",
                hint="use a PEP 440 tag_format or release a plain or a/b/rc version",
            )
        pre = None if self.pre is None else f"{_SEMVER_PHASE[self.pre[0]]}.{self.pre[1]}"
        return str(semver.Version(self.major, self.minor, self.patch, prerelease=pre))

    @property
    def is_prerelease(self) -> bool:
        return self.pep440.is_prerelease

    @property
    def base(self) -> Version:
        """The same release numbers without pre, post or dev parts."""
        return Version(self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        return self.pep440 < other.pep440 if isinstance(other, Version) else NotImplemented


def _from_semver(text: str) -> Version | None:
    """A semver prerelease spelling ("1.3.0-rc.1", "v2.0.0-beta"), or None for any other text."""
    candidate = text[1:] if text[:1] in ("v", "V") else text
    if not semver.Version.is_valid(candidate):
        return None
    parsed = semver.Version.parse(candidate)
    if parsed.prerelease is None:
        return None  # "1.3.0" reads the same in both spellings: PEP 440 takes it
    label, _, number = parsed.prerelease.partition(".")
    phase = _PEP440_PHASE.get(label.lower())
    if phase is None or not (number == "" or number.isdigit()):
        return None  # "1.3.0-1" (a PEP 440 post release) or a prerelease PEP 440 cannot name
    return Version(parsed.major, parsed.minor, parsed.patch, (phase, int(number or 0)))


def parse_tag(tag: str, tag_format: str) -> Version | None:
    """The version a tag names under `tag_format` ("v{version}"), or None if it names none."""
    prefix, placeholder, suffix = tag_format.partition("{version}")
    if not placeholder or "{version}" in suffix:
        raise ConfigError(
            f"tag_format {tag_format!r} must contain {{version}} exactly once",
            hint='for example tag_format = "v{version}"',
        )
    if len(tag) <= len(prefix) + len(suffix) or not tag.startswith(prefix):
        return None
    if not tag.endswith(suffix):
        return None
    middle = tag[len(prefix) : len(tag) - len(suffix)]
    # The prefix belongs to tag_format: "{version}" must not also read "v1.2.3".
    if not middle[0].isdigit():
        return None
    try:
        return Version.parse(middle)
    except VersionError:
        return None


def bump_level(version: Version, level: Level, *, major_on_zero: bool = True) -> Version:
    """The final release `level` above `version`; on 0.x major is minor unless major_on_zero."""
    major, minor, patch = version.major, version.minor, version.patch
    if level is Level.MAJOR and major == 0 and not major_on_zero:
        level = Level.MINOR
    if level is Level.MAJOR:
        return Version(major + 1, 0, 0)
    if level is Level.MINOR:
        return Version(major, minor + 1, 0)
    if level is Level.PATCH:
        return Version(major, minor, patch + 1)
    return version.base


def next_version(
    *,
    current: Version | None,
    last_final: Version | None,
    declared: Version,
    level_since_final: Level,
    level_since_current: Level,
    channel: str,
    major_on_zero: bool = True,
) -> Version | None:
    """The version to release on `channel`, or None when there is nothing to release (design §3)."""
    if channel not in CHANNELS:
        raise ConfigError(f"{channel!r} is not a channel", hint=f"use one of {', '.join(CHANNELS)}")
    phase = None if channel == "final" else _PHASE_OF[channel]
    if current is None and last_final is None:
        # The first release is the declared version, unchanged.
        if level_since_final is Level.NONE:
            return None
        if phase is None or declared.is_prerelease:
            return declared
        return _with_phase(declared, phase)
    if current is None or (
        last_final is not None and current.is_prerelease and current.base <= last_final
    ):
        # A prerelease overtaken by its final (0.2.0b3 -> 0.2.0) no longer counts (PSR #920).
        current = last_final
    assert current is not None  # both None returned above
    level = max(level_since_final, level_since_current)
    if phase is None:
        if level_since_final is Level.NONE:
            return None
        if last_final is None:
            return current.base
        target = bump_level(last_final, level, major_on_zero=major_on_zero)
        return max(target, current.base) if current.is_prerelease else target
    if level_since_current is Level.NONE:
        return None  # never a release out of chores
    if not current.is_prerelease:
        return _with_phase(bump_level(current, level, major_on_zero=major_on_zero), phase)
    if last_final is None:
        return _next_prerelease(current, phase)
    effective = bump_level(last_final, level, major_on_zero=major_on_zero)
    if effective <= current.base:
        return _next_prerelease(current, phase)
    return _with_phase(effective, phase)


def bump_version(current: Version, kind: str, prerelease_type: str | None = None) -> Version:
    """A manual bump: major|minor|patch (optionally as a prerelease), prerelease or release."""
    phase = None if prerelease_type is None else _phase(prerelease_type)
    if kind == "release":
        if phase is not None:
            raise VersionError(
                "'release' takes no prerelease type", hint="drop the prerelease type"
            )
        if not current.is_prerelease:
            raise VersionError(
                f"{current} is already a final release",
                hint="bump major, minor or patch to make a new release",
            )
        return current.base
    if kind == "prerelease":
        if not current.is_prerelease:
            return _with_phase(bump_level(current, Level.PATCH), phase or "rc")
        return _manual_prerelease(current, phase or (current.pre[0] if current.pre else "rc"))
    levels = {"major": Level.MAJOR, "minor": Level.MINOR, "patch": Level.PATCH}
    if kind not in levels:
        raise VersionError(
            f"unknown bump {kind!r}", hint="use major, minor, patch, prerelease or release"
        )
    target = _finalizing_bump(current, levels[kind])
    if phase is None:
        return target
    if current.is_prerelease and target == current.base:
        return _manual_prerelease(current, phase)
    return _with_phase(target, phase)


def ensure_forward(previous: Version, new: Version) -> None:
    """Refuse a version that is not strictly above the previous one."""
    if new > previous:
        return
    what = "not move forward" if new == previous else "go backwards"
    raise VersionError(
        f"version would {what} ({previous} -> {new})",
        hint=f"choose a version above {previous}; releasekit never reuses or lowers a version",
    )


def _phase(name: str) -> str:
    try:
        return _PHASE_OF[name.lower()]
    except KeyError:
        raise VersionError(
            f"unknown prerelease type {name!r}", hint="use alpha, beta or rc (or a, b, rc)"
        ) from None


def _with_phase(version: Version, phase: str) -> Version:
    return Version(version.major, version.minor, version.patch, (phase, 1))


def _next_prerelease(current: Version, phase: str) -> Version:
    """The next prerelease of current's base: a later phase restarts at 1, never goes back."""
    if current.pre is None or _PHASES.index(phase) > _PHASES.index(current.pre[0]):
        return _with_phase(current, phase)
    return Version(
        current.major, current.minor, current.patch, (current.pre[0], current.pre[1] + 1)
    )


def _manual_prerelease(current: Version, phase: str) -> Version:
    if current.pre is not None and _PHASES.index(phase) < _PHASES.index(current.pre[0]):
        raise VersionError(
            f"cannot move {current} back to {_SEMVER_PHASE[phase]}",
            hint=f"prereleases only move alpha -> beta -> rc; use {_SEMVER_PHASE[current.pre[0]]}"
            " or a later phase, or bump to a new base first",
        )
    return _next_prerelease(current, phase)


def _finalizing_bump(current: Version, level: Level) -> Version:
    """Bump by `level`; a prerelease whose base already is that bump just finalizes."""
    if not current.is_prerelease:
        return bump_level(current, level)
    base = current.base
    if level is Level.MAJOR and (base.minor or base.patch):
        return Version(base.major + 1, 0, 0)
    if level is Level.MINOR and base.patch:
        return Version(base.major, base.minor + 1, 0)
    return base
