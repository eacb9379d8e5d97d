"""Conventional-commit parsing, squash bodies, reverts, release levels and the commit linter."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import pytest

from releasekit.commits import (
    Change,
    RawCommit,
    changes_of,
    collect_changes,
    lint_message,
    release_level,
)
from releasekit.versioning import Level

TYPES: Mapping[str, Level] = {
    "feat": Level.MINOR,
    "fix": Level.PATCH,
    "perf": Level.PATCH,
    "revert": Level.PATCH,
    "docs": Level.NONE,
    "chore": Level.NONE,
}


@pytest.fixture(autouse=True)
def isolated_home() -> None:
    """Pure module: no HOME, git or files to isolate, so skip conftest's per-test temp HOME."""


def raw(message: str, *, parents: int = 1, sha: str | None = None) -> RawCommit:
    """A commit with a realistic sha derived from its message."""
    sha = sha or hashlib.sha1(message.encode(), usedforsecurity=False).hexdigest()
    return RawCommit(sha, tuple(f"{n:040x}" for n in range(parents)), message)


def one(message: str) -> Change:
    changes = changes_of(raw(message))
    assert len(changes) == 1, changes
    return changes[0]


# --- RawCommit / Change -----------------------------------------------------------------------


def test_raw_commit_properties() -> None:
    commit = raw("feat: x\n\nbody line\n\nRefs: #1\n", parents=2, sha="ab" * 20)
    assert commit.subject == "feat: x"
    assert commit.body == "body line\n\nRefs: #1"
    assert commit.is_merge
    assert commit.short_sha == "abababa"
    assert not raw("fix: y").is_merge
    assert raw("fix: y").body == ""
    assert one("fix: y").short_sha == raw("fix: y").sha[:7]


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "kind", "scope", "description", "breaking"),
    [
        ("feat: add x", "feat", None, "add x", False),
        ("feat(api): add x", "feat", "api", "add x", False),
        ("feat(api)!: drop x", "feat", "api", "drop x", True),
        ("feat!: drop x", "feat", None, "drop x", True),
        ("FIX: crash", "fix", None, "crash", False),
        ("Fix(Parser): crash on (empty) input", "fix", "Parser", "crash on (empty) input", False),
        ("fix(api, cli): both", "fix", "api, cli", "both", False),
        ("fix( api ): padded scope", "fix", "api", "padded scope", False),
        ("perf:   extra spaces   ", "perf", None, "extra spaces", False),
        ("docs: x", "docs", None, "x", False),
        ("build-deps: y", "build-deps", None, "y", False),
        ("wip: any type word parses", "wip", None, "any type word parses", False),
        ("fix: a: colon inside", "fix", None, "a: colon inside", False),
        ("  feat: leading space  ", "feat", None, "leading space", False),
    ],
)
def test_header(
    subject: str, kind: str, scope: str | None, description: str, breaking: bool
) -> None:
    change = one(subject + "\n")
    assert (change.type, change.scope, change.description, change.breaking) == (
        kind,
        scope,
        description,
        breaking,
    )
    assert change.breaking_notes == ()
    assert change.reverts is None
    assert lint_message(subject) is None  # the linter reads the same grammar


@pytest.mark.parametrize(
    "message",
    [
        "Update README",
        "fix:no space",
        "fix : x",
        "fix(): empty scope",
        "fix( ): blank scope",
        ": no type",
        "feat(a)(b): two scopes",
        "feat(scope: unclosed",
        "1fix: digit first",
        "fix: ",
        "feat!!: twice",
        "feat !: space",
        "",
        "fixup! feat: x",
    ],
)
def test_non_conventional_subjects_make_no_change(message: str) -> None:
    assert changes_of(raw(message)) == ()


