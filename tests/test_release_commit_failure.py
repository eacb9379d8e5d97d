"""A release whose commit git refuses (a hook, no identity) leaves the tree as it found it.

Found on a real clone (commitizen at v4.17.0^) in a CI-like HOME with no git identity: the
files were restored but stayed staged, so the re-run after `git config user.email` refused a
"dirty" tree it had made itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from releasekit.cli import cli
from tests.conftest import GitRepo


def rk(repo: GitRepo, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-C", str(repo.path), *args], catch_exceptions=False)


def _with_changelog(project: GitRepo) -> None:
    project.commit("docs: a changelog", {"CHANGELOG.md": "# Changelog\n\nHand-written intro.\n"})
    project.tag("v0.1.0")
    project.commit("feat: a feature")


def test_a_hook_that_refuses_the_commit_changes_nothing(project: GitRepo) -> None:
    _with_changelog(project)
    hook = project.path / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint failed' >&2\nexit 1\n", encoding="utf-8")
    hook.chmod(0o755)
    before = project.snapshot()

    result = rk(project, "release")

    assert result.exit_code == 1
    assert "lint failed" in result.output
    assert project.snapshot() == before
    hook.unlink()
    assert rk(project, "release").exit_code == 0
    assert project.git("describe", "--tags") == "v0.2.0"


def test_no_git_identity_changes_nothing_and_the_rerun_releases(
    project: GitRepo, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_changelog(project)
    project.commit("fix: a fix", {"CHANGELOG.md": "# Changelog\n\nHand-written intro.\n\n"})
    (isolated_home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n", "utf-8")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GIT_COMMITTER_EMAIL", raising=False)
    if os.environ.get("GIT_AUTHOR_EMAIL"):
        pytest.skip("a git identity comes from the environment")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    before = project.snapshot()

    result = rk(project, "release")

    assert result.exit_code == 1
    assert "git config user.email" in result.output
    assert project.snapshot() == before
    project.git("config", "user.name", "Test Author")
    project.git("config", "user.email", "author@example.com")
    assert rk(project, "release").exit_code == 0
    assert project.git("describe", "--tags") == "v0.2.0"
    assert project.git("status", "--porcelain") == ""


def test_a_refused_commit_leaves_no_new_changelog_behind(project: GitRepo) -> None:
    project.tag("v0.1.0")
    project.commit("fix: a fix")
    hook = project.path / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    hook.chmod(0o755)
    before = project.snapshot()

    assert rk(project, "release").exit_code == 1

    assert project.snapshot() == before
    assert not (project.path / "CHANGELOG.md").exists()
