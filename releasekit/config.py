"""One frozen Config from `[tool.releasekit]`, `RELEASEKIT_*` variables and command-line flags."""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from releasekit.errors import ConfigError
from releasekit.versioning import Level

CHANNELS = ("final", "alpha", "beta", "rc")
LEVEL_NAMES = {"major": Level.MAJOR, "minor": Level.MINOR, "patch": Level.PATCH, "none": Level.NONE}

DEFAULT_TYPES: Mapping[str, Level] = MappingProxyType(
    {
        "feat": Level.MINOR,
        "fix": Level.PATCH,
        "perf": Level.PATCH,
        "revert": Level.PATCH,
        "docs": Level.NONE,
        "chore": Level.NONE,
        "refactor": Level.NONE,
        "style": Level.NONE,
        "test": Level.NONE,
        "build": Level.NONE,
        "ci": Level.NONE,
    }
)
DEFAULT_BRANCHES: Mapping[str, str] = MappingProxyType(
    {"main": "final", "master": "final", "develop": "rc"}
)


@dataclass(frozen=True)
class VersionFile:
    """A file that carries the version, and how to find it inside."""

    path: str
    kind: Literal["toml", "assignment", "pattern"]
    key: str = "__version__"
    """Dotted TOML key, or the variable name of an assignment."""
    pattern: str = ""
    """Regex with a named group `version`, for kind == "pattern"."""


@dataclass(frozen=True)
class Repository:
    """A package index to publish to, from `[tool.releasekit.repositories.NAME]`."""

    name: str
    url: str
    username: str | None = None


@dataclass(frozen=True)
class Config:
    """Everything releasekit needs to know about a project, validated."""

    root: Path
    tag_format: str = "v{version}"
    version_files: tuple[VersionFile, ...] = ()
    changelog_file: str = "CHANGELOG.md"
    changelog_template: str | None = None
    """A Jinja2 template for one changelog section, relative to the root (None: the default)."""
    major_on_zero: bool = True
    types: Mapping[str, Level] = field(default_factory=lambda: DEFAULT_TYPES)
    branches: Mapping[str, str] = field(default_factory=lambda: DEFAULT_BRANCHES)
    commit_message: str = "chore(release): {version}"
    repository_url: str | None = None
    repositories: Mapping[str, Repository] = field(default_factory=lambda: MappingProxyType({}))
    default_repository: str | None = None

    @property
    def changelog_path(self) -> Path:
        return self.root / self.changelog_file

    @property
    def template_path(self) -> Path | None:
        return None if self.changelog_template is None else self.root / self.changelog_template

    def channel_for(self, branch: str) -> str | None:
        """The release channel of `branch`: exact names first, then glob patterns."""
        if branch in self.branches:
            return self.branches[branch]
        for pattern, channel in self.branches.items():
            if fnmatch.fnmatchcase(branch, pattern):
                return channel
        return None

    def level_of(self, commit_type: str) -> Level:
        return self.types.get(commit_type, Level.NONE)

    def format_tag(self, version: str) -> str:
        return self.tag_format.replace("{version}", version)

    def with_overrides(self, **changes: Any) -> Config:
        return replace(self, **changes)


_KEYS = (
    "tag_format",
    "version_files",
    "changelog_file",
    "changelog_template",
    "major_on_zero",
    "types",
    "branches",
    "commit_message",
    "repository_url",
    "repositories",
    "default_repository",
)
_ENV_PREFIX = "RELEASEKIT_"
_ENV_KEYS = ("tag_format", "changelog_file", "major_on_zero", "commit_message", "repository_url")


def read_pyproject(root: Path) -> dict[str, Any]:
    """`root/pyproject.toml` parsed; ConfigError when it is missing or not TOML."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise ConfigError(
            f"no pyproject.toml in {root}",
            hint="run releasekit from the project root, or pass --project-dir",
        )
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{pyproject} is not valid TOML: {exc}", hint="fix the syntax") from exc


def load_config(root: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate `[tool.releasekit]` of `root/pyproject.toml`, then `RELEASEKIT_*` env."""
    document = read_pyproject(root)
    table = document.get("tool", {}).get("releasekit", {})
    if not isinstance(table, dict):
        raise ConfigError("[tool.releasekit] must be a table")
    merged: dict[str, Any] = dict(table)
    environ = os.environ if env is None else env
    for key in _ENV_KEYS:
        value = environ.get(_ENV_PREFIX + key.upper())
        if value is not None:
            merged[key] = _parse_bool(key, value) if key == "major_on_zero" else value
    return config_from_table(root, merged, project=document.get("project", {}))


