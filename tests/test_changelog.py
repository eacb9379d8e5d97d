"""Changelog rendering, incremental CHANGELOG.md updates that keep hand edits, and reading it back."""

from __future__ import annotations

import datetime

import pytest

from releasekit.changelog import (
    INSERT_MARKER,
    NEW_FILE,
    UNRELEASED_END,
    UNRELEASED_START,
    extract_section,
    render_release_section,
    render_unreleased,
    update_changelog,
    versions_in_changelog,
)
from releasekit.commits import Change
from releasekit.config import DEFAULT_TYPES
from releasekit.errors import ChangelogError
from releasekit.versioning import Level

URL = "https://git.example.com/team/lib"
DAY = datetime.date(2026, 11, 23)
TYPES = {**DEFAULT_TYPES, "build": Level.PATCH}


def change(
    sha: str,
    kind: str,
    description: str,
    scope: str | None = None,
    *,
    breaking: bool = False,
    notes: tuple[str, ...] = (),
    reverts: str | None = None,
) -> Change:
    return Change(sha * 40, kind, scope, description, breaking, notes, (), reverts)


CHANGES = [
    change("a", "feat", "add the `--json` flag", "cli"),
    change("b", "fix", "keep CRLF endings"),
    change(
        "c",
        "refactor",
        "drop the old parser",
        "core",
        breaking=True,
        notes=("Use v2.\n\nSee docs.",),
    ),
    change("d", "revert", "feat: add colour", reverts="e" * 40),
    change("f", "docs", "document the config"),
    change("1", "build", "bump click", "deps"),
    change("2", "perf", "cache tag lookups"),
    change("3", "feat", "remove the v1 API", "api", breaking=True),
    change("4", "wip", "a type nobody configured"),
]

GOLDEN_WITH_URL = f"""\
## 1.3.0 - 2026-11-23

### Breaking changes

- **core:** drop the old parser ([ccccccc]({URL}/commit/{"c" * 40}))

  Use v2.

  See docs.
- **api:** remove the v1 API ([3333333]({URL}/commit/{"3" * 40}))

### Features

- **cli:** add the `--json` flag ([aaaaaaa]({URL}/commit/{"a" * 40}))

### Bug fixes

- keep CRLF endings ([bbbbbbb]({URL}/commit/{"b" * 40}))

### Performance

- cache tag lookups ([2222222]({URL}/commit/{"2" * 40}))

### Reverts

- feat: add colour ([ddddddd]({URL}/commit/{"d" * 40}), reverts [eeeeeee]({URL}/commit/{"e" * 40}))

### Other changes

- **build(deps):** bump click ([1111111]({URL}/commit/{"1" * 40}))

**Full changelog:** [v1.2.3...v1.3.0]({URL}/compare/v1.2.3...v1.3.0)
"""

GOLDEN_WITHOUT_URL = """\
## 1.3.0 - 2026-11-23

### Breaking changes

- **core:** drop the old parser (`ccccccc`)

  Use v2.

  See docs.
- **api:** remove the v1 API (`3333333`)

### Features

- **cli:** add the `--json` flag (`aaaaaaa`)

### Bug fixes

- keep CRLF endings (`bbbbbbb`)

### Performance

- cache tag lookups (`2222222`)

### Reverts

- feat: add colour (`ddddddd`, reverts `eeeeeee`)

### Other changes

- **build(deps):** bump click (`1111111`)
"""


def section(version: str, *changes: Change, previous: str | None = None) -> str:
    return render_release_section(
        version,
        DAY,
        changes,
        tag=f"v{version}",
        previous_tag=previous,
        repository_url=None,
        types=TYPES,
    )


def unreleased(*changes: Change) -> str:
    return render_unreleased(changes, last_tag="v1.0.0", repository_url=None, types=TYPES)


# --- rendering ---------------------------------------------------------------------------------


def test_release_section_with_repository_url() -> None:
    rendered = render_release_section(
        "1.3.0",
        DAY,
        CHANGES,
        tag="v1.3.0",
        previous_tag="v1.2.3",
        repository_url=URL + ".git/",
        types=TYPES,
    )
    assert rendered == GOLDEN_WITH_URL