# --- footers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "breaking", "notes", "footers"),
    [
        ("feat: x\n\nBREAKING CHANGE: gone", True, ("gone",), (("BREAKING CHANGE", "gone"),)),
        ("feat: x\n\nBREAKING-CHANGE: gone", True, ("gone",), (("BREAKING-CHANGE", "gone"),)),
        (
            "fix: x\n\nSome body.\nMore body.\n\nBREAKING CHANGE: a\nRefs: #1",
            True,
            ("a",),
            (("BREAKING CHANGE", "a"), ("Refs", "#1")),
        ),
        (
            "fix: x\n\nBREAKING CHANGE: first line\nsecond line\n\nthird\nReviewed-by: Z <z@x>",
            True,
            ("first line\nsecond line\n\nthird",),
            (("BREAKING CHANGE", "first line\nsecond line\n\nthird"), ("Reviewed-by", "Z <z@x>")),
        ),
        (
            "fix: x\n\nBREAKING CHANGE:\n  the value starts below",
            True,
            ("the value starts below",),
            (("BREAKING CHANGE", "the value starts below"),),
        ),
        (
            "feat: x\n\nBREAKING CHANGE: one\nBREAKING-CHANGE: two",
            True,
            ("one", "two"),
            (("BREAKING CHANGE", "one"), ("BREAKING-CHANGE", "two")),
        ),
        ("fix: x\n\nCloses #12\nFixes #13", False, (), (("Closes", "#12"), ("Fixes", "#13"))),
        ("feat!: x\n\nRefs: #3", True, (), (("Refs", "#3"),)),
        ("fix: x\n\nSigned-off-by: A <a@b>", False, (), (("Signed-off-by", "A <a@b>"),)),
        # the spec wants BREAKING CHANGE in capitals; other spellings are ordinary tokens
        ("fix: x\n\nbreaking change: no", False, (), ()),
        ("fix: x\n\nBreaking-Change: no", False, (), (("Breaking-Change", "no"),)),
        # footers follow a blank line; a line inside a body paragraph is body
        ("fix: x\n\nThe body says\nBREAKING CHANGE: inside a paragraph", False, (), ()),
        ("fix: x\n\nthis is a BREAKING CHANGE: of sorts", False, (), ()),
        ("fix: x\n\n    BREAKING CHANGE: indented code", False, (), ()),
        ("fix: x\n\nJust a body: with a colon in it.", False, (), ()),
    ],
)
def test_footers(
    message: str,
    breaking: bool,
    notes: tuple[str, ...],
    footers: tuple[tuple[str, str], ...],
) -> None:
    change = one(message)
    assert change.breaking is breaking
    assert change.breaking_notes == notes
    assert change.footers == footers


def test_crlf_messages_read_like_lf() -> None:
    change = one("feat(x)!: y\r\n\r\nbody\r\n\r\nBREAKING CHANGE: z\r\n")
    assert (change.scope, change.description, change.breaking_notes) == ("x", "y", ("z",))


@pytest.mark.parametrize(
    "body",
    [
        "Bumps foo from 1.0 to 2.0.\nfix: a line from the upstream changelog\n\nSigned-off-by: bot",
        "feat: looks like a header but lives in the body",
        "Release notes\n\nfix: something upstream\nfeat!: something else",
        "- [Release notes](https://example.invalid/notes)\n- [Commits](https://example.invalid/c)",
        "Details:\n  * fix: an indented list item is prose",
        "Bumps foo.\n\n---\nupdated-dependencies:\n- dependency-name: foo\n"
        "  dependency-type: direct:production\n...\n\nSigned-off-by: dependabot[bot] <x@y>",
        "Squashed notes\n\n---------\n\n* fix: after the trailer separator",
    ],
)
def test_body_lines_never_make_changes(body: str) -> None:
    change = one(f"chore(deps): bump foo\n\n{body}\n")
    assert (change.type, change.breaking) == ("chore", False)
    assert release_level([change], TYPES) is Level.NONE


# --- squash-merge bodies ----------------------------------------------------------------------


