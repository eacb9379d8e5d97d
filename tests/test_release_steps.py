"""The release plan lists every step; a resumed release is the same plan with its first steps done.

Real git repositories (and, for --publish, the real bundled index); every output is exact.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import GitRepo
from tests.server.conftest import wait_for
from tests.test_pipeline_publish import BROKEN_BACKEND, index, publish_release
from tests.test_publish import Index, start_index
from tests.test_release_cli import released, remote_tags, rk, with_remote

__all__ = ["index", "start_index", "with_remote"]  # fixtures, imported for pytest

FORGE = "  skip   forge release: run `releasekit forge release {v}` after the push"


def steps(*lines: str) -> str:
    return "\n".join(["steps:", *lines])


def release_sha(repo: GitRepo, tag: str) -> str:
    return repo.git("rev-parse", "--short=7", f"{tag}^{{commit}}")


def test_fresh_dry_run_lists_every_step_and_changes_nothing(project: GitRepo) -> None:
    project.tag("v0.1.0")
    feat = project.commit("feat(api): add search")[:7]
    before = project.snapshot()
    result = rk(project, "release", "--dry-run")
    assert result.exit_code == 0, result.output
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert result.stdout == "\n".join(
        [
            "branch main (channel final)",
            "version: 0.1.0 -> 0.2.0",
            "reason: minor-level changes since 0.1.0 (minor since the last final release)",
            "commits that decided it:",
            f"  {feat} feat(api): add search",
            "files:",
            "--- a/pyproject.toml",
            "+++ b/pyproject.toml",
            "@@ -1,6 +1,6 @@",
            " [project]",
            ' name = "example-lib"',
            '-version = "0.1.0"',
            '+version = "0.2.0"',
            ' description = "An example library"',
            ' requires-python = ">=3.11"',
            " dependencies = []",
            "--- a/example_lib/__init__.py",
            "+++ b/example_lib/__init__.py",
            "@@ -1,3 +1,3 @@",
            ' """Example."""',
            " ",
            '-__version__ = "0.1.0"',
            '+__version__ = "0.2.0"',
            "--- /dev/null",
            "+++ b/CHANGELOG.md",
            "@@ -0,0 +1,11 @@",
            "+# Changelog",
            "+",
            "+All notable changes to this project are listed here, newest first.",
            "+",
            "+<!-- releasekit: insert releases below -->",
            "+",
            f"+## 0.2.0 - {today}",
            "+",
            "+### Features",
            "+",
            f"+- **api:** add search (`{feat}`)",
            "changelog section:",
            f"  ## 0.2.0 - {today}",
            "",
            "  ### Features",
            "",
            f"  - **api:** add search (`{feat}`)",
            "releasing 0.2.0 (v0.2.0):",
            steps(
                "  to do  write: pyproject.toml, example_lib/__init__.py",
                "  to do  changelog: section 0.2.0 in CHANGELOG.md",
                "  to do  commit: chore(release): 0.2.0",
                "  skip   build: pass --publish to build and upload",
                "  to do  tag: v0.2.0 (annotated)",
                "  skip   publish: pass --publish to upload",
                "  skip   push: pass --push-tag to push",
                FORGE.format(v="0.2.0"),
            ),
            "dry run: nothing was changed",
            "",
        ]
    )
    assert project.snapshot() == before


def test_rejected_push_then_resumed_prints_the_same_plan(
    project: GitRepo, with_remote: Path
) -> None:
    hook = with_remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    feat = project.commit("feat: greet")[:7]
    head = [
        "branch main (channel final)",
        "version: (no release yet) -> 0.1.0",
        "reason: first release: the version declared in pyproject.toml",
        "commits that decided it:",
        f"  {feat} feat: greet",
    ]
    fresh = steps(
        "  skip   write: the version files already say 0.1.0",
        "  to do  changelog: section 0.1.0 in CHANGELOG.md",
        "  to do  commit: chore(release): 0.1.0",
        "  skip   build: pass --publish to build and upload",
        "  to do  tag: v0.1.0 (annotated)",
        "  skip   publish: pass --publish to upload",
        "  to do  push: main and v0.1.0 to origin (atomically)",
        FORGE.format(v="0.1.0"),
    )
    first = rk(project, "release", "--push-tag")
    assert first.exit_code == 1
    sha = release_sha(project, "v0.1.0")
    assert first.stdout == "\n".join(
        [
            *head,
            "releasing 0.1.0 (v0.1.0):",
            fresh,
            "running:",
            "  wrote CHANGELOG.md",
            f"  committed {sha} chore(release): 0.1.0",
            "  tagged v0.1.0",
            "",
        ]
    )
    assert "main is protected" in first.stderr
    resumed = "\n".join(
        [
            "resuming the release of 0.1.0 (v0.1.0): push left to do",
            steps(
                f"  done   write: in the release commit {sha}",
                f"  done   changelog: in the release commit {sha}",
                f"  done   commit: {sha} chore(release): 0.1.0",
                "  skip   build: pass --publish to build and upload",
                "  done   tag: v0.1.0",
                "  skip   publish: pass --publish to upload",
                "  to do  push: main and v0.1.0 to origin (atomically)",
                FORGE.format(v="0.1.0"),
            ),
        ]
    )
    hook.unlink()  # the admin lifts the protection
    before = project.snapshot()
    dry = rk(project, "release", "--push-tag", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout == f"{resumed}\ndry run: nothing was changed\n"
    assert project.snapshot() == before and remote_tags(with_remote) == ""
    again = rk(project, "release", "--push-tag")
    assert again.exit_code == 0, again.output
    assert again.stdout == (
        f"{resumed}\nrunning:\n  pushed main and v0.1.0 to origin\nreleased 0.1.0 (v0.1.0)\n"
    )
    assert remote_tags(with_remote).split() == ["v0.1.0"] == released(project)
    assert project.git("log", "--format=%s").count("chore(release)") == 1


def test_commit_without_tag_is_a_plan_with_the_tag_to_do(project: GitRepo) -> None:
    project.commit("feat: greet")
    assert rk(project, "release").exit_code == 0
    project.git("tag", "-d", "v0.1.0")  # as if the run had died between commit and tag
    sha = project.git("rev-parse", "--short=7", "HEAD")
    plan = "\n".join(
        [
            "resuming the release of 0.1.0 (v0.1.0): tag left to do",
            steps(
                f"  done   write: in the release commit {sha}",
                f"  done   changelog: in the release commit {sha}",
                f"  done   commit: {sha} chore(release): 0.1.0",
                "  skip   build: pass --publish to build and upload",
                "  to do  tag: v0.1.0 (annotated)",
                "  skip   publish: pass --publish to upload",
                "  skip   push: pass --push-tag to push",
                FORGE.format(v="0.1.0"),
            ),
        ]
    )
    dry = rk(project, "release", "--dry-run")
    assert dry.stdout == f"{plan}\ndry run: nothing was changed\n"
    assert released(project) == []
    real = rk(project, "release")
    assert real.exit_code == 0, real.output
    assert real.stdout == f"{plan}\nrunning:\n  tagged v0.1.0\nreleased 0.1.0 (v0.1.0)\n"
    assert released(project) == ["v0.1.0"]
    assert "### Features" in project.git("tag", "-l", "--format=%(contents)", "v0.1.0")


def test_push_without_a_remote_is_refused_before_anything_changes(project: GitRepo) -> None:
    project.commit("feat: greet")
    before = project.snapshot()
    result = rk(project, "release", "--push-tag")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: --push-tag was given but the repository has no remote\n"
        "  hint: add one with `git remote add origin URL`, or drop --push-tag\n"
    )
    assert project.snapshot() == before


def listings(tmp_path: Path) -> int:
    """How often the index was asked for example-lib's project page (its access log)."""
    return (tmp_path / "index0.log").read_text().count('path="/simple/example-lib/"')