def test_release_section_without_repository_url() -> None:
    assert section("1.3.0", *CHANGES, previous="v1.2.3") == GOLDEN_WITHOUT_URL


def test_first_release_links_the_tag_tree() -> None:
    rendered = render_release_section(
        "0.1.0", DAY, CHANGES[:1], tag="v0.1.0", previous_tag=None, repository_url=URL, types=TYPES
    )
    assert rendered.endswith(f"**Full changelog:** [v0.1.0]({URL}/tree/v0.1.0)\n")


def test_hidden_types_and_release_without_notable_changes() -> None:
    only_hidden = [change("f", "docs", "typo"), change("9", "chore", "tidy")]
    assert section("1.0.1", *only_hidden) == "## 1.0.1 - 2026-11-23\n\nNo notable changes.\n"
    types = {**TYPES, "docs": Level.PATCH}
    rendered = render_release_section(
        "1.0.1", DAY, only_hidden, tag="v1.0.1", previous_tag=None, repository_url=None, types=types
    )
    assert "### Other changes\n\n- **docs:** typo (`fffffff`)\n" in rendered
    assert "tidy" not in rendered


def test_breaking_change_of_a_hidden_type_is_listed_once() -> None:
    rendered = section("2.0.0", change("9", "chore", "drop Python 3.10", breaking=True))
    assert rendered == (
        "## 2.0.0 - 2026-11-23\n\n### Breaking changes\n\n- drop Python 3.10 (`9999999`)\n"
    )


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("use *args and __init__ in my_func", r"use \*args and \_\_init\_\_ in my_func"),
        ("keep `a*b_c` and ``x ` y`` as code", "keep `a*b_c` and ``x ` y`` as code"),
        ("an unmatched ` backtick", r"an unmatched \` backtick"),
        ("<!-- not a comment --> <b>", r"\<!-- not a comment --\> \<b\>"),
        ("[link](http://x) ~~gone~~ back\\slash", r"\[link\](http://x) \~\~gone\~\~ back\\slash"),
        ("# not a heading", r"\# not a heading"),
        ("- not a nested list", r"\- not a nested list"),
        ("1. not an ordered list", r"1\. not an ordered list"),
        ("two\nlines", "two lines"),
    ],
)
def test_descriptions_are_escaped(description: str, expected: str) -> None:
    rendered = section("1.0.0", change("a", "fix", description))
    assert f"\n- {expected} (`aaaaaaa`)\n" in rendered


def test_breaking_notes_cannot_open_a_comment_or_a_heading() -> None:
    note = "## 9.9.9 fake\n<!-- releasekit: unreleased end -->"
    rendered = section("2.0.0", change("a", "feat", "x", breaking=True, notes=(note,)))
    assert "\n  ## 9.9.9 fake\n  &lt;!-- releasekit: unreleased end -->\n" in rendered
    assert versions_in_changelog(rendered) == {"2.0.0"}


def test_unreleased_rendering() -> None:
    rendered = render_unreleased(CHANGES[:2], last_tag="v1.2.3", repository_url=URL, types=TYPES)
    assert rendered == (
        "## Unreleased\n\n### Features\n\n"
        f"- **cli:** add the `--json` flag ([aaaaaaa]({URL}/commit/{'a' * 40}))\n\n"
        f"### Bug fixes\n\n- keep CRLF endings ([bbbbbbb]({URL}/commit/{'b' * 40}))\n\n"
        f"**Full changelog:** [v1.2.3...HEAD]({URL}/compare/v1.2.3...HEAD)\n"
    )
    docs_only = [change("f", "docs", "x")]
    assert render_unreleased(docs_only, last_tag="v1.2.3", repository_url=URL, types=TYPES) == (
        "## Unreleased\n\nNothing to release since `v1.2.3`.\n"
    )
    assert render_unreleased([], last_tag=None, repository_url=None, types=TYPES) == (
        "## Unreleased\n\nNothing to release yet.\n"
    )


