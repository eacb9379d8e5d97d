"""The project's own entry in `uv.lock` / `pdm.lock`, kept in step with its version.

A release that changes `version` in pyproject.toml leaves `uv lock --check` failing on the
tagged commit unless the lockfile's entry for the project itself changes too (the most repeated
complaint against release-please and python-semantic-release). The entry is edited by key with
tomlkit, offline: no resolution, no other line of the file changes.

uv records the project as `[[package]]` with `source = { editable = "." }` (or `virtual`);
pdm does not list the project in its lock (its `content_hash` covers dependencies, not the
version) unless it depends on itself as an editable path, `path = "."`, which is handled alike.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from releasekit.errors import ConfigError

LOCKFILES = ("uv.lock", "pdm.lock")


def canonical_name(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lockfile_text_edit(text: str, relpath: str, name: str, new_version: str) -> str:
    """`text` of a lockfile with the project's own `version` set to `new_version`.

    Returns `text` unchanged when the lockfile has no entry for the project itself.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{relpath} is not valid TOML: {exc}", hint=_relock_hint(relpath)
        ) from exc
    packages = data.get("package", [])
    indexes = [
        i
        for i, entry in enumerate(packages if isinstance(packages, list) else [])
        if _is_own_entry(entry, name)
    ]
    if not indexes or all(packages[i].get("version") == new_version for i in indexes):
        return text
    import tomlkit  # only a release or bump of a project with a lockfile pays for it

    document = tomlkit.parse(text)
    for i in indexes:
        document["package"][i]["version"] = new_version
    after = tomlkit.dumps(document)
    for i in indexes:  # the one value changed, nothing else: check before anything is written
        packages[i]["version"] = new_version
    if tomllib.loads(after) != data:
        raise ConfigError(
            f"editing the {name} entry of {relpath} would change other values; nothing was written",
            hint=f"this is a releasekit bug, please report it; meanwhile {_relock_hint(relpath)}",
        )
    return after


def is_git_ignored(root: Path, relpath: str) -> bool:
    """True when git ignores `relpath` (it cannot be part of a release commit then)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "check-ignore", "--quiet", "--", relpath],
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return result.returncode == 0


def _is_own_entry(entry: Any, name: str) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return False
    if canonical_name(entry["name"]) != canonical_name(name):
        return False
    source = entry.get("source")
    if isinstance(source, dict):  # uv
        return source.get("editable") == "." or source.get("virtual") == "."
    return entry.get("path") == "."  # pdm, an editable self-dependency


def _relock_hint(relpath: str) -> str:
    tool = relpath.partition(".")[0]
    return f"regenerate it with `{tool} lock`"
