"""Versions: parsing, ordering, spellings, tags, next_version rules and manual bumps."""

from __future__ import annotations

import itertools

import packaging.version
import pytest

from releasekit.errors import ConfigError, VersionError
from releasekit.versioning import (
    Level,
    Version,
    bump_level,
    bump_version,
    ensure_forward,
    next_version,
    parse_tag,
)

V = Version.parse


@pytest.fixture(autouse=True)
def isolated_home() -> None:
    """Pure module: no HOME, git or files to isolate, so skip conftest's per-test temp HOME."""


N, P, MI, MA = Level.NONE, Level.PATCH, Level.MINOR, Level.MAJOR


# --- parse and spell --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.3.0", Version(1, 3, 0)),
        ("1.3", Version(1, 3, 0)),
        ("1", Version(1, 0, 0)),
        ("0.0.1", Version(0, 0, 1)),
        ("01.002.3", Version(1, 2, 3)),
        ("v1.2.3", Version(1, 2, 3)),
        ("  1.2.3\n", Version(1, 2, 3)),
        ("1.3.0rc1", Version(1, 3, 0, ("rc", 1))),
        ("1.3.0.rc1", Version(1, 3, 0, ("rc", 1))),
        ("1.3.0-rc1", Version(1, 3, 0, ("rc", 1))),
        ("1.3.0_rc_1", Version(1, 3, 0, ("rc", 1))),
        ("1.3.0RC1", Version(1, 3, 0, ("rc", 1))),
        ("1.3.0c1", Version(1, 3, 0, ("rc", 1))),
        ("1.3.0pre2", Version(1, 3, 0, ("rc", 2))),
        ("1.3.0preview2", Version(1, 3, 0, ("rc", 2))),
        ("1.3.0a1", Version(1, 3, 0, ("a", 1))),
        ("1.3.0alpha1", Version(1, 3, 0, ("a", 1))),
        ("1.3.0b2", Version(1, 3, 0, ("b", 2))),
        ("1.3.0beta2", Version(1, 3, 0, ("b", 2))),
        ("1.3rc1", Version(1, 3, 0, ("rc", 1))),
        ("1.3.0rc", Version(1, 3, 0, ("rc", 0))),
        ("1.3.0.post1", Version(1, 3, 0, post=1)),
        ("1.3.0-1", Version(1, 3, 0, post=1)),
        ("1.3.0post", Version(1, 3, 0, post=0)),
        ("1.3.0.rev2", Version(1, 3, 0, post=2)),
        ("1.3.0.dev4", Version(1, 3, 0, dev=4)),
        ("1.3.0dev", Version(1, 3, 0, dev=0)),
        ("1.3.0rc1.post2.dev3", Version(1, 3, 0, ("rc", 1), 2, 3)),
        # semver spellings of prereleases
        ("1.3.0-rc.1", Version(1, 3, 0, ("rc", 1))),
        ("1.3.0-alpha.2", Version(1, 3, 0, ("a", 2))),
        ("1.3.0-beta.1", Version(1, 3, 0, ("b", 1))),
        ("1.3.0-beta", Version(1, 3, 0, ("b", 0))),
        ("1.3.0-alpha", Version(1, 3, 0, ("a", 0))),
        ("2.0.0-rc.10", Version(2, 0, 0, ("rc", 10))),
    ],
)
def test_parse(text: str, expected: Version) -> None:
    assert Version.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "an unknown format"),
        ("latest", "an unknown format"),
        ("1.2.3.4", "more than three release numbers"),
        ("1.2.3-foo.1", "an unknown format"),
        ("1.2.3-rc.1.2", "an unknown format"),
        ("1.2.3+build.5", "a local or build suffix (+...)"),
        ("1.2.3+local", "a local or build suffix (+...)"),
        ("1!2.0.0", "an epoch (N!)"),
        ("1.2.x", "an unknown format"),
        ("v", "an unknown format"),
        ("vv1.2.3", "an unknown format"),
        ("1..2", "an unknown format"),
    ],
)
def test_parse_refuses(text: str, reason: str) -> None:
    with pytest.raises(VersionError) as info:
        Version.parse(text)
    assert reason in info.value.message
    assert repr(text) in info.value.message
    assert info.value.hint is not None and "1.3.0rc1" in info.value.hint


