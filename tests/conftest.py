"""Shared fixtures: an isolated HOME and real git repositories with pinned authors and dates."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

_ISOLATED_VARS = (
    "TWINE_USERNAME",
    "TWINE_PASSWORD",
    "TWINE_REPOSITORY",
    "TWINE_REPOSITORY_URL",
    "RELEASEKIT_USERNAME",
    "RELEASEKIT_PASSWORD",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_CONFIG_FILE",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "GITHUB_TOKEN",
    "XDG_CONFIG_HOME",
)


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test runs with its own HOME, no user or system git config, no index credentials."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test Author\n\temail = author@example.com\n"
        "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n[tag]\n\tgpgsign = false\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    for name in _ISOLATED_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("RELEASEKIT_"):
            monkeypatch.delenv(name, raising=False)
    return home


class GitRepo:
    """A real git repository in a temporary directory, with deterministic commit dates."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._clock = 1_700_000_000
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "-b", "main")

    @classmethod
    def adopt(cls, path: Path) -> GitRepo:
        """Wrap an existing repository (a clone made by a test) without re-initialising it."""
        repo = cls.__new__(cls)
        repo.path = path
        repo._clock = 1_700_000_000
        return repo

    def git(self, *args: str) -> str:
        """Run git in the repository and return its stdout (stripped)."""
        env = dict(os.environ)
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{self._clock} +0000"
        result = subprocess.run(
            ["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
        return result.stdout.strip()

    def write(self, relpath: str, text: str) -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        """Commit `files` (or an empty change) with `message`; returns the full sha."""
        self._clock += 60
        for relpath, text in (files or {}).items():
            self.write(relpath, text)
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "--no-verify", "-m", message)
        return self.head()

    def tag(self, name: str, message: str | None = None) -> None:
        if message is None:
            self.git("tag", name)
        else:
            self.git("tag", "-a", name, "-m", message)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def checkout(self, branch: str, create: bool = False) -> None:
        self.git("checkout", "--quiet", *(["-b"] if create else []), branch)

    def merge(self, branch: str, message: str | None = None) -> str:
        """A real merge commit (--no-ff) of `branch` into the current branch."""
        self._clock += 60
        self.git("merge", "--quiet", "--no-ff", "-m", message or f"Merge branch '{branch}'", branch)
        return self.head()

    def snapshot(self) -> dict[str, str]:
        """Everything a refused command must leave untouched: files, HEAD, tags, status."""
        state = {
            "HEAD": self.git("rev-parse", "HEAD") if self.git("rev-list", "--all") else "",
            "tags": self.git("tag", "--list"),
            "status": self.git("status", "--porcelain"),
        }
        for file in sorted(self.path.rglob("*")):
            if file.is_file() and ".git" not in file.relative_to(self.path).parts:
                state[str(file.relative_to(self.path))] = file.read_text(errors="replace")
        return state


PYPROJECT_PEP621 = """\
[project]
name = "example-lib"
version = "{version}"
description = "An example library"
requires-python = ">=3.11"
dependencies = []

[build-system]
requires = ["poetry-core>=2.0"]
build-backend = "poetry.core.masonry.api"
"""


@pytest.fixture
def git_repo(tmp_path: Path) -> Iterator[GitRepo]:
    """An empty git repository on branch main."""
    yield GitRepo(tmp_path / "repo")


@pytest.fixture
def project(git_repo: GitRepo) -> GitRepo:
    """A PEP 621 library at 0.1.0 with `example_lib/__init__.py` and one initial commit."""
    git_repo.commit(
        "chore: initial commit",
        {
            "pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0"),
            "example_lib/__init__.py": '"""Example."""\n\n__version__ = "0.1.0"\n',
        },
    )
    return git_repo
