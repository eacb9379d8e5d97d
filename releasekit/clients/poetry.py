"""poetry: `poetry config repositories.NAME` and `http-basic.NAME`, and a project's source block.

Settings go through poetry's own CLI (it picks keyring or auth.toml itself); the current
settings are read from poetry's files to skip what is already set. The password is
fed on stdin, where `poetry config http-basic.NAME USER` asks for it, so it never appears in
a process list. A token is stored as http-basic with username `__token__`: poetry reads
`pypi-token.NAME` only when publishing, http-basic also when installing.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from releasekit.clients.model import (
    Command,
    Credentials,
    IndexUrls,
    Mode,
    SetupOptions,
    ToolPlan,
    config_home,
)


def poetry_source_block(name: str, url: str, mode: Mode) -> str:
    """The `[[tool.poetry.source]]` block a project needs for this index."""
    priority = "primary" if mode == "primary" else "explicit"
    block = f'[[tool.poetry.source]]\nname = "{name}"\nurl = "{url}"\npriority = "{priority}"\n'
    if mode == "extra":
        block += (
            "\n[tool.poetry.dependencies]\n"
            f'your-private-package = {{ version = "*", source = "{name}" }}\n'
        )
    return block


def plan_poetry(
    options: SetupOptions, urls: IndexUrls, credentials: Credentials | None, env: Mapping[str, str]
) -> ToolPlan:
    """poetry config commands (when poetry is installed) and the project source block."""
    name = options.name
    poetry = shutil.which("poetry", path=env.get("PATH"))
    repository = ("config", f"repositories.{name}", urls.upload)
    commands: list[Command] = []
    notes: list[str] = []
    manual: tuple[str, ...] = ()
    if poetry is None:
        steps = [f"poetry config repositories.{name} {urls.upload}"]
        if credentials is not None:
            steps.append(f"poetry config http-basic.{name} {credentials.username}  (asks for it)")
        manual = tuple(
            f"poetry is not on PATH; once it is installed, run: {step}" for step in steps
        )
    else:
        if _configured_url(name, env) != urls.upload:
            commands.append(Command((poetry, *repository)))
        if credentials is not None and not _stored_credentials_match(name, credentials, env):
            argv = (poetry, "config", f"http-basic.{name}", credentials.username)
            commands.append(Command(argv, stdin=credentials.password + "\n"))
    if options.ca_cert is not None:
        cert = ("config", f"certificates.{name}.cert", str(options.ca_cert))
        if poetry is None:
            manual = (*manual, f"poetry is not on PATH; once it is, run: poetry {' '.join(cert)}")
        elif _configured_cert(name, env) != str(options.ca_cert):
            commands.append(Command((poetry, *cert)))
    if credentials is None:
        notes.append(
            f"credentials for poetry: poetry config http-basic.{name} USER (asks for the "
            f"password), or POETRY_HTTP_BASIC_{_env_name(name)}_USERNAME/_PASSWORD in CI"
        )
    notes.append(
        "add this to each project's pyproject.toml (or: poetry source add --priority="
        f"{'primary' if options.mode == 'primary' else 'explicit'} {name} {urls.simple}):\n"
        + poetry_source_block(name, urls.simple, options.mode)
    )
    if options.mode == "extra":
        notes.append(
            f"explicit: only dependencies pinned with source = {name!r} (poetry add PACKAGE "
            f"--source {name}) come from it. Avoid priority supplemental: it is asked only for "
            "names PyPI lacks, so a PyPI upload of a private name would win (dependency confusion)"
        )
    return ToolPlan("poetry", (), tuple(commands), tuple(notes), manual=manual)


def _configured_url(name: str, env: Mapping[str, str]) -> str | None:
    """The URL poetry's config.toml holds for repositories.NAME (None: unset or unknown)."""
    value = _poetry_file(env, "config.toml").get("repositories", {}).get(name, {}).get("url")
    return value if isinstance(value, str) else None


def _configured_cert(name: str, env: Mapping[str, str]) -> str | None:
    """The CA bundle poetry's config.toml holds for certificates.NAME.cert."""
    value = _poetry_file(env, "config.toml").get("certificates", {}).get(name, {}).get("cert")
    return value if isinstance(value, str) else None


def _stored_credentials_match(name: str, credentials: Credentials, env: Mapping[str, str]) -> bool:
    """Whether poetry's auth.toml already holds these credentials (unknown with keyring: no)."""
    stored = _poetry_file(env, "auth.toml").get("http-basic", {}).get(name, {})
    return bool(
        stored.get("username") == credentials.username
        and stored.get("password") == credentials.password
    )


def _poetry_file(env: Mapping[str, str], filename: str) -> dict[str, Any]:
    """A file of poetry's config directory, read directly: even `poetry config KEY` (a read)
    creates an empty config.toml, and a dry run must change nothing. When the file is elsewhere
    (macOS), nothing matches and setup just runs the command again, which is harmless."""
    directory = env.get("POETRY_CONFIG_DIR")
    path = Path(directory) if directory else config_home(env) / "pypoetry"
    try:
        return tomllib.loads((path / filename).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())