@pytest.mark.parametrize(
    ("version", "pep440", "semver"),
    [
        (Version(1, 3, 0), "1.3.0", "1.3.0"),
        (Version(1, 3, 0, ("rc", 1)), "1.3.0rc1", "1.3.0-rc.1"),
        (Version(1, 3, 0, ("a", 2)), "1.3.0a2", "1.3.0-alpha.2"),
        (Version(1, 3, 0, ("b", 3)), "1.3.0b3", "1.3.0-beta.3"),
        (Version(0, 0, 0), "0.0.0", "0.0.0"),
    ],
)
def test_spellings_round_trip(version: Version, pep440: str, semver: str) -> None:
    assert str(version) == pep440
    assert version.to_semver() == semver
    assert Version.parse(pep440) == version
    assert Version.parse(semver) == version


@pytest.mark.parametrize(
    ("version", "text"),
    [
        (Version(1, 3, 0, post=1), "1.3.0.post1"),
        (Version(1, 3, 0, dev=2), "1.3.0.dev2"),
        (Version(1, 3, 0, ("rc", 1), 2, 3), "1.3.0rc1.post2.dev3"),
    ],
)
def test_post_and_dev_have_pep440_but_no_semver_spelling(version: Version, text: str) -> None:
    assert str(version) == text
    with pytest.raises(VersionError, match="has no semver spelling"):
        version.to_semver()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"major": -1, "minor": 0, "patch": 0}, "cannot be negative"),
        ({"major": 1, "minor": 0, "patch": 0, "pre": ("rc", -1)}, "cannot be negative"),
        ({"major": 1, "minor": 0, "patch": 0, "pre": ("beta", 1)}, "unknown prerelease phase"),
    ],
)
def test_constructor_refuses(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(VersionError, match=message):
        Version(**kwargs)  # type: ignore[arg-type]


def test_properties() -> None:
    assert V("1.3.0rc1").is_prerelease
    assert V("1.3.0.dev1").is_prerelease
    assert not V("1.3.0").is_prerelease
    assert not V("1.3.0.post1").is_prerelease
    assert V("1.3.0rc1.post2.dev3").base == Version(1, 3, 0)


# --- ordering ---------------------------------------------------------------------------------

ORDERED = [
    "0.9.9",
    "1.0.0.dev1",
    "1.0.0a1.dev1",
    "1.0.0a1",
    "1.0.0a1.post1",
    "1.0.0a2",
    "1.0.0b1",
    "1.0.0rc1",
    "1.0.0rc2",
    "1.0.0rc10",
    "1.0.0",
    "1.0.0.post1.dev1",
    "1.0.0.post1",
    "1.0.0.post2",
    "1.0.1a1",
    "1.0.1",
    "1.1.0",
    "1.10.0",
    "2.0.0",
]


@pytest.mark.parametrize(("lower", "higher"), list(itertools.pairwise(ORDERED)))
def test_order_is_pep440_order(lower: str, higher: str) -> None:
    low, high = V(lower), V(higher)
    assert low < high and high > low and low <= high and high >= low and low != high
    assert not (high < low or low > high or high <= low or low >= high)
    # the reference implementation agrees
    assert packaging.version.Version(lower) < packaging.version.Version(higher)


def test_sorting_matches_packaging() -> None:
    scrambled = ORDERED[::2] + ORDERED[1::2][::-1]
    assert [str(v) for v in sorted(map(V, scrambled))] == ORDERED
    assert sorted(scrambled, key=packaging.version.Version) == ORDERED


def test_equal_spellings_are_equal_and_hash_alike() -> None:
    spellings = {V("1.3.0-rc.1"), V("1.3.0rc1"), V("1.3.0.rc1"), V("v1.3.0-rc1")}
    assert spellings == {Version(1, 3, 0, ("rc", 1))}
    assert V("1.3") <= V("1.3.0") and V("1.3") >= V("1.3.0")
    assert max(V("1.2.10"), V("1.2.9"), V("1.3.0rc1")) == V("1.3.0rc1")


def test_comparison_with_other_types_is_refused() -> None:
    with pytest.raises(TypeError):
        _ = V("1.0.0") < "1.0.1"
    text: object = "1.0.0"
    assert V("1.0.0") != text


# --- tags -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "tag_format", "expected"),
    [
        ("v1.3.0", "v{version}", "1.3.0"),
        ("v1.3.0rc1", "v{version}", "1.3.0rc1"),
        ("v1.3.0-rc.1", "v{version}", "1.3.0rc1"),
        ("1.3.0", "{version}", "1.3.0"),
        ("mylib-1.3.0", "mylib-{version}", "1.3.0"),
        ("mylib-v2.0.0b1", "mylib-v{version}", "2.0.0b1"),
        ("release/1.2.3", "release/{version}", "1.2.3"),
        ("v1.2.3-final", "v{version}-final", "1.2.3"),
        ("1.3.0", "v{version}", None),
        ("v1.3.0", "{version}", None),
        ("vv1.3.0", "v{version}", None),
        ("v", "v{version}", None),
        ("vnext", "v{version}", None),
        ("v1.3.0+build", "v{version}", None),
        ("other-1.3.0", "mylib-{version}", None),
        ("mylib-extra-1.3.0", "mylib-{version}", None),
        ("mylib-1.3.0", "v{version}", None),
        ("v1.2.3", "v{version}-final", None),
    ],
)
def test_parse_tag(tag: str, tag_format: str, expected: str | None) -> None:
    result = parse_tag(tag, tag_format)
    assert result == (None if expected is None else V(expected))