def _summary(changes: tuple[Change, ...]) -> list[tuple[str, str | None, str, bool]]:
    return [(c.type, c.scope, c.description, c.breaking) for c in changes]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "feat: big feature (#12)\n\n* feat: part one\n\n* fix(io): part two\n",
            [
                ("feat", None, "big feature (#12)", False),
                ("feat", None, "part one", False),
                ("fix", "io", "part two", False),
            ],
        ),
        (
            "feat: part one (#12)\n\n* feat: part one\n\n* fix(io): part two\n",
            [("feat", None, "part one", False), ("fix", "io", "part two", False)],
        ),
        (
            "fix: part two (#12)\n\n* feat: part one\n* fix: part two (#12)\n",
            [("feat", None, "part one", False), ("fix", None, "part two (#12)", False)],
        ),
        (
            "Add widgets (#7)\n\n- feat: widgets\n- docs: readme\n",
            [("feat", None, "widgets", False), ("docs", None, "readme", False)],
        ),
        (
            "Add widgets (#7)\n\n* feat!: new api\n\n* Update docs\n\n* perf: faster\n",
            [("feat", None, "new api", True), ("perf", None, "faster", False)],
        ),
        (
            "Merge things (#8)\n\n* feat: a\nmore detail about a\n\nBREAKING CHANGE: a is gone\n\n"
            "* fix: b\n",
            [("feat", None, "a", True), ("fix", None, "b", False)],
        ),
    ],
)
def test_squash_bullets_are_separate_changes(
    message: str, expected: list[tuple[str, str | None, str, bool]]
) -> None:
    commit = raw(message)
    changes = changes_of(commit)
    assert _summary(changes) == expected
    assert all(c.sha == commit.sha for c in changes)


def test_squash_bullet_keeps_its_own_footers_and_trailers_stay_out() -> None:
    message = (
        "Widgets (#9)\n\n* feat: a\n\nBREAKING CHANGE: old a removed\n\n* fix: b\n\nRefs: #4\n\n"
        "---------\n\nCo-authored-by: A <a@b>\n"
    )
    feat, fix = changes_of(raw(message))
    assert feat.breaking_notes == ("old a removed",)
    assert fix.footers == (("Refs", "#4"),)


def test_squash_header_keeps_the_trailers_when_it_counts() -> None:
    message = "feat: widgets (#9)\n\n* fix: b\n\n---------\n\nCo-authored-by: A <a@b>\n"
    header, fix = changes_of(raw(message))
    assert header.footers == (("Co-authored-by", "A <a@b>"),)
    assert fix.footers == ()


# --- merges -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message", ["Merge branch 'feature' into main", "feat: merged with a conventional message"]
)
def test_merge_commits_contribute_nothing(message: str) -> None:
    merge = raw(message, parents=2)
    assert changes_of(merge) == ()
    result = collect_changes([merge])
    assert result.changes == () and result.ignored == () and result.cancelled == ()


# --- reverts ----------------------------------------------------------------------------------

FEAT = raw("feat: add x\n")
FEAT_SHA = FEAT.sha


@pytest.mark.parametrize(
    ("message", "description", "reverts"),
    [
        (f'Revert "feat: add x"\n\nThis reverts commit {FEAT_SHA}.\n', "feat: add x", FEAT_SHA),
        (f"revert: feat: add x\n\nThis reverts commit {FEAT_SHA}.", "feat: add x", FEAT_SHA),
        (f"revert: feat: add x\n\nRefs: {FEAT_SHA[:8]}", "feat: add x", FEAT_SHA[:8]),
        (f'revert(api): "feat: add x"\n\nRefs: #3, {FEAT_SHA[:7]}', "feat: add x", FEAT_SHA[:7]),
        (
            f"Revert: feat: add x\n\nThis reverts commit {FEAT_SHA.upper()}.",
            "feat: add x",
            FEAT_SHA,
        ),
        ('Revert "feat: add x"\n\nNo sha in here.', "feat: add x", None),
        ("revert: feat: add x\n\nRefs: #12", "feat: add x", None),
        (
            f'Revert "Revert "feat: add x""\n\nThis reverts commit {FEAT_SHA[:12]}.',
            'Revert "feat: add x"',
            FEAT_SHA[:12],
        ),
    ],
)
def test_revert_changes(message: str, description: str, reverts: str | None) -> None:
    change = one(message)
    assert (change.type, change.description, change.reverts) == ("revert", description, reverts)
    assert not change.breaking


def _revert(target: RawCommit, *, short: bool = False) -> RawCommit:
    sha = target.sha[:7] if short else target.sha
    return raw(f'Revert "{target.subject}"\n\nThis reverts commit {sha}.\n')


def _descriptions(changes: tuple[Change, ...]) -> list[str]:
    return [c.description for c in changes]


