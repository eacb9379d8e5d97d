"""The release commands end to end on real git repositories (click's runner, in process)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from releasekit.cli import EXIT_NOTHING_TO_RELEASE, cli
from tests.conftest import PYPROJECT_PEP621, GitRepo


def rk(repo: GitRepo | Path, *args: str) -> Result:
    path = repo.path if isinstance(repo, GitRepo) else repo
    return CliRunner().invoke(cli, ["-C", str(path), *args], catch_exceptions=False)


def next_version(repo: GitRepo, *args: str) -> str:
    result = rk(repo, "version", "--print", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def released(repo: GitRepo) -> list[str]:
    return repo.git("tag", "--list", "--sort=v:refname").splitlines()


# -- versions ------------------------------------------------------------------------------------


def test_first_release_is_the_declared_version(project: GitRepo) -> None:
    project.commit("feat: add the greeting")
    assert next_version(project) == "0.1.0\n"
    result = rk(project, "release")
    assert result.exit_code == 0, result.output
    assert released(project) == ["v0.1.0"]
    assert project.git("cat-file", "-t", "v0.1.0") == "tag"  # annotated
    assert "### Features" in project.git("tag", "-l", "--format=%(contents)", "v0.1.0")
    assert project.git("log", "-1", "--format=%s") == "chore(release): 0.1.0"
    changelog = (project.path / "CHANGELOG.md").read_text()
    assert "## 0.1.0 - " in changelog and "add the greeting" in changelog
    assert project.git("status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("fix: a bug", "0.1.1"),
        ("perf: faster", "0.1.1"),
        ("feat: a feature", "0.2.0"),
        ("feat!: breaking", "1.0.0"),
        ("fix: x\n\nBREAKING CHANGE: the API changed", "1.0.0"),
        ("refactor: move code\n\nBREAKING-CHANGE: gone", "1.0.0"),
    ],
)
def test_level_from_commits_on_zero_x(project: GitRepo, message: str, expected: str) -> None:
    project.tag("v0.1.0")
    project.commit(message)
    assert next_version(project) == expected + "\n"


def test_major_on_zero_false_turns_breaking_into_minor(project: GitRepo) -> None:
    pyproject = project.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.releasekit]\nmajor_on_zero = false\n")
    project.commit("chore: configure")
    project.tag("v0.1.0")
    project.commit("feat!: breaking")
    assert next_version(project) == "0.2.0\n"


def test_body_fix_lines_merges_and_reverts(project: GitRepo) -> None:
    project.tag("v0.1.0")
    project.commit("chore(deps): bump x\n\nfix: this line is inside a body and must not count")
    assert rk(project, "version", "--print").stdout == ""
    feature = project.commit("feat: risky feature")
    project.commit(f'Revert "feat: risky feature"\n\nThis reverts commit {feature}.')
    assert rk(project, "version", "--print").stdout == ""  # the pair cancels out
    project.checkout("topic", create=True)
    project.commit("fix: on a branch")
    project.checkout("main")
    project.merge("topic", "Merge branch 'topic' (feat: this merge message is not parsed)")
    assert next_version(project) == "0.1.1\n"


def test_squash_bullets_count(project: GitRepo) -> None:
    project.tag("v1.0.0")
    project.commit("Update stuff (#12)\n\n* feat: new option\n\n* fix: typo")
    assert next_version(project) == "1.1.0\n"


def test_nothing_to_release(project: GitRepo) -> None:
    project.tag("v0.1.0")
    project.commit("docs: readme")
    before = project.snapshot()
    result = rk(project, "version", "--print")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "nothing to release" in result.stderr
    strict = rk(project, "release", "--strict")
    assert strict.exit_code == EXIT_NOTHING_TO_RELEASE
    assert rk(project, "release").exit_code == 0
    assert project.snapshot() == before


def test_semver_spelled_tags_are_adopted(project: GitRepo) -> None:
    project.tag("v1.3.0-rc.1")
    project.commit("fix: one more")
    assert next_version(project, "--prerelease", "rc") == "1.3.0rc2\n"
    assert next_version(project) == "1.3.0\n"


def test_manual_bumps(project: GitRepo) -> None:
    project.tag("v1.2.3")
    project.commit("chore: nothing releasable")
    assert next_version(project, "--bump", "minor") == "1.3.0\n"
    assert next_version(project, "--bump", "prerelease") == "1.2.4rc1\n"


# -- prereleases across branches -----------------------------------------------------------------


def test_prerelease_channel_then_final(project: GitRepo) -> None:
    project.tag("v1.2.3")
    project.checkout("develop", create=True)
    project.commit("feat: new api")
    assert rk(project, "release").exit_code == 0
    assert released(project)[-1] == "v1.3.0rc1"
    project.commit("fix: polish")
    assert rk(project, "release").exit_code == 0
    assert "v1.3.0rc2" in released(project)
    project.checkout("main")
    project.merge("develop")
    assert next_version(project) == "1.3.0\n"
    assert rk(project, "release").exit_code == 0
    text = (project.path / "CHANGELOG.md").read_text()
    assert text.index("## 1.3.0 -") < text.index("## 1.3.0rc2 -") < text.index("## 1.3.0rc1 -")
    final_section = rk(project, "changelog", "1.3.0").stdout
    assert "new api" in final_section and "polish" in final_section


# -- the plan, the files, the changelog ----------------------------------------------------------


def test_dry_run_prints_the_plan_and_changes_nothing(project: GitRepo) -> None:
    project.tag("v0.1.0")
    project.commit("feat(api): add search")
    before = project.snapshot()
    result = rk(project, "release", "--dry-run")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        "0.1.0 -> 0.2.0",
        "feat(api): add search",
        '-version = "0.1.0"',
        '+version = "0.2.0"',
        '+__version__ = "0.2.0"',
        "## 0.2.0 - ",
        "tag: v0.2.0",
        "chore(release): 0.2.0",
        "dry run: nothing was changed",
    ):
        assert expected in out
    assert project.snapshot() == before


def test_version_files_keep_every_other_byte(project: GitRepo) -> None:
    pyproject = "# a comment that stays\n" + PYPROJECT_PEP621.format(version="0.1.0").replace(
        "dependencies = []", 'dependencies = ["pinned==0.1.0"]  # keep the pin'
    )
    project.commit("feat: pin", {"pyproject.toml": pyproject})
    assert rk(project, "release").exit_code == 0
    project.commit("fix: bug")
    assert rk(project, "release").exit_code == 0
    text = (project.path / "pyproject.toml").read_text()
    assert text == pyproject.replace('version = "0.1.0"', 'version = "0.1.1"')
    init = (project.path / "example_lib/__init__.py").read_text()
    assert '__version__ = "0.1.1"' in init


def test_hand_edits_survive_two_releases(project: GitRepo) -> None:
    project.commit("feat: first")
    assert rk(project, "release").exit_code == 0
    changelog = project.path / "CHANGELOG.md"
    edited = changelog.read_text().replace(
        "# Changelog", "# Changelog\n\nHand-written intro *kept*.\n"
    )
    edited += "\nA hand-written footnote about 0.1.0.\n"
    project.commit("docs: edit the changelog by hand", {"CHANGELOG.md": edited})
    for message in ("fix: second", "feat: third"):
        project.commit(message)
        assert rk(project, "changelog", "--unreleased").exit_code == 0
        project.commit("docs: refresh unreleased")
        assert rk(project, "changelog", "--unreleased").exit_code == 0
        assert rk(project, "release").exit_code == 0
    text = changelog.read_text()
    assert text.endswith(edited.split("## 0.1.0", 1)[1])
    assert "Hand-written intro *kept*." in text
    assert text.count("Unreleased") <= 1


def test_changelog_commands(project: GitRepo) -> None:
    project.commit("feat: one")
    project.tag("v0.1.0")
    project.commit("fix: two")
    project.tag("v0.1.1")
    project.commit("feat: three")
    full = rk(project, "changelog", "--stdout").stdout
    assert full.index("three") < full.index("## 0.1.1") < full.index("two") < full.index("## 0.1.0")
    assert "## Unreleased" in full
    assert "two" in rk(project, "changelog", "0.1.1").stdout
    missing = rk(project, "changelog", "9.9.9")
    assert missing.exit_code == 1 and "no release 9.9.9" in missing.stderr
    assert rk(project, "changelog").exit_code == 0
    once = (project.path / "CHANGELOG.md").read_text()
    assert rk(project, "changelog").exit_code == 0
    assert (project.path / "CHANGELOG.md").read_text() == once
    assert "Unreleased" not in once  # that block is `--unreleased`'s, never added without it


# -- refusals: message and nothing changed -------------------------------------------------------


def refused(repo: GitRepo, *args: str, message: str) -> Result:
    before = repo.snapshot()
    result = rk(repo, *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr, result.stderr
    assert "hint:" in result.stderr
    assert repo.snapshot() == before
    return result


def test_refuses_dirty_tree(project: GitRepo) -> None:
    project.commit("feat: x")
    project.write("example_lib/__init__.py", "changed\n")
    refused(project, "release", message="example_lib/__init__.py")


def test_refuses_detached_head(project: GitRepo) -> None:
    project.commit("feat: x")
    project.git("checkout", "--quiet", "--detach", "HEAD")
    refused(project, "release", message="detached")


def test_refuses_branch_without_channel(project: GitRepo) -> None:
    project.checkout("feature/x", create=True)
    project.commit("feat: x")
    refused(project, "release", message="branch 'feature/x' has no release channel")


def test_refuses_existing_tag(project: GitRepo) -> None:
    project.commit("feat: x")
    project.checkout("other", create=True)
    project.commit("chore: elsewhere")
    project.tag("v0.1.0")
    project.checkout("main")
    refused(project, "release", message="tag v0.1.0 already exists")


def test_refuses_backwards_version(project: GitRepo) -> None:
    project.tag("v2.0.0")
    project.commit("chore: x")
    refused(project, "release", "release", message="already a final release")


def test_refuses_shallow_clone_without_remote(project: GitRepo, tmp_path: Path) -> None:
    project.commit("feat: one")
    project.commit("fix: two")
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "--quiet", "--depth", "1", f"file://{project.path}", str(clone)],
        check=True,
    )
    subprocess.run(["git", "remote", "remove", "origin"], cwd=clone, check=True)
    refused(GitRepo.adopt(clone), "release", message="shallow")


def test_refuses_malformed_config(project: GitRepo) -> None:
    pyproject = project.path / "pyproject.toml"
    project.commit(
        "chore: config",
        {
            "pyproject.toml": pyproject.read_text()
            + '\n[tool.releasekit]\ntag_fromat = "v{version}"\n'
        },
    )
    refused(project, "release", message="unknown key 'tag_fromat'")


def test_refuses_pyproject_without_version(git_repo: GitRepo) -> None:
    git_repo.commit("feat: x", {"pyproject.toml": '[project]\nname = "x"\n'})
    refused(git_repo, "release", message="version")


# -- remote, push and resume ---------------------------------------------------------------------


@pytest.fixture
def with_remote(project: GitRepo, tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    project.git("remote", "add", "origin", str(remote))
    project.git("push", "--quiet", "-u", "origin", "main")
    return remote


def remote_tags(remote: Path) -> str:
    return subprocess.run(
        ["git", "tag", "--list"], cwd=remote, capture_output=True, text=True, check=True
    ).stdout


def test_push_tag(project: GitRepo, with_remote: Path) -> None:
    project.commit("feat: x")
    result = rk(project, "release", "--push-tag")
    assert result.exit_code == 0, result.output
    assert remote_tags(with_remote).split() == ["v0.1.0"]
    assert project.git("rev-parse", "origin/main") == project.head()


def test_rejected_push_is_resumed_without_a_second_bump(
    project: GitRepo, with_remote: Path
) -> None:
    hook = with_remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    project.commit("feat: x")
    first = rk(project, "release", "--push-tag")
    assert first.exit_code == 1
    assert "main is protected" in first.stderr and "hint:" in first.stderr
    assert released(project) == ["v0.1.0"]
    assert remote_tags(with_remote) == ""
    hook.unlink()  # the admin lifts the protection; the same command finishes the job
    again = rk(project, "release", "--push-tag")
    assert again.exit_code == 0, again.output
    assert "resuming the release of 0.1.0" in again.stdout
    assert released(project) == ["v0.1.0"]
    assert remote_tags(with_remote).split() == ["v0.1.0"]
    assert project.git("log", "--format=%s").count("chore(release)") == 1
    done = rk(project, "release", "--push-tag")
    assert done.exit_code == 0 and "nothing to release" in done.stderr


def test_unpushed_tag_behind_a_merge_is_pushed(project: GitRepo, with_remote: Path) -> None:
    hook = with_remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    project.commit("feat: x")
    assert rk(project, "release", "--push-tag").exit_code == 1
    hook.unlink()
    project.commit("docs: written after the failed push")
    result = rk(project, "release", "--push-tag")
    assert result.exit_code == 0, result.output
    assert remote_tags(with_remote).split() == ["v0.1.0"]


def test_release_commit_without_tag_is_finished(project: GitRepo) -> None:
    project.commit("feat: x")
    assert rk(project, "release").exit_code == 0
    project.git("tag", "-d", "v0.1.0")  # as if the run had died between commit and tag
    result = rk(project, "release")
    assert result.exit_code == 0, result.output
    assert "resuming the release of 0.1.0" in result.stdout
    assert released(project) == ["v0.1.0"]
    assert project.git("log", "--format=%s").count("chore(release)") == 1


# -- bump and check ------------------------------------------------------------------------------


def test_bump_writes_version_files_only(project: GitRepo) -> None:
    head = project.head()
    dry = rk(project, "bump", "minor", "--dry-run")
    assert dry.exit_code == 0 and "0.1.0 -> 0.2.0" in dry.stdout
    assert project.git("status", "--porcelain") == ""
    result = rk(project, "bump", "prerelease", "--prerelease-type", "alpha")
    assert result.exit_code == 0, result.output
    assert 'version = "0.1.1a1"' in (project.path / "pyproject.toml").read_text()
    assert project.head() == head and released(project) == []


def test_check_lints_messages(project: GitRepo, tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_text("feat(api): add x\n\n# Please enter the commit message\n")
    assert rk(project, "check", str(good)).exit_code == 0
    bad = tmp_path / "bad"
    bad.write_text("added stuff\n")
    before = project.snapshot()
    result = rk(project, "check", str(bad))
    assert result.exit_code == 1 and "not Conventional Commits" in result.stderr
    assert project.snapshot() == before
    project.commit("feat: fine")
    project.commit("wip")
    ranged = rk(project, "check", "--range", "HEAD~2..HEAD")
    assert ranged.exit_code == 1 and "'wip'" in ranged.stderr and "fine" not in ranged.stderr


def test_refuses_tags_in_another_spelling(project: GitRepo) -> None:
    project.tag("1.0.0")
    project.commit("fix: x")
    refused(project, "release", message="no tag matches tag_format 'v{version}', but 1.0.0")
    result = rk(project, "version", "--print")
    assert result.exit_code == 1 and 'tag_format = "{version}"' in result.stderr


def test_verbose_after_the_command_lists_ignored_commits(project: GitRepo) -> None:
    project.tag("v0.1.0")
    project.commit("feat: counted")
    project.commit("updated some things")
    quiet = rk(project, "version")
    assert "updated some things" not in quiet.stdout
    loud = rk(project, "version", "-v")
    assert loud.exit_code == 0 and "ignored (not conventional commits)" in loud.stdout
    assert "updated some things" in loud.stdout
