"""`make demo`: the whole job on an embedded default, in a temporary directory.

Starts the bundled index on a free loopback port (temporary storage, one upload user), creates an
example Poetry library with a few conventional commits, shows the dry-run plan, releases and
publishes it, installs it with pip into a fresh virtualenv from the index and imports it; then a
fix lands, the second release follows and pip upgrades to it. The index is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent
USER, PASSWORD = "demo-publisher", "demo-password-not-secret"
PYPROJECT = """\
[tool.poetry]
name = "acme-greetings"
version = "0.1.0"
description = "Greetings for the whole company"
readme = "README.md"
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


@contextmanager
def index_server(workdir: Path, releasekit: str) -> Iterator[str]:
    """The bundled index on a free port of 127.0.0.1, with one upload user; stopped on exit."""
    packages, htpasswd = workdir / "packages", workdir / "htpasswd"
    subprocess.run(
        [
            releasekit,
            "server",
            "user",
            "add",
            USER,
            "--role",
            "upload",
            "--password-stdin",
            "-P",
            str(htpasswd),
        ],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    log = (workdir / "index.log").open("wb")
    command = [
        releasekit,
        "server",
        "run",
        str(packages),
        "-p",
        str(port),
        "-P",
        str(htpasswd),
        "-a",
        "update",
    ]
    print(f"$ {' '.join(command)}", flush=True)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the index exited:\n{(workdir / 'index.log').read_text()}")
            try:
                with urllib.request.urlopen(url + "health", timeout=1):  # noqa: S310  (our loopback URL)
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the index did not answer /health within 30 s") from None
                time.sleep(0.1)
        print(f"  index ready at {url} (pid {process.pid})", flush=True)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        print(f"  index stopped (pid {process.pid})", flush=True)


def release(lib: Path, releasekit: str, index_url: str) -> None:
    publish = ["--publish", "--repository", index_url, "--no-isolation"]
    run(releasekit, "version", "--print", cwd=lib)
    run(releasekit, "release", "--dry-run", *publish, cwd=lib)
    run(releasekit, "release", *publish, cwd=lib)
    tag = git(lib, "describe", "--tags", "--abbrev=0")
    run("git", "tag", "-n9", "--list", tag, cwd=lib)


def install(venv: Path, index_url: str, *extra: str) -> None:
    python = str(venv / "bin" / "python")
    pip = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-cache-dir",
        "--disable-pip-version-check",
    ]
    run(*pip, "--index-url", index_url + "simple/", *extra, "acme-greetings", cwd=venv)
    code = "import acme_greetings; print('acme_greetings', acme_greetings.__version__, acme_greetings.greet('  world  '))"
    run(python, "-c", code, cwd=venv)


def main() -> None:
    releasekit = str(BIN / "releasekit")
    workdir = Path(tempfile.mkdtemp(prefix="releasekit-demo-"))
    keep = os.environ.get("RELEASEKIT_DEMO_KEEP") == "1"
    os.environ.update(RELEASEKIT_USERNAME=USER, RELEASEKIT_PASSWORD=PASSWORD)
    try:
        banner("The bundled index, on a free loopback port with temporary storage")
        with index_server(workdir, releasekit) as index_url:
            lib = workdir / "acme-greetings"
            banner(f"An example Poetry library in {lib}")
            create_library(lib)
            banner("First release: the declared version, built, tagged and published")
            release(lib, releasekit, index_url)
            banner("pip installs it from the index into a fresh virtualenv")
            venv = workdir / "venv"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            install(venv, index_url)
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
            release(lib, releasekit, index_url)
            banner("pip upgrades to it")
            install(venv, index_url, "--upgrade")
            banner("Nothing new: releasekit says so and exits 0")
            run(releasekit, "release", "--publish", "--repository", index_url, cwd=lib)
            banner("CHANGELOG.md")
            print((lib / "CHANGELOG.md").read_text(encoding="utf-8"))
            run("git", "log", "--oneline", "--decorate", cwd=lib)
            run(
                "curl",
                "-s",
                "-H",
                "Accept: application/vnd.pypi.simple.v1+json",
                index_url + "simple/acme-greetings/",
                cwd=lib,
                check=False,
            )
    finally:
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
