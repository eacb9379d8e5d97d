"""Defects found by running releasekit on real projects' histories, each reduced to a small repo.

The source of each is in its test's docstring (repository, the commit checked out, the command).
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from releasekit.changelog import update_changelog
from releasekit.cli import cli
from tests.conftest import GitRepo

# commitizen's CHANGELOG.md: no title, the newest release heading on line 1.
COMMITIZEN_SHAPE = "## v0.1.0 (2026-01-01)\n\n### Fix\n\n- hand-written entry\n"


def rk(repo: GitRepo, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-C", str(repo.path), *args], catch_exceptions=False)


def test_the_managed_block_at_the_top_of_a_file_comes_out_without_a_stray_blank_line() -> None:
    with_block = update_changelog(COMMITIZEN_SHAPE, [], "## Unreleased\n\n- x\n")
    assert with_block.startswith("<!-- releasekit: unreleased start -->\n")

    assert update_changelog(with_block, [], None) == COMMITIZEN_SHAPE


def test_changelog_then_unreleased_is_folded_into_the_release(project: GitRepo) -> None:
    """commitizen-tools/commitizen at v4.17.0^: `releasekit changelog`, then
    `releasekit changelog --unreleased`, then `release --dry-run` refused with "CHANGELOG.md has
    uncommitted changes that releasekit did not write": removing the managed block from the top
    of the file left its blank separator line behind."""
    project.commit("docs: changelog", {"CHANGELOG.md": COMMITIZEN_SHAPE})
    project.tag("v0.1.0")
    project.commit("fix: a fix")
    project.tag("v0.1.1")
    project.commit("feat: a feature")
    for args in (["changelog"], ["changelog", "--unreleased"]):
        assert rk(project, *args).exit_code == 0

    result = rk(project, "release")

    assert result.exit_code == 0, result.output
    assert "folded in" in result.output
    text = (project.path / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("## v0.2.0 (")
    assert "\n\n## v0.1.1 (" in text
    assert text.endswith(COMMITIZEN_SHAPE)
    assert "releasekit: unreleased" not in text
    assert project.git("status", "--porcelain") == ""


RST = "Changelog\n=========\n\n1.0.0 (2026-01-01)\n------------------\n\n- hand-written\n"


def test_a_restructuredtext_changelog_is_refused_before_anything_is_written(
    project: GitRepo,
) -> None:
    """pypa/build at 1.5.0^ with `changelog_file = "CHANGELOG.rst"` (python-semantic-release keeps
    one too): `release --dry-run` refused with a hint to add an HTML comment marker, which would
    have put Markdown into reStructuredText."""
    pyproject = (project.path / "pyproject.toml").read_text(encoding="utf-8")
    project.commit(
        "docs: an rst changelog",
        {
            "CHANGELOG.rst": RST,
            "pyproject.toml": pyproject + '\n[tool.releasekit]\nchangelog_file = "CHANGELOG.rst"\n',
        },
    )
    project.tag("v0.1.0")
    project.commit("feat: a feature")
    before = project.snapshot()

    assert rk(project, "version", "--print").output == "0.2.0\n"
    for args in (
        ["release"],
        ["release", "--dry-run"],
        ["changelog"],
        ["changelog", "--unreleased"],
    ):
        result = rk(project, *args)
        assert result.exit_code == 1
        assert "CHANGELOG.rst is not Markdown" in result.output
        assert 'changelog_file = "CHANGELOG.md"' in result.output
        assert project.snapshot() == before


def test_check_range_with_a_revision_the_clone_lacks_says_what_to_fetch(project: GitRepo) -> None:
    """The README's `releasekit check --range origin/main..HEAD` in a repository without that
    ref (a new user's local repo, a CI checkout without the base branch) printed git's own
    "fatal: bad revision" with no hint."""
    before = project.snapshot()

    result = rk(project, "check", "--range", "origin/main..HEAD")

    assert result.exit_code == 1
    assert "--range origin/main..HEAD: this repository has no such revision" in result.output
    assert "git fetch origin main" in result.output
    assert project.snapshot() == before


RELEASE_PLEASE = (
    "# Changelog\n\n"
    "## [0.1.0](https://github.com/o/lib/compare/v0.0.9...v0.1.0) (2026-01-01)\n\n"
    "### Features\n\n* hand-written ([abc1234](https://github.com/o/lib/commit/abc1234))\n"
)
GIT_CLIFF = (
    "[![animation](https://example.com/anim.gif)](https://git-cliff.org)\n\n"
    "## [0.1.0](https://github.com/o/lib/compare/v0.0.9..v0.1.0) - 2026-01-01\n\n"
    "### ⛰️  Features\n\n- *(args)* Hand-written\n"
)


def _project_with(project: GitRepo, changelog: str, url: str | None) -> None:
    pyproject = (project.path / "pyproject.toml").read_text(encoding="utf-8")
    if url:
        pyproject += f'\n[project.urls]\nRepository = "{url}"\n'
    project.commit("docs: changelog", {"CHANGELOG.md": changelog, "pyproject.toml": pyproject})
    project.tag("v0.1.0")


@pytest.mark.parametrize(
    ("changelog", "rest"), [(RELEASE_PLEASE, " ({date})"), (GIT_CLIFF, " - {date}")]
)
def test_linked_headings_are_followed_with_the_release_compare_link(
    project: GitRepo, changelog: str, rest: str
) -> None:
    """orhun/git-cliff at v2.13.1^ (`## [2.13.0](.../compare/v2.12.0..v2.13.0) - date`), like
    release-please's `## [1.2.0](.../compare/v1.1.0...v1.2.0) (date)`: the new section came out
    in the default `## 2.13.1 - date` style instead of the file's own."""
    _project_with(project, changelog, "https://github.com/o/lib")
    for version, previous in (("0.2.0", "v0.1.0"), ("0.3.0", "v0.2.0")):
        project.commit(f"feat: towards {version}")
        assert rk(project, "release").exit_code == 0
        text = (project.path / "CHANGELOG.md").read_text(encoding="utf-8")
        date = project.git("log", "-1", "--format=%cs")
        heading = f"## [{version}](https://github.com/o/lib/compare/{previous}...v{version})"
        assert f"\n{heading}{rest.replace('{date}', date)}\n" in text
        assert text.endswith(changelog[changelog.index("## [0.1.0]") :])
        assert text.startswith(changelog[: changelog.index("## [0.1.0]")])


def test_a_linked_heading_without_a_repository_url_becomes_a_plain_one(project: GitRepo) -> None:
    _project_with(project, RELEASE_PLEASE, None)
    project.commit("fix: a fix")

    assert rk(project, "release").exit_code == 0

    text = (project.path / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"\n## 0.1.1 ({project.git('log', '-1', '--format=%cs')})\n" in text
    assert "[0.1.1]" not in text
