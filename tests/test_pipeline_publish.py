"""`releasekit release --publish` and `publish` against the real bundled index, failing each step for real."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import GitRepo
from tests.test_publish import PASSWORD, USER, Index, start_index
from tests.test_release_cli import released, rk

__all__ = ["start_index"]  # the fixture, imported for pytest

pytestmark = pytest.mark.e2e

BROKEN_BACKEND = textwrap.dedent(
    """\
    import os

    from poetry.core.masonry import api as _api

    def _check():
        if os.path.exists(os.environ.get("BREAK_BUILD_FLAG", "/nonexistent")):
            raise RuntimeError("the build backend is broken on purpose")

    def build_sdist(*args, **kwargs):
        _check()
        return _api.build_sdist(*args, **kwargs)

    def build_wheel(*args, **kwargs):
        _check()
        return _api.build_wheel(*args, **kwargs)

    get_requires_for_build_sdist = _api.get_requires_for_build_sdist
    get_requires_for_build_wheel = _api.get_requires_for_build_wheel
    """
)


@pytest.fixture
def index(start_index: Callable[..., Index], monkeypatch: pytest.MonkeyPatch) -> Index:
    running = start_index()
    monkeypatch.setenv("RELEASEKIT_USERNAME", USER)
    monkeypatch.setenv("RELEASEKIT_PASSWORD", PASSWORD)
    return running


def publish_release(repo: GitRepo, index: Index, *args: str) -> Result:
    result = rk(repo, "release", "--publish", "--no-isolation", "--repository", index.url, *args)
    assert USER not in result.output and PASSWORD not in result.output
    return result


def test_release_publish_and_install(project: GitRepo, index: Index, tmp_path: Path) -> None:
    project.write(".gitignore", "dist/\n")
    project.commit("feat: greet")
    result = publish_release(project, index)
    assert result.exit_code == 0, result.output
    assert sorted(index.stored()) == [
        "example_lib-0.1.0-py3-none-any.whl",
        "example_lib-0.1.0.tar.gz",
    ]
    assert released(project) == ["v0.1.0"]
    project.commit("fix: a bug")
    assert publish_release(project, index).exit_code == 0
    assert "example_lib-0.1.1.tar.gz" in index.stored()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-cache-dir"]
    subprocess.run([*pip, "--index-url", f"{index.url}simple/", "example-lib"], check=True)
    shown = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import example_lib; print(example_lib.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "0.1.1"


def test_refuses_a_version_already_on_the_index(project: GitRepo, index: Index) -> None:
    project.write(".gitignore", "dist/\n")
    project.commit("chore: ignore dist")
    published = rk(project, "publish", "--no-isolation", "--repository", index.url)
    assert published.exit_code == 0, published.output
    project.commit("feat: greet")
    before, files = project.snapshot(), index.stored()
    result = publish_release(project, index)
    assert result.exit_code == 1
    assert (
        "example-lib 0.1.0 already exists on" in result.stderr
        or "0.1.0 already exists" in result.stderr
    )
    assert "--force" in result.stderr
    assert project.snapshot() == before and index.stored() == files


def test_broken_build_leaves_no_tag_and_resumes(
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
    failed = publish_release(project, index)
    assert failed.exit_code == 1
    assert "broken on purpose" in failed.stderr
    assert released(project) == []  # no tag for a build that failed
    assert index.stored() == {}
    flag.unlink()  # the environment is repaired; the same command finishes the release
    again = publish_release(project, index)
    assert again.exit_code == 0, again.output
    assert "resuming the release of 0.1.0" in again.stdout
    assert released(project) == ["v0.1.0"]
    assert len(index.stored()) == 2
    assert project.git("log", "--format=%s").count("chore(release)") == 1


def test_stopped_index_then_resume(
    project: GitRepo, start_index: Callable[..., Index], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELEASEKIT_USERNAME", USER)
    monkeypatch.setenv("RELEASEKIT_PASSWORD", PASSWORD)
    index = start_index()
    project.write(".gitignore", "dist/\n")
    project.commit("feat: greet")
    project.tag("v0.1.0")
    project.commit("fix: bug")
    index.process.terminate()
    index.process.wait(timeout=10)
    down = publish_release(project, index)
    assert down.exit_code == 1
    assert "hint:" in down.stderr
    assert released(project) == [
        "v0.1.0"
    ]  # refused before anything changed: the index was asked first
    restarted = start_index()
    monkeypatch.setenv("RELEASEKIT_USERNAME", USER)
    result = publish_release(project, restarted)
    assert result.exit_code == 0, result.output
    assert released(project) == ["v0.1.0", "v0.1.1"]
    assert "example_lib-0.1.1-py3-none-any.whl" in restarted.stored()


def test_upload_failure_after_tag_is_resumed(
    project: GitRepo, start_index: Callable[..., Index], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index answers the pre-check, then refuses the upload (read-only auth): tag made, nothing uploaded."""
    monkeypatch.setenv("RELEASEKIT_USERNAME", USER)
    monkeypatch.setenv("RELEASEKIT_PASSWORD", "wrong-password")
    index = start_index(authenticate="update")
    project.write(".gitignore", "dist/\n")
    project.commit("feat: greet")
    failed = publish_release(project, index)
    assert failed.exit_code == 1
    assert "wrong-password" not in failed.output
    assert released(project) == ["v0.1.0"]
    assert index.stored() == {}
    monkeypatch.setenv("RELEASEKIT_PASSWORD", PASSWORD)
    dry = publish_release(project, index, "--dry-run")
    assert dry.exit_code == 0, dry.output
    left = "resuming the release of 0.1.0 (v0.1.0): build, publish left to do"
    assert dry.stdout.startswith(f"{left}\nsteps:\n")
    assert "  done   tag: v0.1.0\n" in dry.stdout
    assert dry.stdout.endswith("dry run: nothing was changed\n") and index.stored() == {}
    again = publish_release(project, index)
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(dry.stdout.removesuffix("dry run: nothing was changed\n"))
    assert len(index.stored()) == 2
    assert released(project) == ["v0.1.0"]
    done = publish_release(project, index)
    assert done.exit_code == 0 and "nothing to release" in done.stderr