@pytest.mark.parametrize("tag_format", ["v", "{version}-{version}", "v{ver}"])
def test_parse_tag_refuses_a_format_without_one_placeholder(tag_format: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_tag("v1.0.0", tag_format)
    assert info.value.message == f"tag_format {tag_format!r} must contain {{version}} exactly once"


# --- level arithmetic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "level", "major_on_zero", "expected"),
    [
        ("1.2.3", MA, True, "2.0.0"),
        ("1.2.3", MI, True, "1.3.0"),
        ("1.2.3", P, True, "1.2.4"),
        ("1.2.3", N, True, "1.2.3"),
        ("1.2.3.post4", P, True, "1.2.4"),
        ("0.4.2", MA, True, "1.0.0"),
        ("0.4.2", MA, False, "0.5.0"),
        ("0.4.2", MI, False, "0.5.0"),
        ("0.4.2", P, False, "0.4.3"),
        ("1.2.3", MA, False, "2.0.0"),
    ],
)
def test_bump_level(version: str, level: Level, major_on_zero: bool, expected: str) -> None:
    assert bump_level(V(version), level, major_on_zero=major_on_zero) == V(expected)


# --- next_version -----------------------------------------------------------------------------


def _next(
    current: str | None,
    last_final: str | None,
    since_final: Level,
    since_current: Level,
    channel: str,
    declared: str = "0.1.0",
    major_on_zero: bool = True,
) -> str | None:
    result = next_version(
        current=None if current is None else V(current),
        last_final=None if last_final is None else V(last_final),
        declared=V(declared),
        level_since_final=since_final,
        level_since_current=since_current,
        channel=channel,
        major_on_zero=major_on_zero,
    )
    return None if result is None else str(result)


@pytest.mark.parametrize(
    ("declared", "level", "channel", "expected"),
    [
        ("0.1.0", N, "final", None),
        ("0.1.0", P, "final", "0.1.0"),
        ("0.1.0", MA, "final", "0.1.0"),
        ("1.0.0", MI, "final", "1.0.0"),
        ("1.0.0", N, "rc", None),
        ("1.0.0", P, "rc", "1.0.0rc1"),
        ("1.0.0", MI, "beta", "1.0.0b1"),
        ("1.0.0", MA, "alpha", "1.0.0a1"),
        ("1.0.0b2", P, "rc", "1.0.0b2"),
        ("1.0.0rc1", P, "final", "1.0.0rc1"),
    ],
)
def test_first_release_is_the_declared_version(
    declared: str, level: Level, channel: str, expected: str | None
) -> None:
    assert _next(None, None, level, level, channel, declared=declared) == expected