# --- updating CHANGELOG.md ---------------------------------------------------------------------

S100 = section("1.0.0", change("a", "feat", "first"))
S110 = section("1.1.0", change("b", "feat", "second"), previous="v1.0.0")
S120 = section("1.2.0", change("c", "fix", "third"), previous="v1.1.0")

HAND_WRITTEN = """\
# Changelog

Written by people. Odd  spacing,	tabs and trailing spaces stay.{trailing}

<!-- releasekit: insert releases below -->

## 0.9.0 - 2025-01-01

Hand-written notes about 0.9.0, *with* [links][docs].

[docs]: https://example.com/docs
""".format(trailing="   ")


def block(contents: str) -> str:
    return f"{UNRELEASED_START}\n{contents}{UNRELEASED_END}\n"


@pytest.mark.parametrize("text", [None, "", "\n  \n"])
def test_new_file(text: str | None) -> None:
    assert update_changelog(text, [], None) == NEW_FILE
    assert update_changelog(text, [S110, S100], unreleased()) == (
        f"{NEW_FILE}\n{block(unreleased())}\n{S110}\n{S100}"
    )


def test_insert_at_marker_keeps_everything_else() -> None:
    head, tail = HAND_WRITTEN.split("## 0.9.0")
    assert update_changelog(HAND_WRITTEN, [S110, S100], None) == (
        f"{head}{S110}\n{S100}\n## 0.9.0{tail}"
    )


def test_marker_without_blank_lines_or_final_newline() -> None:
    text = f"# Log\n{INSERT_MARKER}"
    assert update_changelog(text, [S100], None) == f"{text}\n\n{S100}"
    text = f"# Log\n{INSERT_MARKER}\n## 0.1.0\n"
    assert update_changelog(text, [S100], None) == f"# Log\n{INSERT_MARKER}\n\n{S100}\n## 0.1.0\n"


@pytest.mark.parametrize(
    ("heading", "version"),
    [
        ("## 1.2.3", "1.2.3"),
        ("## [1.2.3]", "1.2.3"),
        ("## v1.2.3", "1.2.3"),
        ("## 1.2.3 (2020-01-01)", "1.2.3"),
        ("## [1.2.3] - 2020-01-01", "1.2.3"),
        ("## [1.2.3](https://x.test/compare/v1.2.2...v1.2.3) (2020-01-01)", "1.2.3"),
        ("## v1.3.0-rc.1 - 2020-01-01", "1.3.0rc1"),
        ("## 1.3.0rc1", "1.3.0rc1"),
        ("## 1.3.0.post2", "1.3.0.post2"),
        ("## 2024.10", "2024.10.0"),
        ("### 1.2.3", "1.2.3"),
        ("## 1.2.3+build.7", "1.2.3+build.7"),  # not PEP 440 releasekit can use: kept raw
    ],
)
def test_insert_above_the_first_release_heading(heading: str, version: str) -> None:
    text = f"# Changes\n\nIntro.\n\n## Unreleased\n\nold notes\n\n{heading}\n\n- a thing\n"
    expected = text.replace(heading, f"{S110}\n{heading}")
    assert update_changelog(text, [S110], None) == expected
    assert versions_in_changelog(text) == {version}


