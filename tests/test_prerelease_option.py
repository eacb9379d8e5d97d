"""One spelling of the prerelease option on version, bump, release and publish --bump."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner, Result

from releasekit.cli import cli
from tests.conftest import GitRepo


def rk(repo: GitRepo, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-C", str(repo.path), *args], catch_exceptions=False)


@pytest.mark.parametrize("command", ["version", "bump", "release", "publish"])
def test_every_command_accepts_both_spellings(command: str) -> None:
    group = cli
    assert isinstance(group, click.Group)
    found = group.get_command(click.Context(group), command)
    assert found is not None
    names = {opt for param in found.params for opt in getattr(param, "opts", [])}
    assert {"--prerelease-type", "--prerelease"} <= names


@pytest.mark.parametrize("flag", ["--prerelease-type", "--prerelease"])
def test_version_and_release_agree_on_the_flag(project: GitRepo, flag: str) -> None:
    project.tag("v0.1.0")
    project.commit("feat: x")
    version = rk(project, "version", "--print", flag, "beta")
    assert version.exit_code == 0 and version.stdout == "0.2.0b1\n"
    release = rk(project, "release", flag, "beta")
    assert release.exit_code == 0, release.output
    assert project.git("tag", "--list") == "v0.1.0\nv0.2.0b1"


def test_bump_accepts_the_alias(project: GitRepo) -> None:
    result = rk(project, "bump", "minor", "--prerelease", "rc", "--dry-run")
    assert result.exit_code == 0 and "0.1.0 -> 0.2.0rc1" in result.stdout


@pytest.mark.parametrize(
    "args",
    [("version", "--print"), ("release",), ("release", "--dry-run"), ("publish", "--bump", "auto")],
)
def test_unmapped_branch_hint_names_a_flag_the_command_accepts(
    project: GitRepo, args: tuple[str, ...]
) -> None:
    project.tag("v0.1.0")
    project.checkout("topic", create=True)
    project.commit("fix: x")
    before = project.snapshot()
    result = rk(project, *args)
    assert result.exit_code == 1
    assert "branch 'topic' has no release channel" in result.stderr
    flags = re.findall(r"--[a-z][a-z-]*", result.stderr.partition("hint:")[2])
    assert flags == ["--prerelease-type"]
    assert project.snapshot() == before
    # and the flag the hint names works on that command
    retried = rk(project, *args, "--prerelease-type", "rc", "--help")
    assert retried.exit_code == 0
    assert "--prerelease-type" in retried.stdout