@pytest.mark.parametrize(
    ("current", "last_final", "since_final", "since_current", "expected"),
    [
        # from a final release
        ("1.2.3", "1.2.3", N, N, None),
        ("1.2.3", "1.2.3", P, P, "1.2.4"),
        ("1.2.3", "1.2.3", MI, MI, "1.3.0"),
        ("1.2.3", "1.2.3", MA, MA, "2.0.0"),
        ("1.2.3.post1", "1.2.3.post1", P, P, "1.2.4"),
        # finalizing a prerelease, or going further when the commits require it
        ("1.3.0rc2", "1.2.3", MI, N, "1.3.0"),
        ("1.3.0rc2", "1.2.3", P, P, "1.3.0"),
        ("1.3.0rc2", "1.2.3", MI, P, "1.3.0"),
        ("1.3.0rc2", "1.2.3", MA, MA, "2.0.0"),
        ("1.2.4rc1", "1.2.3", MI, MI, "1.3.0"),
        ("2.0.0b1", "1.2.3", MA, N, "2.0.0"),
        # chores only since the last final: nothing, even with a prerelease on top
        ("1.3.0rc1", "1.2.3", N, N, None),
        # no final tag yet, only prereleases
        ("1.0.0rc3", None, P, N, "1.0.0"),
        ("1.0.0rc3", None, MA, P, "1.0.0"),
        ("1.0.0rc3", None, N, N, None),
    ],
)
def test_next_version_final_channel(
    current: str, last_final: str | None, since_final: Level, since_current: Level, expected: str
) -> None:
    assert _next(current, last_final, since_final, since_current, "final") == expected


@pytest.mark.parametrize(
    ("current", "last_final", "since_final", "since_current", "channel", "expected"),
    [
        # never a release out of chores
        ("1.2.3", "1.2.3", N, N, "rc", None),
        ("1.3.0rc1", "1.2.3", MI, N, "rc", None),
        # from a final: bump the base, start the counter at 1
        ("1.2.3", "1.2.3", P, P, "rc", "1.2.4rc1"),
        ("1.2.3", "1.2.3", MI, MI, "rc", "1.3.0rc1"),
        ("1.2.3", "1.2.3", MA, MA, "beta", "2.0.0b1"),
        ("1.2.3", "1.2.3", P, P, "alpha", "1.2.4a1"),
        # the level fits the current prerelease: bump the counter
        ("1.3.0rc1", "1.2.3", P, P, "rc", "1.3.0rc2"),
        ("1.3.0rc1", "1.2.3", MI, P, "rc", "1.3.0rc2"),
        ("1.3.0rc1", "1.2.3", MI, MI, "rc", "1.3.0rc2"),
        ("1.2.4rc1", "1.2.3", P, P, "rc", "1.2.4rc2"),
        ("2.0.0rc9", "1.2.3", MA, MA, "rc", "2.0.0rc10"),
        ("1.3.0rc0", "1.2.3", P, P, "rc", "1.3.0rc1"),
        # the level outgrows it: move the base up and restart the counter
        ("1.2.4rc1", "1.2.3", MI, MI, "rc", "1.3.0rc1"),
        ("1.3.0rc2", "1.2.3", MA, MA, "rc", "2.0.0rc1"),
        ("1.2.4b3", "1.2.3", MA, MI, "beta", "2.0.0b1"),
        ("1.2.4rc1", "1.2.3", MI, MI, "beta", "1.3.0b1"),
        # channels move forward only
        ("1.3.0b2", "1.2.3", P, P, "rc", "1.3.0rc1"),
        ("1.3.0a1", "1.2.3", P, P, "beta", "1.3.0b1"),
        ("1.3.0a4", "1.2.3", P, P, "rc", "1.3.0rc1"),
        ("1.3.0rc1", "1.2.3", P, P, "beta", "1.3.0rc2"),
        ("1.3.0rc1", "1.2.3", P, P, "alpha", "1.3.0rc2"),
        ("1.3.0b1", "1.2.3", P, P, "alpha", "1.3.0b2"),
        # a dev-only tag sits below every phase
        ("1.3.0.dev1", "1.2.3", P, P, "alpha", "1.3.0a1"),
        # no final yet: every prerelease line implies a major step, so only the counter moves
        ("1.0.0rc1", None, MA, P, "rc", "1.0.0rc2"),
        ("1.0.0b1", None, MA, MA, "rc", "1.0.0rc1"),
        # after 0.2.0b3 -> 0.2.0, a fix on beta is 0.2.1b1, never 0.2.0b4 (PSR #920)
        ("0.2.0", "0.2.0", P, P, "beta", "0.2.1b1"),
        ("0.2.0b3", "0.2.0", P, P, "beta", "0.2.1b1"),
    ],
)
def test_next_version_prerelease_channel(
    current: str,
    last_final: str | None,
    since_final: Level,
    since_current: Level,
    channel: str,
    expected: str | None,
) -> None:
    assert _next(current, last_final, since_final, since_current, channel) == expected


