"""uv.lock / pdm.lock: the project's own version moves with the release, checked by the real uv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from releasekit.cli import cli
from releasekit.errors import ConfigError
from releasekit.lockfiles import lockfile_text_edit
from tests.conftest import GitRepo

UV = Path(sys.executable).parent / "uv"

UV_LOCK = """\
version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "Example_Lib"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "helper" },
]

[package.metadata]
requires-dist = [{ name = "helper", directory = "../helper" }]

[[package]]
name = "helper"
version = "0.1.0"
source = { directory = "../helper" }
"""


def test_only_the_projects_own_entry_changes() -> None:
    after = lockfile_text_edit(UV_LOCK, "uv.lock", "example-lib", "0.2.0")
    assert after == UV_LOCK.replace(
        'name = "Example_Lib"\nversion = "0.1.0"', 'name = "Example_Lib"\nversion = "0.2.0"'
    )
    assert after.count('version = "0.1.0"') == 1  # the dependency that shares the version stays


@pytest.mark.parametrize(
    "text",
    [
        UV_LOCK.replace('source = { editable = "." }', 'source = { registry = "https://x" }'),
        'version = 1\n\n[[package]]\nname = "helper"\nversion = "0.1.0"\n',
        # pdm.lock: dependencies only, the project itself is not listed
        '[metadata]\ncontent_hash = "sha256:0"\n\n[[package]]\nname = "helper"\nversion = "1.0"\n',
    ],
)
def test_a_lockfile_without_the_project_is_left_alone(text: str) -> None:
    assert lockfile_text_edit(text, "uv.lock", "example-lib", "0.2.0") == text


def test_uv_virtual_and_pdm_editable_self_entries() -> None:
    virtual = '[[package]]\nname = "example-lib"\nversion = "1.0"\nsource = { virtual = "." }\n'
    assert 'version = "2.0"' in lockfile_text_edit(virtual, "uv.lock", "example-lib", "2.0")
    pdm = '[[package]]\nname = "example-lib"\nversion = "1.0"\neditable = true\npath = "."\n'
    assert 'version = "2.0"' in lockfile_text_edit(pdm, "pdm.lock", "example-lib", "2.0")


def test_invalid_lockfile_is_refused_with_the_way_out() -> None:
    with pytest.raises(ConfigError) as caught:
        lockfile_text_edit("[[package]\n", "uv.lock", "example-lib", "0.2.0")
    assert caught.value.message.startswith("uv.lock is not valid TOML")
    assert caught.value.hint == "regenerate it with `uv lock`"


# -- with the real uv --------------------------------------------------------------------------


def rk(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-C", str(path), *args], catch_exceptions=False)


def uv(cwd: Path, *args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    if cache is not None:
        env["UV_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [str(UV), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def uv_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once: `uv init --lib` with a local path dependency, locked by `uv lock`."""
    if not UV.is_file():
        pytest.skip("uv is not installed in this environment (it is a pinned test dependency)")
    base = tmp_path_factory.mktemp("uv")
    cache = base / "cache"

    def run(cwd: Path, *args: str) -> None:
        done = uv(cwd, *args, cache=cache)
        assert done.returncode == 0, done.stderr

    run(base, "init", "--lib", "--vcs", "none", "--name", "helper", str(base / "helper"))
    project = base / "example-lib"
    project.mkdir()
    run(project, "init", "--lib", "--vcs", "none", "--name", "example-lib", ".")
    run(project, "add", "--frozen", "../helper")
    run(project, "lock")
    (project / ".gitignore").write_text(".venv/\n__pycache__/\n")
    return base


@pytest.fixture
def uv_project(uv_template: Path, tmp_path: Path) -> GitRepo:
    """A fresh copy of the uv project, committed in a new git repository."""
    shutil.copytree(uv_template / "helper", tmp_path / "helper")
    shutil.copytree(uv_template / "example-lib", tmp_path / "example-lib")
    repo = GitRepo(tmp_path / "example-lib")
    repo.commit("chore: uv init")
    return repo


def test_release_keeps_uv_lock_check_green_on_the_tag(uv_project: GitRepo) -> None:
    repo = uv_project
    repo.commit("feat: hello")
    assert rk(repo.path, "release").exit_code == 0  # the first release: 0.1.0, as declared
    assert repo.git("tag", "--list") == "v0.1.0"
    repo.commit("feat: greet")
    dry = rk(repo.path, "release", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "--- a/uv.lock\n+++ b/uv.lock\n" in dry.stdout
    assert '-version = "0.1.0"\n+version = "0.2.0"\n source = { editable = "." }' in dry.stdout
    assert repo.git("status", "--porcelain") == ""
    result = rk(repo.path, "release")
    assert result.exit_code == 0, result.output
    assert "uv.lock" in repo.git("show", "--name-only", "--format=", "v0.2.0").splitlines()
    repo.git("checkout", "--quiet", "v0.2.0")
    check = uv(repo.path, "lock", "--check")
    assert check.returncode == 0, check.stderr
    # the helper entry, which also carries 0.1.0, is untouched
    lock = (repo.path / "uv.lock").read_text()
    assert lock.count('version = "0.1.0"') == 1 and lock.count('version = "0.2.0"') == 1


def test_uv_lock_check_fails_without_the_edit(uv_project: GitRepo) -> None:
    """The control: uv does notice a version that moved only in pyproject.toml."""
    pyproject = uv_project.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    assert uv(uv_project.path, "lock", "--check").returncode != 0


def test_bump_updates_uv_lock_too(uv_project: GitRepo) -> None:
    result = rk(uv_project.path, "bump", "minor")
    assert result.exit_code == 0, result.output
    assert "wrote pyproject.toml" in result.stdout and "uv.lock" in result.stdout
    assert uv(uv_project.path, "lock", "--check").returncode == 0


def test_broken_uv_lock_refuses_the_release_and_changes_nothing(uv_project: GitRepo) -> None:
    uv_project.write("uv.lock", "[[package]\n")
    uv_project.commit("feat: broken lock")
    before = uv_project.snapshot()
    result = rk(uv_project.path, "release")
    assert result.exit_code == 1
    assert "uv.lock is not valid TOML" in result.stderr
    assert "hint: regenerate it with `uv lock`" in result.stderr
    assert uv_project.snapshot() == before


def test_git_ignored_uv_lock_is_not_part_of_the_release(uv_project: GitRepo) -> None:
    uv_project.git("rm", "--cached", "--quiet", "uv.lock")
    uv_project.write(".gitignore", ".venv/\n__pycache__/\nuv.lock\n")
    uv_project.commit("feat: do not track the lock")
    assert rk(uv_project.path, "release").exit_code == 0
    uv_project.commit("fix: x")
    lock = (uv_project.path / "uv.lock").read_text()
    result = rk(uv_project.path, "release")
    assert result.exit_code == 0, result.output
    assert (uv_project.path / "uv.lock").read_text() == lock
    assert uv_project.git("tag", "--list") == "v0.1.0\nv0.1.1"