@pytest.mark.parametrize("short", [False, True])
def test_revert_pair_in_one_release_cancels_out(short: bool) -> None:
    fix = raw("fix: keep me\n")
    revert = _revert(FEAT, short=short)
    result = collect_changes([FEAT, fix, revert])
    assert _descriptions(result.changes) == ["keep me"]
    assert _descriptions(result.cancelled) == ["add x", "feat: add x"]
    assert release_level(result.changes, TYPES) is Level.PATCH


def test_revert_pair_cancels_whatever_the_order_of_the_list() -> None:
    result = collect_changes([_revert(FEAT), FEAT])
    assert result.changes == ()
    assert len(result.cancelled) == 2


def test_revert_of_an_already_released_change_is_a_patch() -> None:
    result = collect_changes([_revert(FEAT)])
    assert _descriptions(result.changes) == ["feat: add x"]
    assert result.cancelled == ()
    assert release_level(result.changes, TYPES) is Level.PATCH


def test_revert_of_a_breaking_change_cancels_the_major() -> None:
    breaking = raw("feat!: drop the old api\n")
    result = collect_changes([breaking, _revert(breaking)])
    assert release_level(result.changes, TYPES) is Level.NONE


def test_revert_of_a_revert_brings_the_change_back() -> None:
    revert = _revert(FEAT)
    again = _revert(revert)
    result = collect_changes([FEAT, revert, again])
    assert _descriptions(result.changes) == ["add x"]
    assert len(result.cancelled) == 2
    assert release_level(result.changes, TYPES) is Level.MINOR


def test_third_revert_in_a_chain_removes_the_change_again() -> None:
    first = _revert(FEAT)
    second = _revert(first)
    third = _revert(second)
    result = collect_changes([FEAT, first, second, third])
    assert result.changes == ()
    assert len(result.cancelled) == 4


def test_revert_chain_without_the_original_keeps_nothing_but_the_outer_pair_cancelled() -> None:
    first = _revert(FEAT)
    second = _revert(first)
    result = collect_changes([first, second])
    assert result.changes == ()  # the revert and its revert cancel; the feature was released before
    assert len(result.cancelled) == 2


def test_revert_of_a_squash_commit_cancels_all_its_bullets() -> None:
    squash = raw("Widgets (#9)\n\n* feat: a\n* fix: b\n")
    result = collect_changes([squash, _revert(squash)])
    assert result.changes == ()
    assert _descriptions(result.cancelled) == ["a", "b", "Widgets (#9)"]


def test_revert_of_an_ignored_commit_cancels_the_revert() -> None:
    wip = raw("WIP stuff\n")
    result = collect_changes([wip, _revert(wip)])
    assert result.changes == ()
    assert result.ignored == (wip,)
    assert len(result.cancelled) == 1


def test_revert_with_an_ambiguous_short_sha_is_kept() -> None:
    a = raw("feat: a\n", sha="abcdef1" + "0" * 33)
    b = raw("feat: b\n", sha="abcdef1" + "1" * 33)
    revert = raw('Revert "feat: a"\n\nThis reverts commit abcdef1.\n')
    result = collect_changes([a, b, revert])
    assert len(result.changes) == 3
    assert result.cancelled == ()


# --- collect_changes and release_level --------------------------------------------------------


def test_collect_changes_keeps_order_and_reports_ignored_commits() -> None:
    commits = [
        raw("feat: one\n"),
        raw("Update stuff\n"),
        raw("Merge branch 'x'\n", parents=2),
        raw("docs: two\n"),
        raw("fixup! docs: two\n"),
        raw("Batch (#3)\n\n* fix: three\n* perf: four\n"),
    ]
    result = collect_changes(commits)
    assert _descriptions(result.changes) == ["one", "two", "three", "four"]
    assert result.ignored == (commits[1], commits[4])
    assert result.cancelled == ()


def _change(kind: str, breaking: bool = False) -> Change:
    return Change("0" * 40, kind, None, "d", breaking, (), ())


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ([], Level.NONE),
        (["docs", "chore"], Level.NONE),
        (["feat"], Level.MINOR),
        (["fix", "feat", "docs"], Level.MINOR),
        (["fix"], Level.PATCH),
        (["perf"], Level.PATCH),
        (["revert"], Level.PATCH),
        (["wip", "refactor"], Level.NONE),
        (["docs", "docs!"], Level.MAJOR),
        (["fix", "chore!"], Level.MAJOR),
    ],
)
def test_release_level(kinds: list[str], expected: Level) -> None:
    changes = [_change(k.rstrip("!"), k.endswith("!")) for k in kinds]
    assert release_level(changes, TYPES) is expected
    assert release_level(iter(changes), TYPES) is expected