@pytest.mark.parametrize(
    ("current", "last_final", "level", "channel", "major_on_zero", "expected"),
    [
        ("0.4.2", "0.4.2", MA, "final", True, "1.0.0"),
        ("0.4.2", "0.4.2", MA, "final", False, "0.5.0"),
        ("0.4.2", "0.4.2", MI, "final", False, "0.5.0"),
        ("0.4.2", "0.4.2", P, "final", False, "0.4.3"),
        ("0.4.2", "0.4.2", MA, "rc", True, "1.0.0rc1"),
        ("0.4.2", "0.4.2", MA, "rc", False, "0.5.0rc1"),
        # on 0.x with major_on_zero off, a breaking change fits a minor prerelease
        ("0.5.0rc1", "0.4.2", MA, "rc", False, "0.5.0rc2"),
        ("0.4.3rc1", "0.4.2", MA, "rc", False, "0.5.0rc1"),
        ("0.5.0rc1", "0.4.2", MA, "rc", True, "1.0.0rc1"),
        ("0.5.0rc1", "0.4.2", MA, "final", False, "0.5.0"),
        ("0.5.0rc1", "0.4.2", MA, "final", True, "1.0.0"),
        # major_on_zero only matters below 1.0
        ("1.4.2", "1.4.2", MA, "final", False, "2.0.0"),
    ],
)
def test_next_version_on_zero(
    current: str, last_final: str, level: Level, channel: str, major_on_zero: bool, expected: str
) -> None:
    assert _next(current, last_final, level, level, channel, major_on_zero=major_on_zero) == (
        expected
    )


def test_next_version_refuses_an_unknown_channel() -> None:
    with pytest.raises(ConfigError, match="'nightly' is not a channel") as info:
        _next("1.0.0", "1.0.0", P, P, "nightly")
    assert info.value.hint == "use one of final, alpha, beta, rc"


@pytest.mark.parametrize(
    ("current", "last_final", "since_final", "since_current", "channel"),
    [
        ("1.2.3", "1.2.3", P, P, "final"),
        ("1.2.3", "1.2.3", MA, MA, "rc"),
        ("1.3.0rc1", "1.2.3", MI, P, "rc"),
        ("1.3.0rc1", "1.2.3", MI, P, "final"),
        ("1.3.0b1", "1.2.3", P, P, "alpha"),
        ("0.4.2", "0.4.2", MA, MA, "beta"),
    ],
)
def test_next_version_always_moves_forward(
    current: str, last_final: str, since_final: Level, since_current: Level, channel: str
) -> None:
    result = _next(current, last_final, since_final, since_current, channel)
    assert result is not None
    ensure_forward(V(current), V(result))


# --- manual bumps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "kind", "prerelease_type", "expected"),
    [
        ("1.2.3", "major", None, "2.0.0"),
        ("1.2.3", "minor", None, "1.3.0"),
        ("1.2.3", "patch", None, "1.2.4"),
        ("0.2.3", "major", None, "1.0.0"),
        ("1.2.3.post2", "patch", None, "1.2.4"),
        # a prerelease whose base already is the bump just finalizes
        ("1.3.0rc1", "patch", None, "1.3.0"),
        ("1.3.0rc1", "minor", None, "1.3.0"),
        ("1.2.4rc1", "minor", None, "1.3.0"),
        ("1.2.4rc1", "patch", None, "1.2.4"),
        ("2.0.0rc1", "major", None, "2.0.0"),
        ("1.3.0rc1", "major", None, "2.0.0"),
        ("1.2.4b1", "major", None, "2.0.0"),
        # level bumps as prereleases
        ("1.2.3", "minor", "rc", "1.3.0rc1"),
        ("1.2.3", "major", "beta", "2.0.0b1"),
        ("1.2.3", "patch", "a", "1.2.4a1"),
        ("1.3.0rc1", "minor", "rc", "1.3.0rc2"),
        ("1.3.0b1", "minor", "rc", "1.3.0rc1"),
        ("1.2.4rc1", "minor", "rc", "1.3.0rc1"),
        ("1.2.4rc1", "minor", "alpha", "1.3.0a1"),
        ("1.3.0rc1", "major", "alpha", "2.0.0a1"),
        # prerelease
        ("1.2.3", "prerelease", None, "1.2.4rc1"),
        ("1.2.3", "prerelease", "alpha", "1.2.4a1"),
        ("1.2.3", "prerelease", "b", "1.2.4b1"),
        ("1.3.0rc1", "prerelease", None, "1.3.0rc2"),
        ("1.3.0b2", "prerelease", None, "1.3.0b3"),
        ("1.3.0b2", "prerelease", "beta", "1.3.0b3"),
        ("1.3.0b2", "prerelease", "rc", "1.3.0rc1"),
        ("1.3.0a2", "prerelease", "BETA", "1.3.0b1"),
        ("1.3.0.dev2", "prerelease", None, "1.3.0rc1"),
        # release
        ("1.3.0rc2", "release", None, "1.3.0"),
        ("1.3.0a1", "release", None, "1.3.0"),
        ("1.3.0.dev1", "release", None, "1.3.0"),
    ],
)
def test_bump_version(current: str, kind: str, prerelease_type: str | None, expected: str) -> None:
    result = bump_version(V(current), kind, prerelease_type)
    assert str(result) == expected
    ensure_forward(V(current), result)