@pytest.mark.parametrize(
    "text",
    [
        "Nothing yet, and no title.\n",
        "```\n## 1.2.3\n<!-- releasekit: insert releases below -->\n```\n",
        "  ## 1.2.3 indented\n\n#### 1.2.3 too deep\n",
        "Changelog\n=========\n\n1.0.0\n-----\n",
    ],
)
def test_refuses_a_file_with_no_place_to_insert(text: str) -> None:
    with pytest.raises(ChangelogError) as raised:
        update_changelog(text, [S100], None)
    assert "no place to insert releases" in raised.value.message
    assert "no `# Title` line, no release heading such as `## 1.2.3`" in raised.value.message
    assert raised.value.hint is not None and f"`{INSERT_MARKER}`" in raised.value.hint
    assert versions_in_changelog(text) == set()
    # Nothing to insert needs no place: the file comes back exactly as it was.
    assert update_changelog(text, [], None) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# Changelog\n", "# Changelog\n\n{s}"),
        ("# Changelog", "# Changelog\n\n{s}"),
        ("# Changelog\n\nIntro  \nmore.\n", "# Changelog\n\nIntro  \nmore.\n\n{s}"),
        ("# Log\n\nIntro.\n\n## 2024 plans\n\nx\n", "# Log\n\nIntro.\n\n{s}\n## 2024 plans\n\nx\n"),
        ("# Log\n\n## [Unreleased]\n\n- a\n", "# Log\n\n## [Unreleased]\n\n- a\n\n{s}"),
        (
            "# Log\n\n## Unreleased\n\n- a\n\n[x]: https://x.test\n",
            "# Log\n\n## Unreleased\n\n- a\n\n{s}\n[x]: https://x.test\n",
        ),
        ("# Log\r\n\r\nIntro.\r\n", "# Log\r\n\r\nIntro.\r\n\r\n{crlf}"),
    ],
)
def test_title_block_and_unreleased_section_need_no_marker(text: str, expected: str) -> None:
    assert update_changelog(text, [S100], None) == expected.format(
        s=S100, crlf=S100.replace("\n", "\r\n")
    )


def test_sections_go_below_the_managed_block() -> None:
    head, tail = HAND_WRITTEN.split("## 0.9.0")
    pending = unreleased(change("b", "feat", "second"))
    first = update_changelog(HAND_WRITTEN, [S100], pending)
    assert first == f"{head}{block(pending)}\n{S100}\n## 0.9.0{tail}"
    second = update_changelog(first, [S110], unreleased())
    assert second == f"{head}{block(unreleased())}\n{S110}\n{S100}\n## 0.9.0{tail}"


def test_hand_edits_survive_two_further_updates() -> None:
    run1 = update_changelog(HAND_WRITTEN, [S100], unreleased(change("b", "feat", "second")))
    # A person edits the title, the inserted 1.0.0 section and the old 0.9.0 section.
    edited = (
        run1.replace("# Changelog", "# Our changelog \t")
        .replace("- first (`aaaaaaa`)", "- first (`aaaaaaa`), thanks @someone!\n\n  Extra words.")
        .replace("Hand-written notes", "Hand-edited notes")
    )
    start, end = (
        edited.index(UNRELEASED_START),
        edited.index(UNRELEASED_END) + len(UNRELEASED_END) + 1,
    )
    before, after = edited[:start], edited[end:]
    run2 = update_changelog(edited, [S110], unreleased(change("c", "fix", "third")))
    assert run2 == f"{before}{block(unreleased(change('c', 'fix', 'third')))}\n{S110}{after}"
    run3 = update_changelog(run2, [S120], unreleased())
    assert run3 == f"{before}{block(unreleased())}\n{S120}\n{S110}{after}"
    assert versions_in_changelog(run3) == {"0.9.0", "1.0.0", "1.1.0", "1.2.0"}


def test_unreleased_block_is_replaced_never_stacked() -> None:
    text = HAND_WRITTEN
    contents = [unreleased(change(str(n), "fix", f"fix {n}")) for n in range(3)]
    for current in contents:
        text = update_changelog(text, [], current)
        assert text.count(UNRELEASED_START) == text.count(UNRELEASED_END) == 1
        assert text.count("## Unreleased") == 1
        assert block(current) in text
    # Removing the block gives back the file exactly: no blank lines pile up.
    assert update_changelog(text, [], None) == HAND_WRITTEN
    assert update_changelog("# Log\n\n" + block("x\n"), [], None) == "# Log\n"


def test_a_pasted_second_block_is_dropped() -> None:
    text = update_changelog(HAND_WRITTEN, [S100], unreleased())
    pasted = text + "\n" + block("stale copy\n")
    assert update_changelog(pasted, [], unreleased()) == text
    assert (
        update_changelog(pasted + "\nMore words.\n", [], unreleased()) == text + "\nMore words.\n"
    )