def test_release_level_follows_a_configured_type_map() -> None:
    assert release_level([_change("docs")], {**TYPES, "docs": Level.PATCH}) is Level.PATCH
    assert release_level([_change("feat")], {"feat": Level.PATCH}) is Level.PATCH


# --- linter -----------------------------------------------------------------------------------

SCISSORS = "# ------------------------ >8 ------------------------"


@pytest.mark.parametrize(
    "message",
    [
        "feat: x",
        "feat(api)!: x\n\nbody\n\nBREAKING CHANGE: y\n",
        "Merge branch 'a' into main",
        "Merge pull request #3 from x/y",
        f'Revert "feat: x"\n\nThis reverts commit {FEAT_SHA}.',
        "fixup! feat: x",
        "squash! fix: y",
        "amend! fix: y",
        "# Please enter the commit message\nfeat: x\n# comment below\n",
        "\n\nfeat: after blank lines",
        "feat: x\r\n\r\nbody\r\n",
        f"fix: ok\n\n{SCISSORS}\ndiff --git a/x b/x\nnot: a problem\n",
        "feat: x\n# a comment line where the blank line would be\n\nbody",
    ],
)
def test_lint_accepts(message: str) -> None:
    assert lint_message(message) is None


EXAMPLE = "a valid header looks like 'feat(parser): accept empty input'"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("", f"the commit message is empty; {EXAMPLE}"),
        ("   \n\n", f"the commit message is empty; {EXAMPLE}"),
        ("# only a comment\n", f"the commit message is empty; {EXAMPLE}"),
        (f"{SCISSORS}\nfeat: below the scissors", f"the commit message is empty; {EXAMPLE}"),
        ("Update README", f"'Update README' is not a conventional commit header; {EXAMPLE}"),
        ("fix:", f"the header 'fix:' has no description after ':'; {EXAMPLE}"),
        ("fix(api):   ", f"the header 'fix(api):' has no description after ':'; {EXAMPLE}"),
        ("fix :x", f"remove the space before ':' in 'fix :x'; {EXAMPLE}"),
        ("fix(api) : x", f"remove the space before ':' in 'fix(api) : x'; {EXAMPLE}"),
        (
            "fix(): x",
            f"the scope in 'fix(): x' is empty; name a scope or drop the '()'; {EXAMPLE}",
        ),
        ("fix:x", f"put a space after ':' in 'fix:x'; {EXAMPLE}"),
        ("feat(a)(b): x", f"the scope in 'feat(a)(b): x' contains parentheses; {EXAMPLE}"),
        ("fix: x\nbody", "the header 'fix: x' must be followed by an empty line before the body"),
    ],
)
def test_lint_rejects(message: str, error: str) -> None:
    assert lint_message(message) == error


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("feat: x", None),
        ("FEAT(api): x", None),
        ("Fix: x", None),
        ("Merge branch 'x'", None),
        (
            "feature: x",
            "type 'feature' is not one of this project's commit types (feat, fix); use one of"
            ' them, or allow it with feature = "none" under [tool.releasekit.types]',
        ),
        (
            "chore: x",
            "type 'chore' is not one of this project's commit types (feat, fix); use one of"
            ' them, or allow it with chore = "none" under [tool.releasekit.types]',
        ),
    ],
)
def test_lint_allowed_types(message: str, error: str | None) -> None:
    assert lint_message(message, allowed_types={"feat", "Fix"}) == error


@pytest.mark.parametrize(
    "subject", ["feat(x)!: y", "docs: z", "Update README", "fix:x", "fix(): x", "fix :x"]
)
def test_linter_and_parser_agree(subject: str) -> None:
    assert (lint_message(subject) is None) == bool(changes_of(raw(subject)))


