"""uv: an `[[index]]` in the user uv.toml, or `[[tool.uv.index]]` in a project's pyproject.toml.

Edited with tomlkit so every other byte of the file stays. Primary mode marks the index
`default = true` (it replaces PyPI). Extra mode in a project marks it `explicit = true`, so only
packages pinned to it in `[tool.uv.sources]` come from it; in the user uv.toml an explicit index
would never be used (sources live in projects), so there it is a plain index, which uv's default
`first-index` strategy searches before PyPI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Table

from releasekit.clients.model import (
    Credentials,
    FileChange,
    IndexUrls,
    SetupOptions,
    ToolPlan,
    config_home,
    display_path,
    read_text,
)
from releasekit.errors import ConfigError


def uv_config_path(env: Mapping[str, str]) -> Path:
    """The user uv.toml uv reads: $XDG_CONFIG_HOME/uv/uv.toml or ~/.config/uv/uv.toml."""
    return config_home(env) / "uv" / "uv.toml"


def uv_env_name(name: str) -> str:
    """The NAME in UV_INDEX_<NAME>_USERNAME: upper case, anything else than A-Z0-9 as `_`."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def plan_uv(
    options: SetupOptions, urls: IndexUrls, credentials: Credentials | None, env: Mapping[str, str]
) -> ToolPlan:
    """The uv index entry, and how uv gets the credentials."""
    if options.project is not None:
        path = options.project / "pyproject.toml"
        before = read_text(path)
        if before is None:
            raise ConfigError(
                f"{path} does not exist",
                hint="pass --project DIR of a project, or leave --project out for the user uv.toml",
            )
    else:
        path = uv_config_path(env)
        before = read_text(path)
    display = display_path(path, env)
    doc = _parse(before or "", display)
    container = doc if options.project is None else _uv_table(doc)
    wanted: dict[str, Any] = {"name": options.name, "url": urls.simple}
    if options.mode == "primary":
        wanted["default"] = True
    elif options.project is not None:
        wanted["explicit"] = True
    warnings = _set_index(container, wanted)
    after = tomlkit.dumps(doc)
    changes = (FileChange(path, display, before, after),) if after != (before or "") else ()
    notes = [_mode_note(options)]
    variable = uv_env_name(options.name)
    if credentials is not None:
        notes.append(
            f"uv reads the credentials from the environment: export "
            f"UV_INDEX_{variable}_USERNAME={credentials.username} "
            f'UV_INDEX_{variable}_PASSWORD="${credentials.source}" (or from ~/.netrc)'
        )
    else:
        notes.append(
            f"credentials for uv: UV_INDEX_{variable}_USERNAME / UV_INDEX_{variable}_PASSWORD, "
            "~/.netrc, or keyring with --keyring-provider subprocess"
        )
    if options.ca_cert is not None:
        # uv has no per-index CA setting: it reads a bundle from SSL_CERT_FILE.
        notes.append(
            f"uv trusts the index's CA through the environment: export "
            f"SSL_CERT_FILE={options.ca_cert} (or add it to the system store and set "
            "UV_NATIVE_TLS=1)"
        )
    return ToolPlan("uv", changes, (), tuple(notes), tuple(warnings))


def _mode_note(options: SetupOptions) -> str:
    if options.mode == "primary":
        return "default = true: uv installs only from this index (it replaces PyPI)"
    if options.project is not None:
        return (
            f"explicit = true: only packages pinned to it are taken from it; pin each private "
            f'package in pyproject.toml: [tool.uv.sources] PACKAGE = {{ index = "{options.name}" }}'
        )
    return (
        "uv searches this index before PyPI and never takes a name it holds from PyPI "
        "(index-strategy first-index, the default; unsafe-best-match would undo that)"
    )


def _parse(text: str, display: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(
            f"{display} is not valid TOML ({exc})", hint=f"fix {display} and run again"
        ) from None


def _uv_table(doc: tomlkit.TOMLDocument) -> Table:
    tool = doc.get("tool")
    if tool is None:
        tool = tomlkit.table(is_super_table=True)
        doc["tool"] = tool
    uv = tool.get("uv")
    if uv is None:
        uv = tomlkit.table()
        tool["uv"] = uv
    if not isinstance(tool, Table) or not isinstance(uv, Table):
        raise ConfigError("[tool.uv] in pyproject.toml is not a table", hint="fix pyproject.toml")
    return uv


def _set_index(container: Any, wanted: dict[str, Any]) -> list[str]:
    """Add or update the index named wanted["name"]; warnings about the other indexes."""
    indexes = container.get("index")
    if indexes is None:
        indexes = tomlkit.aot()
        container.append("index", indexes)
    if not isinstance(indexes, AoT):
        raise ConfigError("`index` is not an array of tables", hint="write it as [[index]] entries")
    warnings = [
        f"index {entry.get('name')!r} is also default = true; uv uses the first default it reads"
        for entry in indexes
        if entry.get("name") != wanted["name"] and entry.get("default") and wanted.get("default")
    ]
    for entry in indexes:
        if entry.get("name") == wanted["name"]:
            for key in ("url", "default", "explicit"):
                if key not in wanted:
                    entry.pop(key, None)
                elif entry.get(key) != wanted[key]:
                    entry[key] = wanted[key]
            return warnings
    table = tomlkit.table()
    table.update(wanted)
    indexes.append(table)
    return warnings
