"""Plan and apply `client setup`: one ToolPlan per client, then backups, writes and commands.

Planning reads files (and asks poetry for its current setting) but changes nothing, so a dry run
is the plan rendered. Applying backs up each file it replaces, writes atomically, and refuses
when a file changed after it was planned.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from releasekit.atomic import SERVED, KeepMode, write_atomic
from releasekit.clients.model import (
    ALL_TOOLS,
    Credentials,
    IndexUrls,
    SetupOptions,
    SetupPlan,
    ToolPlan,
    display_path,
    index_urls,
    read_credentials,
    read_text,
    redact,
)
from releasekit.clients.pip import plan_pip
from releasekit.clients.poetry import plan_poetry
from releasekit.clients.pypirc import plan_pypirc
from releasekit.clients.uv import plan_uv
from releasekit.errors import ConfigError, ReleaseError

Planner = Callable[[SetupOptions, IndexUrls, Credentials | None, Mapping[str, str]], ToolPlan]
_PLANNERS: dict[str, Planner] = {
    "pip": plan_pip,
    "poetry": plan_poetry,
    "uv": plan_uv,
    "pypirc": plan_pypirc,
}
# The name becomes an INI section, a TOML string, a poetry key and part of an env variable.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class AppliedSetup:
    """What applying a plan did: files written (with their backup, if any) and commands run."""

    written: tuple[tuple[str, str | None], ...]
    ran: tuple[str, ...]


def plan_client_setup(options: SetupOptions, env: Mapping[str, str] | None = None) -> SetupPlan:
    """Every file change and command needed to point the chosen clients at the index."""
    environ = dict(os.environ if env is None else env)
    if not _NAME.fullmatch(options.name):
        raise ConfigError(
            f"index name {options.name!r} is not usable in every client's config",
            hint="use letters, digits, '.', '_' and '-', e.g. --name private-pypi",
        )
    if options.password_env and options.token_env:
        raise ConfigError(
            "--password-env and --token-env exclude each other", hint="pass only one of them"
        )
    urls = index_urls(options.index_url, options.index)
    credentials = read_credentials(options, environ)
    tools = tuple(
        _PLANNERS[tool](options, urls, credentials, environ)
        for tool in ALL_TOOLS
        if tool in options.tools
    )
    secrets = (credentials.password,) if credentials else ()
    return SetupPlan(urls, tools, secrets)


def apply_client_setup(plan: SetupPlan, env: Mapping[str, str] | None = None) -> AppliedSetup:
    """Carry out `plan`: back up and write each file, then run each command."""
    environ = dict(os.environ if env is None else env)
    for change in plan.changes:
        if read_text(change.path) != change.before:
            raise ConfigError(
                f"{change.display} changed while releasekit was planning",
                hint="run the command again",
            )
    written = []
    for change in plan.changes:
        backup = _backup(change.path) if change.before is not None else None
        _write_atomically(change.path, change.after, change.mode)
        written.append((change.display, display_path(backup, environ) if backup else None))
    ran = []
    for command in plan.commands:
        shown = command.display(plan.secrets)
        try:
            result = subprocess.run(
                command.argv,
                input=command.stdin,
                env=environ,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ReleaseError(f"`{shown}` could not run: {exc.__class__.__name__}") from None
        if result.returncode != 0:
            output = redact((result.stderr or result.stdout).strip(), plan.secrets)
            raise ReleaseError(
                f"`{shown}` failed (exit {result.returncode}): {output[-500:]}",
                hint="fix the problem above and run the same command again; done steps are kept",
            )
        ran.append(shown)
    return AppliedSetup(tuple(written), tuple(ran))


def _backup(path: Path) -> Path:
    """A copy of `path` as PATH.releasekit-bak (timestamped when that exists), same mode."""
    data = path.read_bytes()
    mode = path.stat().st_mode & 0o777
    candidate = path.with_name(path.name + ".releasekit-bak")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    for attempt in range(1000):
        try:
            # Created 0600 and exclusive: a backup of a secret file is never readable by others.
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            candidate = path.with_name(f"{path.name}.releasekit-bak.{stamp}.{attempt}")
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        candidate.chmod(mode)
        return candidate
    raise ReleaseError(f"cannot find a free backup name for {path}", hint="remove old backups")


def _write_atomically(path: Path, text: str, mode: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode("utf-8"), mode=KeepMode(SERVED) if mode is None else mode)