# --- decided rules: one parser, the linter stricter on form only ----------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # the header's `!` differs from the bullet's: two changes, and the release is a major
        (
            "feat!: x (#1112)\n\n* feat: x\n",
            [("feat", None, "x (#1112)", True), ("feat", None, "x", False)],
        ),
        # the scope differs
        (
            "feat(api): x (#5)\n\n* feat: x\n",
            [("feat", "api", "x (#5)", False), ("feat", None, "x", False)],
        ),
        # the type differs
        (
            "fix: x (#5)\n\n* feat: x\n",
            [("fix", None, "x (#5)", False), ("feat", None, "x", False)],
        ),
        # everything matches (PR number aside, type case aside): one change
        ("Feat(api)!: x (#5)\n\n* feat(api)!: x\n", [("feat", "api", "x", True)]),
        ("feat( api ): x\n\n- feat(api): x\n", [("feat", "api", "x", False)]),
    ],
)
def test_squash_header_and_bullet_are_one_change_only_when_all_four_match(
    message: str, expected: list[tuple[str, str | None, str, bool]]
) -> None:
    changes = changes_of(raw(message))
    assert _summary(changes) == expected


def test_breaking_squash_header_over_a_plain_bullet_is_a_major_release() -> None:
    changes = collect_changes([raw("feat!: x (#1112)\n\n* feat: x\n")]).changes
    assert release_level(changes, TYPES) is Level.MAJOR


@pytest.mark.parametrize(
    "message",
    [
        "\n\nfeat(api): x\n\nbody\n",
        "\n   \n\t\nfeat(api): x\n\nbody\n",
        "\r\n\r\nfeat(api): x\r\n\r\nbody\r\n",
    ],
)
def test_leading_blank_lines_are_skipped_by_parser_and_linter(message: str) -> None:
    change = one(message)
    assert (change.type, change.scope, change.description) == ("feat", "api", "x")
    assert raw(message).subject == "feat(api): x"
    assert raw(message).body == "body"
    assert lint_message(message) is None


def test_header_followed_by_a_body_line_is_refused_by_the_linter_but_counted() -> None:
    message = "feat(api): x\nbody right below\n"
    assert lint_message(message) == (
        "the header 'feat(api): x' must be followed by an empty line before the body"
    )
    change = one(message)
    assert (change.type, change.breaking) == ("feat", False)
    assert release_level([change], TYPES) is Level.MINOR


@pytest.mark.parametrize(
    "message",
    [
        "fix: x\n\nBREAKING CHANGE:",
        "fix: x\n\nBREAKING CHANGE: \n",
        "fix: x\n\nbody\n\nBREAKING-CHANGE:\nRefs: #1\n",
    ],
)
def test_empty_breaking_footer_is_refused_by_the_linter_but_still_breaking(message: str) -> None:
    token = "BREAKING-CHANGE" if "BREAKING-CHANGE" in message else "BREAKING CHANGE"
    assert lint_message(message) == (
        f"the {token} footer is empty; say what breaks and how to migrate"
    )
    change = one(message)
    assert change.breaking is True
    assert release_level([change], TYPES) is Level.MAJOR


@pytest.mark.parametrize(
    "subject", ["feat(a(b)): x", "fix((part)): x", "chore((p):rt): x", "feat(a(b))!: x"]
)
def test_scope_with_parentheses_is_refused_by_both(subject: str) -> None:
    assert lint_message(subject) == f"the scope in {subject!r} contains parentheses; {EXAMPLE}"
    assert changes_of(raw(subject)) == ()
    assert changes_of(raw(f"Squash (#1)\n\n* {subject}\n")) == ()


# --- peers' and the specification's test vectors ----------------------------------------------
# Conventional Commits 1.0.0 examples, commitizen's tests/test_bump_find_increment.py and
# tests/commands/test_check_command.py, python-semantic-release's
# tests/unit/semantic_release/commit_parser/test_conventional.py. Where a decided rule differs
# (PSR reads `chore((part)): x` with the scope "(part)") the test above says so.

