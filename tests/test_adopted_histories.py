"""Defects found by running releasekit on real projects' histories, each reduced to a small repo.

The source of each is in its test's docstring (repository, the commit checked out, the command).
"""

from __future__ import annotations

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
