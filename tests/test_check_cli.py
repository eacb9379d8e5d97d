"""`releasekit check` on real repositories: the decided linter rules, refusals change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from releasekit.cli import cli
from tests.conftest import GitRepo


def rk(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-C", str(path), *args], catch_exceptions=False)


def refused(repo: GitRepo, reason: str, *args: str) -> None:
    before = repo.snapshot()
    result = rk(repo.path, "check", *args)
    assert result.exit_code == 1, result.output
    assert reason in result.stderr
    assert "1 commit message(s) are not Conventional Commits" in result.stderr
    assert repo.snapshot() == before


def test_unknown_type_is_refused_inside_a_project_with_the_way_to_allow_it(
    project: GitRepo,
) -> None:
    refused(
        project,
        "type 'mytype' is not one of this project's commit types (build, chore, ci, docs, feat,"
        " fix, perf, refactor, revert, style, test); use one of them, or allow it with mytype ="
        ' "none" under [tool.releasekit.types]',
        "--message",
        "mytype: x",
    )
    pyproject = project.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.releasekit.types]\nmytype = "none"\n')
    project.commit("chore: allow mytype")
    assert rk(project.path, "check", "--message", "mytype: x").exit_code == 0
    # and the version rule gives it the configured level: nothing
    project.tag("v0.1.0")
    project.commit("mytype: x")
    assert rk(project.path, "version", "--print").stdout == ""


def test_any_type_word_outside_a_project(tmp_path: Path) -> None:
    result = rk(tmp_path, "check", "--message", "mytype: x")
    assert result.exit_code == 0, result.output


def test_a_broken_config_is_an_error_not_a_laxer_check(project: GitRepo) -> None:
    pyproject = project.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.releasekit.types]\nmytype = "huge"\n')
    before = project.snapshot()
    result = rk(project.path, "check", "--message", "mytype: x")
    assert result.exit_code == 1 and "types.mytype = 'huge' is not a level" in result.stderr
    assert project.snapshot() == before


@pytest.mark.parametrize(
    ("message", "reason", "next_version"),
    [
        (
            "feat(api): x\nno blank line\n",
            "the header 'feat(api): x' must be followed by an empty line before the body",
            "0.2.0",
        ),
        (
            "fix: x\n\nBREAKING CHANGE:\n",
            "the BREAKING CHANGE footer is empty; say what breaks and how to migrate",
            "1.0.0",
        ),
    ],
)
def test_linter_refuses_the_form_the_version_rule_still_counts(
    project: GitRepo, tmp_path: Path, message: str, reason: str, next_version: str
) -> None:
    message_file = tmp_path / "COMMIT_EDITMSG"
    message_file.write_text(message)
    refused(project, reason, str(message_file))
    project.tag("v0.1.0")
    project.commit(message)
    refused(project, reason, "--range", "HEAD~1..HEAD")
    assert rk(project.path, "version", "--print").stdout == next_version + "\n"


def test_scope_with_parentheses_is_refused_by_both(project: GitRepo) -> None:
    refused(project, "the scope in 'feat(a(b)): x' contains parentheses", "-m", "feat(a(b)): x")
    project.tag("v0.1.0")
    project.commit("feat(a(b)): x")
    assert rk(project.path, "version", "--print").stdout == ""


def test_leading_blank_lines_are_skipped_by_both(project: GitRepo, tmp_path: Path) -> None:
    message_file = tmp_path / "COMMIT_EDITMSG"
    message_file.write_text("\n\nfeat: after blank lines\n")
    assert rk(project.path, "check", str(message_file)).exit_code == 0
    project.tag("v0.1.0")
    # `git commit --cleanup=verbatim` keeps the leading blank lines in the commit object
    project.write("x.txt", "x")
    project.git("add", "x.txt")
    project.git("commit", "-q", "--cleanup=verbatim", "-F", str(message_file))
    assert project.git("cat-file", "-p", "HEAD").count("\n\n\nfeat: after blank lines") == 1
    assert rk(project.path, "version", "--print").stdout == "0.2.0\n"
    assert rk(project.path, "check", "--range", "HEAD~1..HEAD").exit_code == 0


def test_breaking_squash_header_over_a_plain_bullet_is_a_major(project: GitRepo) -> None:
    project.tag("v1.0.0")
    project.commit("feat!: x (#1112)\n\n* feat: x\n")
    assert rk(project.path, "version", "--print").stdout == "2.0.0\n"