SPEC_EXAMPLES = [
    (
        "feat: allow provided config object to extend other configs\n\nBREAKING CHANGE: "
        "`extends` key in config file is now used for extending other config files",
        Level.MAJOR,
    ),
    ("feat!: send an email to the customer when a product is shipped", Level.MAJOR),
    ("feat(api)!: send an email to the customer when a product is shipped", Level.MAJOR),
    (
        "chore!: drop support for Node 6\n\nBREAKING CHANGE: use JavaScript features not "
        "available in Node 6.",
        Level.MAJOR,
    ),
    ("docs: correct spelling of CHANGELOG", Level.NONE),
    ("feat(lang): add Polish language", Level.MINOR),
    (
        "fix: prevent racing of requests\n\nIntroduce a request id and a reference to latest "
        "request. Dismiss\nincoming responses other than from latest request.\n\nRemove "
        "timeouts which were used to mitigate the racing issue but are\nobsolete now.\n\n"
        "Reviewed-by: Z\nRefs: #123",
        Level.PATCH,
    ),
    # python-semantic-release: test_parser_returns_correct_bump_level
    ("feat(parsers): add new parser pattern\n\nBREAKING CHANGE: change", Level.MAJOR),
    ("feat(parsers)!: add new parser pattern", Level.MAJOR),
    (
        "feat(parsers): add new parser pattern\n\nNew pattern is awesome\n\n"
        "BREAKING CHANGE: change \n",
        Level.MAJOR,
    ),
    ("feat(parsers): add new parser pattern\n\nBREAKING-CHANGE: change !", Level.MAJOR),
    ("feat(parser): add emoji parser", Level.MINOR),
    ("fix(parser): fix regex in conventional parser", Level.PATCH),
    ("test(parser): add a test for conventional parser", Level.NONE),
    ("feat(parser)!: edit data parsing stuff", Level.MAJOR),
    ("fix!: edit data parsing stuff again", Level.MAJOR),
    ("fix: superfix", Level.PATCH),
    # commitizen: test_find_increment (one message each)
    ("chore!: drop support for Python 3.9", Level.MAJOR),
    ("chore(deps)!: drop support for Python 3.9", Level.MAJOR),
    ("feat(pipeline)!: some text with breaking change", Level.MAJOR),
    ("fix(setup.py): future is now required for every python version", Level.PATCH),
    ("perf: app is much faster", Level.PATCH),
    ("refactor: app is much faster", Level.NONE),
    ("docs(README): motivation", Level.NONE),
    ("performance. Remove or disable the reimplemented linters", Level.NONE),
    ("refactor that how this line starts", Level.NONE),
]


@pytest.mark.parametrize(("message", "level"), SPEC_EXAMPLES)
def test_peer_and_spec_vectors_give_the_same_level(message: str, level: Level) -> None:
    assert release_level(changes_of(raw(message)), TYPES) is level


def test_spec_footer_example_reads_both_footers() -> None:
    change = one(SPEC_EXAMPLES[6][0])
    assert change.footers == (("Reviewed-by", "Z"), ("Refs", "#123"))


@pytest.mark.parametrize(
    ("message", "scope"),
    [
        ("chore(parser): ...", "parser"),
        ("chore(a part): ...", "a part"),
        ("chore(a_part): ...", "a_part"),
        ("chore(a-part): ...", "a-part"),
        ("chore(a.part): ...", "a.part"),
        ("chore(a+part): ...", "a+part"),
        ("chore(a&part): ...", "a&part"),
    ],
)
def test_psr_scope_vectors(message: str, scope: str) -> None:
    assert one(message).scope == scope


@pytest.mark.parametrize("message", ["", "feat(parser\n): Add new parser pattern"])
def test_psr_unparseable_vectors(message: str) -> None:
    assert changes_of(raw(message)) == ()
    assert lint_message(message) is not None


CZ_CHECK_LOG = [
    "refactor: A code change that neither fixes a bug nor adds a feature",
    r"refactor(cz/connventional_commit): use \S to check scope",
    "refactor(git): remove unnecessary dot between git range",
    "Merge pull request #139 from Lee-W/fix-init-clean-config-file\n\nFix init clean config file",
    "ci(pyproject.toml): add configuration for coverage",
    "fix(commands/init): fix clean up file when initialize commitizen config\n\n#138",
    "refactor(docs): remove README.rst and use docs/README.md\n\nBy removing README.rst, we no "
    "longer need to maintain two document with almost the same content\nGithub can read "
    "docs/README.md as README for the project.",
    'Revert "fix(pre-commit): set pre-commit check stage to commit-msg"\n\n'
    "This reverts commit afc70133e4a81344928561fbf3bb20738dfc8a0b.",
    "feat!: add user stuff",
    "fixup! test(commands): ignore fixup! prefix",
    "feat(lang)!: removed polish language",
    "feat(lang): added polish language",
    "feat: add polish language",
    "ci: add commitizen pre-commit hook\n\n# Explain why this change is being made\n"
    "This pre-commit hook will check our commits automatically.",
]