def assert_listings(tmp_path: Path, expected: int) -> None:
    """The index writes its access log after answering: wait for the line, then count exactly."""
    wait_for(lambda: listings(tmp_path) >= expected)
    assert listings(tmp_path) == expected


@pytest.mark.e2e
def test_failed_build_then_resumed_publish_prints_the_same_plan(
    project: GitRepo, index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyproject = (project.path / "pyproject.toml").read_text().replace(
        'build-backend = "poetry.core.masonry.api"',
        'build-backend = "broken_backend"\nbackend-path = ["_build"]',
    ) + '\n[tool.poetry]\ninclude = [{ path = "_build", format = "sdist" }]\n'
    project.commit(
        "build: in-tree backend",
        {
            "pyproject.toml": pyproject,
            "_build/broken_backend.py": BROKEN_BACKEND,
            ".gitignore": "dist/\n__pycache__/\n",
        },
    )
    project.commit("feat: greet")
    flag = tmp_path / "break"
    flag.write_text("x")
    monkeypatch.setenv("BREAK_BUILD_FLAG", str(flag))
    label = index.url
    shipping = [
        "  to do  build: sdist and wheel of 0.1.0 into dist/",
        "  to do  tag: v0.1.0 (annotated)",
        f"  to do  publish: upload to {label}, then verify each file's sha256",
        "  skip   push: pass --push-tag to push",
        FORGE.format(v="0.1.0"),
    ]
    dry = publish_release(project, index, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.endswith(
        "\n".join(
            [
                "releasing 0.1.0 (v0.1.0):",
                steps(
                    "  skip   write: the version files already say 0.1.0",
                    "  to do  changelog: section 0.1.0 in CHANGELOG.md",
                    "  to do  commit: chore(release): 0.1.0",
                    *shipping,
                ),
                "dry run: nothing was changed",
                "",
            ]
        )
    )
    assert_listings(tmp_path, 1)
    failed = publish_release(project, index)
    assert failed.exit_code == 1 and "broken on purpose" in failed.stderr
    assert released(project) == [] and index.stored() == {}
    sha = project.git("rev-parse", "--short=7", "HEAD")
    resumed = "\n".join(
        [
            "resuming the release of 0.1.0 (v0.1.0): build, tag, publish left to do",
            steps(
                f"  done   write: in the release commit {sha}",
                f"  done   changelog: in the release commit {sha}",
                f"  done   commit: {sha} chore(release): 0.1.0",
                *shipping,
            ),
        ]
    )
    flag.unlink()  # the environment is repaired
    asked = 2  # the dry run's listing and the failed run's
    assert_listings(tmp_path, asked)
    dry = publish_release(project, index, "--dry-run")
    assert dry.stdout == f"{resumed}\ndry run: nothing was changed\n"
    assert_listings(tmp_path, asked + 1)
    assert released(project) == []
    again = publish_release(project, index)
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"{resumed}\nrunning:\n")
    ran = again.stdout.split("running:\n", 1)[1].splitlines()
    # twine's own progress bars (sizes, rates) come between; everything of releasekit's is exact
    assert [line for line in ran if line.startswith(("  ", "released"))] == [
        "  building sdist",
        "  building wheel from the sdist",
        "  twine check warning: example_lib-0.1.0.tar.gz: no long_description",
        "  twine check warning: example_lib-0.1.0-py3-none-any.whl: no long_description",
        "  built example_lib-0.1.0.tar.gz and example_lib-0.1.0-py3-none-any.whl",
        "  tagged v0.1.0",
        f"  uploading example_lib-0.1.0.tar.gz, example_lib-0.1.0-py3-none-any.whl to {index.url}",
        f"  verified example_lib-0.1.0-py3-none-any.whl, example_lib-0.1.0.tar.gz on {index.url}",
        "released 0.1.0 (v0.1.0)",
    ]
    # The index is listed once before the steps run and once after the upload (the check).
    assert_listings(tmp_path, asked + 3)
    assert released(project) == ["v0.1.0"] and len(index.stored()) == 2
    assert project.git("log", "--format=%s").count("chore(release)") == 1
