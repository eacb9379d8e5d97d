"""`make demo`: an example Poetry-style library, released twice by releasekit, in a temp directory.

Shows the dry-run plan, makes the release (files, changelog, commit, annotated tag), prints the
CHANGELOG and the tag; then a fix lands and the second release follows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
PYPROJECT = """\
[tool.poetry]
name = "acme-greetings"
version = "0.1.0"
description = "Greetings for the whole company"
authors = ["Acme Platform Team <platform@acme.example>"]
packages = [{ include = "acme_greetings" }]

[tool.poetry.dependencies]
python = ">=3.11"

[tool.releasekit]
repository_url = "https://git.acme.example/platform/acme-greetings"

[build-system]
requires = ["poetry-core>=2.0"]
build-backend = "poetry.core.masonry.api"
"""
MODULE = '''\
"""Greetings for the whole company."""

__version__ = "0.1.0"


def greet(name: str) -> str:
    return f"Hello, {name}!"
'''


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(*args: str, cwd: Path, check: bool = True) -> str:
    """Run a command, echo it, show its output."""
    print(f"$ {' '.join(args)}", flush=True)
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    output = (result.stdout + result.stderr).rstrip()
    if output:
        print(output, flush=True)
    if check and result.returncode != 0:
        raise SystemExit(f"demo step failed (exit {result.returncode}): {' '.join(args)}")
    return result.stdout


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit(lib: Path, message: str, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        (lib / relpath).parent.mkdir(parents=True, exist_ok=True)
        (lib / relpath).write_text(text, encoding="utf-8")
    git(lib, "add", "--all")
    git(lib, "commit", "--quiet", "-m", message)
    print(f"  committed: {message.splitlines()[0]}", flush=True)


def create_library(lib: Path) -> None:
    lib.mkdir(parents=True)
    git(lib, "init", "--quiet", "-b", "main")
    git(lib, "config", "user.name", "Demo Maintainer")
    git(lib, "config", "user.email", "maintainer@acme.example")
    git(lib, "config", "commit.gpgsign", "false")
    git(lib, "config", "tag.gpgsign", "false")
    commit(
        lib,
        "chore: scaffold the library",
        {
            "pyproject.toml": PYPROJECT,
            "acme_greetings/__init__.py": MODULE,
            "README.md": "# acme-greetings\n",
        },
    )
    commit(
        lib,
        "feat: greet people by name",
        {"acme_greetings/__init__.py": MODULE + "\n\ndef wave() -> str:\n    return 'o/'\n"},
    )
    commit(
        lib, "docs: explain the greeting API", {"README.md": "# acme-greetings\n\n`greet(name)`\n"}
    )


def release(lib: Path, releasekit: str) -> None:
    run(releasekit, "version", "--print", cwd=lib)
    run(releasekit, "release", "--dry-run", cwd=lib)
    run(releasekit, "release", cwd=lib)
    tag = git(lib, "describe", "--tags", "--abbrev=0")
    run("git", "show", "--no-patch", "--format=%H %s", tag, cwd=lib)
    run("git", "tag", "-n9", "--list", tag, cwd=lib)


def main() -> None:
    releasekit = str(BIN / "releasekit")
    workdir = Path(tempfile.mkdtemp(prefix="releasekit-demo-"))
    keep = os.environ.get("RELEASEKIT_DEMO_KEEP") == "1"
    try:
        lib = workdir / "acme-greetings"
        banner(f"An example Poetry library in {lib}")
        create_library(lib)
        banner("First release: the version declared in pyproject.toml")
        release(lib, releasekit)
        banner("A fix and a feature land; the second release follows the commits")
        commit(
            lib,
            "fix: strip whitespace around names",
            {"acme_greetings/__init__.py": MODULE.replace("{name}", "{name.strip()}")},
        )
        commit(
            lib,
            "feat(cli): add a shouting greeting\n\nLouder for the open-plan office.",
            {
                "acme_greetings/shout.py": "def shout(name: str) -> str:\n    return f'HELLO, {name.upper()}!'\n"
            },
        )
        release(lib, releasekit)
        banner("Nothing new: releasekit says so and exits 0")
        run(releasekit, "release", cwd=lib)
        banner("CHANGELOG.md")
        print((lib / "CHANGELOG.md").read_text(encoding="utf-8"))
        run("git", "log", "--oneline", "--decorate", cwd=lib)
    finally:
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