@pytest.mark.parametrize(
    ("markers", "problem"),
    [
        (
            [UNRELEASED_START],
            "block is broken: the changelog opens it on line 3 and never closes it",
        ),
        (
            [UNRELEASED_END],
            "block is broken: the changelog closes it on line 3 without opening it first",
        ),
        (
            [UNRELEASED_START, UNRELEASED_START, UNRELEASED_END],
            "block is broken: the changelog opens it on line 3 and again on line 4",
        ),
    ],
)
def test_unbalanced_markers_are_refused(markers: list[str], problem: str) -> None:
    text = "# Changelog\n\n" + "\n".join(markers) + "\n\n## 1.0.0\n"
    for sections, contents in (([S110], None), ([], unreleased()), ([], None)):
        with pytest.raises(ChangelogError) as raised:
            update_changelog(text, sections, contents)
        assert problem in raised.value.message
        assert raised.value.hint is not None and UNRELEASED_START in raised.value.hint


def test_crlf_files_stay_crlf() -> None:
    crlf = HAND_WRITTEN.replace("\n", "\r\n")
    run1 = update_changelog(crlf, [S100], unreleased(CHANGES[0]))
    run2 = update_changelog(run1, [S110], unreleased())
    assert "\n" not in run2.replace("\r\n", "")
    assert run2.replace("\r\n", "\n") == update_changelog(
        update_changelog(HAND_WRITTEN, [S100], unreleased(CHANGES[0])), [S110], unreleased()
    )
    assert update_changelog(run2, [], None) == update_changelog(crlf, [S110, S100], None)


def test_bytes_only_lf_in_a_crlf_file_are_kept() -> None:
    mixed = "# Log\r\n\r\nline with LF\n" + INSERT_MARKER + "\r\n"
    assert update_changelog(mixed, [S100], None) == mixed + "\r\n" + S100.replace("\n", "\r\n")


# --- reading it back ---------------------------------------------------------------------------

READ = """\
# Changelog

<!-- releasekit: unreleased start -->
## Unreleased

Nothing to release since `v1.3.0rc1`.
<!-- releasekit: unreleased end -->

## [v1.3.0-rc.1] - 2026-11-20

### Features

- rc notes

```text
## 1.0.0 inside a code block
```

## 1.2.0 (2026-10-01)

- [one]

[one]: https://example.com/one

# Appendix

## 1.1.0

Last section.

[1.1.0]: https://example.com/1.1.0
[1.2.0]: https://example.com/1.2.0
"""


def test_extract_section() -> None:
    expected = "### Features\n\n- rc notes\n\n```text\n## 1.0.0 inside a code block\n```\n"
    assert extract_section(READ, "1.3.0rc1") == expected
    assert extract_section(READ, "v1.3.0-rc.1") == expected
    # Ends at the next level-1 heading; link definitions inside the file stay with their section.
    assert extract_section(READ, "1.2.0") == "- [one]\n\n[one]: https://example.com/one\n"
    assert extract_section(READ, "1.1.0") == "Last section.\n"
    assert extract_section(READ, "1.0.0") is None
    assert extract_section(READ, "9.9.9") is None
    assert extract_section("## 1.0.0\n\n## 0.9.0\n", "1.0.0") == ""
    assert extract_section(READ.replace("\n", "\r\n"), "1.1.0") == "Last section.\n"


def test_extract_section_stops_at_the_managed_block() -> None:
    text = f"{INSERT_MARKER}\n## 1.0.0\n\nbody\n\n{UNRELEASED_START}\n## Unreleased\n{UNRELEASED_END}\n"
    assert extract_section(text, "1.0.0") == "body\n"
    rendered = update_changelog(None, [S110, S100], unreleased())
    assert extract_section(rendered, "1.1.0") == S110.split("\n", 2)[2]


def test_versions_in_changelog() -> None:
    assert versions_in_changelog(READ) == {"1.3.0rc1", "1.2.0", "1.1.0"}
    assert versions_in_changelog("") == set()
