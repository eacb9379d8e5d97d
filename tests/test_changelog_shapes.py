"""Changelogs as people keep them, through two real releases each (real git repositories).

The fixtures in tests/changelogs/ are the shapes found in the wild: a bare title, a title with an
intro, Keep a Changelog, python-semantic-release's `## v1.2.0 (date)`, commitizen's
`## 1.2.0 (date)` (no title at all), and a file with the next version's notes written ahead.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from tests.conftest import GitRepo
from tests.test_release_cli import rk

FIXTURES = Path(__file__).parent / "changelogs"
DATE = r"\d{4}-\d{2}-\d{2}"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def adopt(project: GitRepo, name: str, *, released: bool) -> str:
    """Commit the fixture as CHANGELOG.md (tagging 0.1.0 if the file says it was released)."""
    text = fixture(name)
    project.commit("docs: adopt our changelog", {"CHANGELOG.md": text})
    if released:
        project.tag("v0.1.0")
    return text


def changelog(project: GitRepo) -> str:
    return (project.path / "CHANGELOG.md").read_text(encoding="utf-8")


def tag_notes(project: GitRepo, tag: str) -> str:
    message = project.git("tag", "-l", "--format=%(contents)", tag)
    return message.split("\n", 2)[2] + "\n"  # "Release X", blank line, then the notes


def release(project: GitRepo, *args: str) -> str:
    result = rk(project, "release", *args)
    assert result.exit_code == 0, result.output
    assert project.git("status", "--porcelain") == ""
    return result.stdout


def version_answers(project: GitRepo, expected: str) -> None:
    """Item 1: the version commands never read the changelog, whatever it holds."""
    result = rk(project, "version", "--print")
    assert (result.exit_code, result.stdout) == (0, f"{expected}\n"), result.output
    assert rk(project, "version", "--current").exit_code == 0
    assert rk(project, "version").exit_code == 0
    assert rk(project, "bump", "patch", "--dry-run").exit_code == 0
    assert rk(project, "check", "-m", "feat: fine").exit_code == 0


def without(text: str, section: str) -> str:
    """`text` with one inserted `section` taken out again, with the blank line it brought."""
    for piece in (section + "\n", "\n" + section):
        if piece in text:
            return text.replace(piece, "", 1)
    raise AssertionError(f"section not found:\n{section}\nin:\n{text}")


@pytest.mark.parametrize(
    ("name", "released", "first", "heading"),
    [
        ("title_only.md", False, "0.1.0", f"## 0.1.0 - {DATE}"),
        ("title_intro.md", False, "0.1.0", f"## 0.1.0 - {DATE}"),
        ("semantic_release.md", True, "0.2.0", rf"## v0\.2\.0 \({DATE}\)"),
        ("commitizen.md", True, "0.2.0", rf"## 0\.2\.0 \({DATE}\)"),
    ],
)
def test_two_releases_keep_every_hand_written_byte(
    project: GitRepo, name: str, released: bool, first: str, heading: str
) -> None:
    original = adopt(project, name, released=released)
    project.commit("feat(api): add search")
    version_answers(project, first)
    release(project)
    text = changelog(project)
    assert re.search(f"^{heading}$", text, re.MULTILINE), text
    assert "add search" in text
    project.commit("fix: handle spaces")
    second = "0.1.1" if first == "0.1.0" else "0.2.1"
    version_answers(project, second)
    release(project)
    text = changelog(project)
    assert text.index(second) < text.index("add search")  # newest first
    first_section, second_section = (
        tag_notes(project, f"v{first}"),
        tag_notes(project, f"v{second}"),
    )
    assert without(without(text, second_section), first_section) == original
    if name.startswith("title"):
        assert text.startswith(original + "\n## ")  # below the title block, no marker needed


def test_keep_a_changelog_moves_unreleased_entries_and_links(project: GitRepo) -> None:
    original = adopt(project, "keep_a_changelog.md", released=True)
    project.commit("feat(api): add search")
    version_answers(project, "0.2.0")
    release(project)
    day = today()
    hand_written = original.split("## [Unreleased]\n\n", 1)[1].split("\n\n## [0.1.0]", 1)[0]
    section = (
        f"## [0.2.0] - {day}\n\n### Features\n\n- **api:** add search (`{project.git('rev-parse', '--short=7', 'HEAD~1')}`)\n\n"
        f"{hand_written}\n"
    )
    expected = (
        original.replace(f"\n{hand_written}\n", "", 1)
        .replace("## [Unreleased]\n", f"## [Unreleased]\n\n{section}", 1)
        .replace(
            "[unreleased]: https://github.com/example/example-lib/compare/v0.1.0...HEAD\n",
            "[unreleased]: https://github.com/example/example-lib/compare/v0.2.0...HEAD\n"
            "[0.2.0]: https://github.com/example/example-lib/compare/v0.1.0...v0.2.0\n",
        )
    )
    assert changelog(project) == expected
    # Second release: the Unreleased heading is empty now; nothing moves, links go on.
    project.commit("fix: handle spaces")
    version_answers(project, "0.2.1")
    release(project)
    text = changelog(project)
    assert text.count("## [Unreleased]") == 1
    assert "## [Unreleased]\n\n## [0.2.1] - " in text
    assert text.endswith(
        "[unreleased]: https://github.com/example/example-lib/compare/v0.2.1...HEAD\n"
        "[0.2.1]: https://github.com/example/example-lib/compare/v0.2.0...v0.2.1\n"
        "[0.2.0]: https://github.com/example/example-lib/compare/v0.1.0...v0.2.0\n"
        "[0.1.0]: https://github.com/example/example-lib/releases/tag/v0.1.0\n"
    )
    assert without(text, tag_notes(project, "v0.2.1")) == expected.replace(
        "[unreleased]: https://github.com/example/example-lib/compare/v0.2.0...HEAD\n",
        "[unreleased]: https://github.com/example/example-lib/compare/v0.2.1...HEAD\n"
        "[0.2.1]: https://github.com/example/example-lib/compare/v0.2.0...v0.2.1\n",
    )


def test_a_section_written_ahead_is_kept_not_duplicated(project: GitRepo) -> None:
    original = adopt(project, "prewritten.md", released=True)
    project.commit("feat(api): add search")
    version_answers(project, "0.2.0")
    dry = rk(project, "release", "--dry-run")
    assert dry.exit_code == 0, dry.output
    note = "CHANGELOG.md already has a section for 0.2.0: kept as written"
    assert f"changelog: {note}" in dry.stdout
    assert "CHANGELOG.md" not in dry.stdout.split("files:", 1)[1].split("changelog:", 1)[0]
    out = release(project)
    assert out.count(note) == 1
    assert changelog(project) == original
    assert project.git("show", "--stat", "--format=", "HEAD").count("CHANGELOG.md") == 0
    assert "The **search** feature" in tag_notes(project, "v0.2.0")  # the kept notes are the tag's
    project.commit("fix: handle spaces")
    version_answers(project, "0.2.1")
    release(project)
    text = changelog(project)
    assert re.search(f"^## 0\\.2\\.1 - {DATE}$", text, re.MULTILINE)
    assert without(text, tag_notes(project, "v0.2.1")) == original


@pytest.mark.parametrize(
    "text",
    [
        "This file is not a changelog at all.\nJust prose, no headings.\n",
        "Changelog\n=========\n\n1.0.0 (2020-01-01)\n------------------\n\n* reStructuredText\n",
        "\x00\x01 binary-ish garbage \ufffd\n",
    ],
)
def test_a_foreign_changelog_never_blocks_the_version(project: GitRepo, text: str) -> None:
    project.commit("docs: a changelog we cannot place releases in", {"CHANGELOG.md": text})
    project.commit("feat: add search")
    version_answers(project, "0.1.0")
    before = project.snapshot()
    for args in (("release",), ("release", "--dry-run")):
        result = rk(project, *args)
        assert result.exit_code == 1, result.output
        assert "CHANGELOG.md: the changelog has no place to insert releases" in result.stderr
        assert "hint: Start the file with a title line such as `# Changelog`" in result.stderr
        assert project.snapshot() == before


def test_changelog_command_follows_the_file_and_never_adds_unreleased(project: GitRepo) -> None:
    original = adopt(project, "semantic_release.md", released=True)
    project.commit("feat: two")
    project.tag("v0.2.0")  # tagged by hand: the file lacks its section
    project.commit("fix: three")
    result = rk(project, "changelog")
    assert result.exit_code == 0, result.output
    text = changelog(project)
    assert "Unreleased" not in text and "three" not in text
    assert re.search(rf"^## v0\.2\.0 \({DATE}\)$", text, re.MULTILINE)
    assert text.endswith(original.split("<!-- version list -->\n\n", 1)[1])
    assert rk(project, "changelog").stdout == "CHANGELOG.md is up to date\n"
    # --unreleased adds the managed block; the release after it does not refuse the dirty file.
    assert rk(project, "changelog", "--unreleased").exit_code == 0
    assert "three" in changelog(project)
    out = release(project)
    assert "uncommitted output of `releasekit changelog` folded in" in out
    final = changelog(project)
    assert "Unreleased" not in final and re.search(rf"^## v0\.2\.1 \({DATE}\)$", final, re.M)
    assert project.git("show", "--format=", "--name-only", "HEAD").count("CHANGELOG.md") == 1


def test_an_uncommitted_hand_edit_is_still_refused(project: GitRepo) -> None:
    adopt(project, "title_intro.md", released=False)
    project.commit("feat: add search")
    project.write("CHANGELOG.md", fixture("title_intro.md") + "\nA thought not yet committed.\n")
    before = project.snapshot()
    result = rk(project, "release")
    assert result.exit_code == 1
    assert "CHANGELOG.md has uncommitted changes that releasekit did not write" in result.stderr
    assert "hint: commit them (git commit CHANGELOG.md)" in result.stderr
    assert project.snapshot() == before
    version_answers(project, "0.1.0")


def test_a_changelog_template_renders_the_section(project: GitRepo) -> None:
    template = (
        "{{ heading }}\n\n"
        "Released {{ date }} after {{ previous_version or 'nothing' }} ({{ previous_tag }}).\n"
        "{% for group in groups %}{% for e in group.entries %}"
        "* [{{ group.title }}] {{ e.type }}/{{ e.scope }}: {{ e.description }} {{ e.short_sha }}"
        "{% if e.breaking %} BREAKING: {{ e.breaking_notes | join(' ') }}{% endif %}\n"
        "{% endfor %}{% endfor %}"
    )
    pyproject = (project.path / "pyproject.toml").read_text()
    pyproject += '\n[tool.releasekit]\nchangelog_template = "docs/section.md.j2"\n'
    project.commit(
        "docs: our own changelog template",
        {"pyproject.toml": pyproject, "docs/section.md.j2": template, "CHANGELOG.md": "# Log\n"},
    )
    project.tag("v0.1.0")
    project.commit("feat(api)!: drop v1\n\nBREAKING CHANGE: use the v2 client")
    release(project)
    text = changelog(project)
    assert f"## 1.0.0 - {today()}\n\nReleased {today()} after 0.1.0 (v0.1.0).\n" in text
    assert "* [Breaking changes] feat/api: drop v1 " in text
    assert "BREAKING: use the v2 client" in text


@pytest.mark.parametrize(
    ("template", "where", "what"),
    [
        ("{{ heading }}\n\n{{ verison }}\n", "docs/section.md.j2:3", "'verison' is undefined"),
        (
            "{{ heading }}\n{% for g in groups %}\n{{ g.nope }}\n{% endfor %}",
            ":3",
            "no attribute 'nope'",
        ),
        ("{{ heading }}\n\n{% if %}\n", "docs/section.md.j2:3", "Expected an expression"),
        ("{{ ''.__class__.__mro__ }}\n", "docs/section.md.j2:1", "unsafe"),
    ],
)
def test_a_template_error_names_file_line_and_variable(
    project: GitRepo, template: str, where: str, what: str
) -> None:
    pyproject = (project.path / "pyproject.toml").read_text()
    pyproject += '\n[tool.releasekit]\nchangelog_template = "docs/section.md.j2"\n'
    project.commit(
        "docs: a broken template",
        {"pyproject.toml": pyproject, "docs/section.md.j2": template},
    )
    project.commit("feat: add search")
    version_answers(project, "0.1.0")
    before = project.snapshot()
    result = rk(project, "release")
    assert result.exit_code == 1, result.output
    assert "changelog template" in result.stderr and where in result.stderr, result.stderr
    assert what in result.stderr, result.stderr
    assert project.snapshot() == before


def test_changelog_without_tags_or_file_creates_nothing(project: GitRepo) -> None:
    project.commit("feat: add search")
    result = rk(project, "changelog")
    assert (result.exit_code, result.stdout) == (0, "CHANGELOG.md is up to date\n")
    assert not (project.path / "CHANGELOG.md").exists()


def test_unreleased_block_sits_inside_a_hand_kept_unreleased_section(project: GitRepo) -> None:
    original = adopt(project, "keep_a_changelog.md", released=True)
    project.commit("feat(api): add search")
    assert rk(project, "changelog", "--unreleased").exit_code == 0
    text = changelog(project)
    assert text.count("## Unreleased") + text.count("## [Unreleased]") == 1
    assert "Deprecated" in text.split("<!-- releasekit: unreleased start -->\n### Features")[0]
    out = release(project)
    assert "folded in" in out
    final = changelog(project)
    assert "releasekit: unreleased" not in final
    assert final.index("### Features") < final.index("### Added") < final.index("## [0.1.0]")
    assert final.split("## [0.1.0]", 1)[1] == original.split("## [0.1.0]", 1)[1].replace(
        "compare/v0.1.0...HEAD\n",
        "compare/v0.2.0...HEAD\n[0.2.0]: https://github.com/example/example-lib/compare/v0.1.0...v0.2.0\n",
    )


def test_changelog_command_keeps_keep_a_changelog_links(project: GitRepo) -> None:
    original = adopt(project, "keep_a_changelog.md", released=True)
    project.commit("feat: two")
    project.tag("v0.2.0")  # tagged by hand
    assert rk(project, "changelog").exit_code == 0
    text = changelog(project)
    assert re.search(rf"^## \[0\.2\.0\] - {DATE}$", text, re.MULTILINE)
    assert "- A `--json` flag for every command" in text.split("## [0.2.0]")[0]  # not moved
    assert text.endswith(
        "[unreleased]: https://github.com/example/example-lib/compare/v0.2.0...HEAD\n"
        "[0.2.0]: https://github.com/example/example-lib/compare/v0.1.0...v0.2.0\n"
        "[0.1.0]: https://github.com/example/example-lib/releases/tag/v0.1.0\n"
    )
    assert text.split("## [0.1.0]", 1)[0].startswith(original.split("## [0.1.0]", 1)[0])


def test_a_final_release_follows_the_last_final_not_its_prerelease(project: GitRepo) -> None:
    pyproject = (project.path / "pyproject.toml").read_text()
    pyproject += '\n[tool.releasekit]\nchangelog_template = "section.md.j2"\n'
    template = "{{ heading }}\n\nafter {{ previous_version }} ({{ previous_tag }})\n"
    project.commit("docs: template", {"pyproject.toml": pyproject, "section.md.j2": template})
    project.tag("v0.1.0")
    project.commit("feat: search")
    release(project, "--prerelease-type", "rc")
    assert "after 0.1.0 (v0.1.0)" in tag_notes(project, "v0.2.0rc1")
    project.commit("fix: spaces")
    release(project)
    assert "after 0.1.0 (v0.1.0)" in tag_notes(project, "v0.2.0")
    assert changelog(project).index("## 0.2.0 -") < changelog(project).index("## 0.2.0rc1 -")


def test_a_changelog_that_is_not_utf8_is_refused_by_release_only(project: GitRepo) -> None:
    (project.path / "CHANGELOG.md").write_bytes(b"# Changelog\n\n\xe9t\xe9 2024\n")
    project.commit("docs: a latin-1 changelog")
    project.commit("feat: add search")
    version_answers(project, "0.1.0")
    before = project.snapshot()
    for args in (("release",), ("changelog",), ("changelog", "--unreleased")):
        result = rk(project, *args)
        assert result.exit_code == 1, result.output
        assert "CHANGELOG.md is not UTF-8 text (byte 13 cannot be decoded)" in result.stderr
        assert "hint: convert it to UTF-8" in result.stderr
        assert project.snapshot() == before