def config_from_table(
    root: Path, table: Mapping[str, Any], project: Mapping[str, Any] | None = None
) -> Config:
    """Validate one `[tool.releasekit]` table (already parsed) into a Config."""
    for key in table:
        if key not in _KEYS:
            raise ConfigError(
                f"unknown key {key!r} in [tool.releasekit]", hint=_nearest(key, _KEYS)
            )
    tag_format = _string(table, "tag_format", "v{version}")
    if tag_format.count("{version}") != 1:
        raise ConfigError(
            f"tag_format {tag_format!r} must contain {{version}} exactly once",
            hint='for example tag_format = "v{version}"',
        )
    commit_message = _string(table, "commit_message", "chore(release): {version}")
    if "{version}" not in commit_message.strip().splitlines()[0]:
        raise ConfigError(
            "commit_message must contain {version} in its first line",
            hint='for example commit_message = "chore(release): {version}"',
        )
    major_on_zero = table.get("major_on_zero", True)
    if not isinstance(major_on_zero, bool):
        raise ConfigError("major_on_zero must be true or false")
    repositories = _repositories(table.get("repositories", {}))
    default_repository = table.get("default_repository")
    if default_repository is not None and default_repository not in repositories:
        raise ConfigError(
            f"default_repository {default_repository!r} is not a [tool.releasekit.repositories] entry",
            hint=_nearest(str(default_repository), tuple(repositories)) or "add the repository",
        )
    return Config(
        root=root,
        tag_format=tag_format,
        version_files=tuple(_version_file(item) for item in _list(table, "version_files")),
        changelog_file=_string(table, "changelog_file", "CHANGELOG.md"),
        changelog_template=(
            _string(table, "changelog_template", "") if "changelog_template" in table else None
        ),
        major_on_zero=major_on_zero,
        types=_types(table.get("types", {})),
        branches=_branches(table.get("branches")),
        commit_message=commit_message,
        repository_url=_repository_url(table, project or {}),
        repositories=MappingProxyType(repositories),
        default_repository=default_repository,
    )


def _nearest(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"valid keys: {', '.join(choices)}" if choices else None


def _string(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _list(table: Mapping[str, Any], key: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list, got {type(value).__name__}")
    return value


def _parse_bool(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(
        f"{_ENV_PREFIX}{key.upper()}={value!r} is not a boolean", hint="use true or false"
    )


def _version_file(item: Any) -> VersionFile:
    """`"pkg/__init__.py"`, `"file.toml:dotted.key"`, `"conf.py:release"` or a pattern table."""
    if isinstance(item, dict):
        unknown = set(item) - {"path", "pattern", "key"}
        if unknown or "path" not in item:
            raise ConfigError(
                f"version_files entry {item!r} must have 'path' and one of 'pattern' or 'key'",
                hint='e.g. { path = "chart.yaml", pattern = "appVersion: (?P<version>\\\\S+)" }',
            )
        if "pattern" in item:
            pattern = str(item["pattern"])
            try:
                compiled = re.compile(pattern, re.MULTILINE)
            except re.error as exc:
                raise ConfigError(
                    f"version_files pattern {pattern!r} is not a regex: {exc}"
                ) from exc
            if "version" not in compiled.groupindex:
                raise ConfigError(
                    f"version_files pattern {pattern!r} needs a named group (?P<version>...)"
                )
            return VersionFile(path=str(item["path"]), kind="pattern", pattern=pattern)
        item = f"{item['path']}:{item['key']}" if "key" in item else str(item["path"])
    if not isinstance(item, str) or not item:
        raise ConfigError(f"version_files entry {item!r} must be a string or a table")
    path, _, key = item.partition(":")
    if path.endswith(".toml"):
        if not key:
            raise ConfigError(
                f"version_files entry {item!r} names a TOML file without a key",
                hint=f'write "{path}:tool.something.version"',
            )
        return VersionFile(path=path, kind="toml", key=key)
    if key and not key.isidentifier():
        raise ConfigError(f"version_files entry {item!r}: {key!r} is not a variable name")
    return VersionFile(path=path, kind="assignment", key=key or "__version__")


def _types(value: Any) -> Mapping[str, Level]:
    if not isinstance(value, dict):
        raise ConfigError("[tool.releasekit.types] must map commit types to major|minor|patch|none")
    types = dict(DEFAULT_TYPES)
    for name, level in value.items():
        if level not in LEVEL_NAMES:
            raise ConfigError(
                f"types.{name} = {level!r} is not a level",
                hint=_nearest(str(level), tuple(LEVEL_NAMES)) or "use major, minor, patch or none",
            )
        types[name] = LEVEL_NAMES[level]
    return MappingProxyType(types)


def _branches(value: Any) -> Mapping[str, str]:
    if value is None:
        return DEFAULT_BRANCHES
    if not isinstance(value, dict):
        raise ConfigError("[tool.releasekit.branches] must map branch names to channels")
    for branch, channel in value.items():
        if channel not in CHANNELS:
            raise ConfigError(
                f"branches.{branch} = {channel!r} is not a channel",
                hint=_nearest(str(channel), CHANNELS) or f"use one of {', '.join(CHANNELS)}",
            )
    return MappingProxyType(dict(value))


def _repositories(value: Any) -> dict[str, Repository]:
    if not isinstance(value, dict):
        raise ConfigError("[tool.releasekit.repositories] must be a table of tables")
    repositories: dict[str, Repository] = {}
    for name, entry in value.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ConfigError(
                f'[tool.releasekit.repositories.{name}] needs url = "https://..."',
                hint='e.g. url = "https://pypi.internal.example/legacy/"',
            )
        for key in entry:
            if key not in ("url", "username"):
                raise ConfigError(
                    f"unknown key {key!r} in [tool.releasekit.repositories.{name}]",
                    hint=_nearest(key, ("url", "username")),
                )
        username = entry.get("username")
        repositories[name] = Repository(
            name=name, url=entry["url"], username=str(username) if username else None
        )
    return repositories


def _repository_url(table: Mapping[str, Any], project: Mapping[str, Any]) -> str | None:
    """The configured URL, else [project.urls] Repository/Source/Homepage."""
    value = table.get("repository_url")
    if value is not None:
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ConfigError(f"repository_url {value!r} must be an http(s) URL")
        return value.rstrip("/")
    urls = project.get("urls", {}) if isinstance(project, dict) else {}
    for key in ("Repository", "repository", "Source", "source", "Homepage", "homepage"):
        url = urls.get(key) if isinstance(urls, dict) else None
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return url.rstrip("/").removesuffix(".git")
    return None