@pytest.mark.parametrize("message", CZ_CHECK_LOG)
def test_commitizen_check_accepts(message: str) -> None:
    assert lint_message(message) is None


@pytest.mark.parametrize(
    "message",
    [
        "feat!(lang): removed polish language",
        "no conventional commit",
        "ci: check commit message on merge\ntesting with more complex commit mes\n\nage with error",
        "bad commit",
        "",
        "This commit does not follow rule",
    ],
)
def test_commitizen_check_refuses(message: str) -> None:
    assert lint_message(message) is not None


def test_commitizen_own_bump_type_is_refused_inside_a_configured_project() -> None:
    assert lint_message("bump: 0.0.1 -> 1.0.0") is None  # outside a project: any type word
    assert lint_message("bump: 0.0.1 -> 1.0.0", allowed_types=TYPES) is not None


# --- peers' vectors where a decided rule gives another answer (pinned, so the choice is visible) -
# commitizen's tests/test_bump_find_increment.py MAJOR_INCREMENTS_BREAKING_CHANGE_CC counts a commit
# whose first line is `BREAKING CHANGE: ...` as major; here that line is no conventional header
# (a footer needs a header above it), so the commit is ignored by the version rule and refused by
# the linter. python-semantic-release reads BitBucket's and `git merge --squash`'s squash messages
# as several commits; here only `* type:` / `- type:` bullets of a squash body count.
PSR_SQUASH_PARAGRAPHS = [
    "Merged in feat/my-awesome-stuff  (pull request #10)\n\nfix(release-config): some commit "
    "subject\n\nResolves: #12\n",
    "Squashed commit of the following:\n\ncommit 63ec09b9e844e616dcaa7bae35a0b66671b59fbb\n"
    "Author: author <author@not-an-email.com>\nDate:   Sun Jan 19 12:05:23 2025 +0000\n\n"
    "    fix(cli)!: changed option name\n\n    BREAKING CHANGE: A breaking change description\n",
]


@pytest.mark.parametrize(
    "message",
    [
        "BREAKING CHANGE: `extends` key in config file is now used for extending other configs",
        "BREAKING-CHANGE: `extends` key in config file is now used for extending other configs",
        *PSR_SQUASH_PARAGRAPHS,
    ],
)
def test_peer_vectors_the_decided_rules_read_otherwise(message: str) -> None:
    assert release_level(changes_of(raw(message)), TYPES) is Level.NONE
    assert lint_message(message, allowed_types=TYPES) is not None


def test_psr_github_squash_vector_gives_psr_level_and_changes() -> None:
    message = (
        "fix(release-config): some commit subject (#10)\n\nAn additional description\n\n"
        "Resolves: #12\nSigned-off-by: author <author@not-an-email.com>\n\n"
        "* feat: implemented searching gizmos by keyword\n\n* docs(parser): add new parser pattern"
        "\n\n* fix(cli)!: changed option name\n\nBREAKING CHANGE: A breaking change description\n\n"
        "Closes: #555\n\n* invalid non-conventional formatted commit\n"
    )
    changes = changes_of(raw(message))
    assert release_level(changes, TYPES) is Level.MAJOR
    assert [(c.type, c.scope, c.breaking) for c in changes] == [
        ("fix", "release-config", False),
        ("feat", None, False),
        ("docs", "parser", False),
        ("fix", "cli", True),
    ]


@pytest.mark.parametrize(
    "message",
    [
        # What git hands a commit-msg hook: its comment lines are still in the file.
        "fix: y\n\n# Please enter the commit message for your changes. Lines starting\n"
        "# with '#' will be ignored, and an empty message aborts the commit.\n#\n# On branch main\n",
        "feat: x\n\n# ------------------------ >8 ------------------------\n"
        "# Do not modify or remove the line above.\ndiff --git a/x b/x\n",
        "squash! feat: x",
        "amend! test",
    ],
)
def test_hook_shaped_messages_pass_the_linter(message: str) -> None:
    assert lint_message(message, allowed_types=TYPES) is None
