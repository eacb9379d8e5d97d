"""The clean-install check: install what users install, then use it.

Builds the sdist and the wheel (the wheel from the sdist), installs the wheel into a fresh
virtualenv WITHOUT extras (pip resolves the declared dependencies) and runs `--help` of every
command (walking the click tree, so new commands are covered), a real `version --print` and
`release --dry-run` on a git repository, `client setup --dry-run` and `client check`; a server
command must refuse with the install line. Then it adds the `server` extra, starts the index on
127.0.0.1 (OS-assigned port), uploads releasekit's own files with twine and installs
them with pip from that index into another fresh virtualenv.

    python scripts/clean_install_check.py [--keep]

Only the standard library here: `--walk-help` runs this file inside the fresh virtualenv.
"""

from __future__ import annotations

import contextlib
import io
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "clean-check", "clean-check-password-not-secret"
INSTALL_LINE = "pip install 'releasekit[server]'"
_LISTENING = re.compile(r"(?:running on|listening at:?) http://127\.0\.0\.1:(\d+)", re.IGNORECASE)
_STARTED = time.monotonic()


class CheckFailed(Exception):
    """A step of the check failed; the message holds the command and its output."""


def step(text: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {text}", flush=True)


def run(
    *args: str | Path, env: dict[str, str], cwd: Path | None = None, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    """Run a command; raise CheckFailed with its output unless it exits `expect`."""
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != expect:
        raise CheckFailed(
            f"`{' '.join(str(a) for a in args)}` exited {result.returncode}, expected {expect}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--walk-help"]:
        return walk_help()
    workdir = Path(tempfile.mkdtemp(prefix="releasekit-clean-install-"))
    try:
        check(workdir)
    except CheckFailed as exc:
        print(f"clean-install check FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if "--keep" in argv:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    step("clean-install check passed")
    return 0


def check(workdir: Path) -> None:
    env = _environment(workdir)
    dist = workdir / "dist"
    step("building the sdist, and the wheel from the sdist (python -m build --no-isolation)")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT, env=env)
    (wheel,) = dist.glob("releasekit-*.whl")
    (sdist,) = dist.glob("releasekit-*.tar.gz")

    plain = _virtualenv(workdir / "plain", env)
    step(f"installing {wheel.name} WITHOUT extras into a fresh virtualenv (resolving its deps)")
    _pip(plain, env, "install", wheel)
    releasekit = str(plain / "bin" / "releasekit")
    _walk(plain, env)
    refused = run(releasekit, "server", "run", workdir / "packages", env=env, expect=1)
    if refused.stderr.strip().splitlines() != [
        f"error: `releasekit server` needs the server extra (bcrypt is not installed): {INSTALL_LINE}"
    ]:
        raise CheckFailed(f"`server run` without the extra said:\n{refused.stderr}")
    step("`releasekit server run` without the extra: one error line naming the install")

    repo = _git_repository(workdir / "lib", env)
    printed = run(releasekit, "version", "--print", cwd=repo, env=env).stdout.strip()
    if printed != "0.2.0":
        raise CheckFailed(f"`version --print` printed {printed!r}, expected '0.2.0'")
    before = _git(repo, env, "status", "--porcelain"), _git(repo, env, "tag")
    plan = run(releasekit, "release", "--dry-run", cwd=repo, env=env).stdout
    if (
        "0.2.0" not in plan
        or (_git(repo, env, "status", "--porcelain"), _git(repo, env, "tag")) != before
    ):
        raise CheckFailed(
            f"`release --dry-run` planned something else or changed the repository:\n{plan}"
        )
    step("`version --print` -> 0.2.0 and `release --dry-run` on a real git repository")
    run(
        releasekit,
        "client",
        "setup",
        "--index-url",
        "http://127.0.0.1:9/simple/",
        "--dry-run",
        env=env,
    )
    unreachable = run(
        releasekit,
        "client",
        "check",
        "--index-url",
        "http://127.0.0.1:9/simple/",
        env=env,
        expect=1,
    )
    if not unreachable.stderr.startswith("error: cannot reach"):
        raise CheckFailed(f"`client check` of a closed port said:\n{unreachable.stderr}")
    step("`client setup --dry-run` and `client check` (a closed port: a clear error)")

    step("adding the server extra")
    _pip(plain, env, "install", f"{wheel}[server]")
    _walk(plain, env)
    with _index(workdir, releasekit, env) as url:
        run(releasekit, "client", "check", "--index-url", f"{url}/simple/", env=env)
        # twine as installed with releasekit (`releasekit publish` uploads through it too, but
        # reads the project's git state: the check must not depend on this worktree's).
        upload_env = {**env, "TWINE_USERNAME": USER, "TWINE_PASSWORD": PASSWORD}
        twine = plain / "bin" / "twine"
        run(
            twine,
            "upload",
            "--non-interactive",
            "--repository-url",
            f"{url}/",
            sdist,
            wheel,
            env=upload_env,
        )
        step(f"uploaded {sdist.name} and {wheel.name} with twine")
        consumer = _virtualenv(workdir / "consumer", env)
        # Only our index: no machine pip config, no find-links, no cache (--no-deps: its
        # dependencies are not on this index, and were resolved above).
        index_env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
        index_env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1"}
        index_env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        got = _pip(
            consumer,
            index_env,
            "install",
            "--no-deps",
            "--index-url",
            f"{url}/simple/",
            "releasekit",
        )
        if f"Looking in indexes: {url}/simple/" not in got.stdout or wheel.name not in got.stdout:
            raise CheckFailed(f"pip did not install releasekit from the index:\n{got.stdout}")
        version = run(
            consumer / "bin" / "python",
            "-c",
            "import releasekit; print(releasekit.__version__)",
            env=env,
        )
        step(f"pip installed releasekit {version.stdout.strip()} from the index")


def walk_help() -> int:
    """(Inside the virtualenv.) `--help` of every command of the click tree, in process."""
    import click

    from releasekit.cli import cli

    paths: list[list[str]] = []

    def visit(command: click.Command, path: list[str]) -> None:
        paths.append(path)
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=path[-1] if path else "releasekit")
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    visit(sub, [*path, name])

    visit(cli, [])
    failed = []
    for path in paths:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = cli.main([*path, "--help"], prog_name="releasekit", standalone_mode=False)
        except Exception as exc:  # report every failing command, then fail
            failed.append(f"releasekit {' '.join(path)} --help: {exc.__class__.__name__}: {exc}")
            continue
        if code not in (0, None) or "Usage:" not in out.getvalue():
            failed.append(f"releasekit {' '.join(path)} --help exited {code}:\n{out.getvalue()}")
    print(f"{len(paths)} commands, {len(failed)} failed")
    for line in failed:
        print(line)
    return 1 if failed else 0


def _walk(venv: Path, env: dict[str, str]) -> None:
    run(venv / "bin" / "releasekit", "--help", env=env)  # the console script itself
    result = run(venv / "bin" / "python", Path(__file__), "--walk-help", env=env)
    step(f"--help of every command: {result.stdout.splitlines()[0]}")


def _environment(workdir: Path) -> dict[str, str]:
    home = workdir / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELEASEKIT_", "TWINE_"))}
    env |= {
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Clean Check",
        "GIT_AUTHOR_EMAIL": "clean@example.com",
        "GIT_COMMITTER_NAME": "Clean Check",
        "GIT_COMMITTER_EMAIL": "clean@example.com",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    # The invoking user's pip cache, not the isolated HOME's: a warm cache keeps this fast.
    env.setdefault("PIP_CACHE_DIR", str(Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "pip"))
    return env


def _virtualenv(path: Path, env: dict[str, str]) -> Path:
    """A fresh virtualenv without pip: this interpreter's pip installs into it (--python)."""
    run(sys.executable, "-m", "venv", "--without-pip", path, env=env)
    return path


def _pip(venv: Path, env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", *args, env=env)


def _git(repo: Path, env: dict[str, str], *args: str) -> str:
    return run("git", *args, cwd=repo, env=env).stdout.strip()


def _git_repository(repo: Path, env: dict[str, str]) -> Path:
    """A library released as 0.1.0, with one feature since: the next version is 0.2.0."""
    repo.mkdir()
    _git(repo, env, "init", "--quiet", "-b", "main")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "clean-check-lib"\nversion = "0.1.0"\n', encoding="utf-8"
    )
    _git(repo, env, "add", "--all")
    _git(repo, env, "commit", "--quiet", "-m", "chore: scaffold the library")
    _git(repo, env, "tag", "-a", "v0.1.0", "-m", "0.1.0")
    (repo / "lib.py").write_text("def greet() -> str:\n    return 'hi'\n", encoding="utf-8")
    _git(repo, env, "add", "--all")
    _git(repo, env, "commit", "--quiet", "-m", "feat: greet")
    return repo


@contextlib.contextmanager
def _index(workdir: Path, releasekit: str, env: dict[str, str]) -> Iterator[str]:
    """`releasekit server run` on 127.0.0.1 with an OS-assigned port, one upload user."""
    htpasswd = workdir / "htpasswd"
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
        env=env,
        text=True,
        capture_output=True,
        check=True,
    )
    log_path = workdir / "index.log"
    command = [releasekit, "server", "run", str(workdir / "packages"), "-i", "127.0.0.1", "-p", "0"]
    command += ["-P", str(htpasswd), "-a", "update"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = _wait_until_serving(process, log_path)
        step(f"index running at {url} (pid {process.pid})")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + 60
    url = None
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            raise CheckFailed(f"the index did not start:\n{log_path.read_text(errors='replace')}")
        if url is None and (match := _LISTENING.search(log_path.read_text(errors="replace"))):
            url = f"http://127.0.0.1:{match.group(1)}"
        if url is not None:
            health = f"{url}/health"
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as answer:  # noqa: S310  (our loopback URL)
                if answer.status == 200:
                    return url
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