@pytest.mark.parametrize(
    ("current", "kind", "prerelease_type", "message", "hint"),
    [
        ("1.3.0", "release", None, "1.3.0 is already a final release", "bump major, minor"),
        ("1.3.0.post1", "release", None, "1.3.0.post1 is already a final release", "bump"),
        ("1.3.0rc1", "release", "rc", "'release' takes no prerelease type", "drop"),
        ("1.3.0rc1", "prerelease", "beta", "cannot move 1.3.0rc1 back to beta", "use rc"),
        ("1.3.0b1", "prerelease", "a", "cannot move 1.3.0b1 back to alpha", "use beta"),
        ("1.3.0rc1", "minor", "beta", "cannot move 1.3.0rc1 back to beta", "alpha -> beta"),
        ("1.3.0", "prerelease", "gamma", "unknown prerelease type 'gamma'", "alpha, beta or rc"),
        ("1.3.0", "prerelease", "c", "unknown prerelease type 'c'", "alpha, beta or rc"),
        ("1.3.0", "micro", None, "unknown bump 'micro'", "major, minor, patch"),
        ("1.3.0", "", None, "unknown bump ''", "prerelease or release"),
    ],
)
def test_bump_version_refuses(
    current: str, kind: str, prerelease_type: str | None, message: str, hint: str
) -> None:
    version = V(current)
    with pytest.raises(VersionError) as info:
        bump_version(version, kind, prerelease_type)
    assert info.value.message == message or info.value.message.startswith(message)
    assert info.value.hint is not None and hint in info.value.hint
    assert version == V(current)  # values are frozen: nothing changed


# --- never backwards --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "new", "message"),
    [
        ("1.3.0", "1.2.9", "version would go backwards (1.3.0 -> 1.2.9)"),
        ("1.3.0", "1.3.0rc1", "version would go backwards (1.3.0 -> 1.3.0rc1)"),
        ("1.3.0rc2", "1.3.0rc1", "version would go backwards (1.3.0rc2 -> 1.3.0rc1)"),
        ("1.3.0rc1", "1.3.0b5", "version would go backwards (1.3.0rc1 -> 1.3.0b5)"),
        ("1.3.0", "1.3.0", "version would not move forward (1.3.0 -> 1.3.0)"),
        ("1.3.0-rc.1", "1.3.0rc1", "version would not move forward (1.3.0rc1 -> 1.3.0rc1)"),
    ],
)
def test_ensure_forward_refuses(previous: str, new: str, message: str) -> None:
    with pytest.raises(VersionError) as info:
        ensure_forward(V(previous), V(new))
    assert info.value.message == message
    assert info.value.hint is not None and f"above {V(previous)}" in info.value.hint


@pytest.mark.parametrize(
    ("previous", "new"), [("1.2.9", "1.3.0"), ("1.3.0rc1", "1.3.0"), ("1.3.0", "1.3.0.post1")]
)
def test_ensure_forward_accepts(previous: str, new: str) -> None:
    ensure_forward(V(previous), V(new))  # does not raise
