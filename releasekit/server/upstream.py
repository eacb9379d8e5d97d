"""An index's upstream: a PyPI-compatible index read through and cached, off by default.

The settings are the `upstream` object of the index's registry entry (indexes.py keeps it
verbatim; this module parses and checks it):

    {"url": "https://pypi.org/simple/", "cooldown": 604800, "reserve": ["aegis-*"],
     "offline": false, "ttl": 600, "allow_hosts": ["files.pythonhosted.org"],
     "timeout": 30, "max_page_size": 33554432, "max_file_size": 1073741824}

The rules (docs/upstream.md): a project present in the index or in any of its bases never comes
from upstream; a name matching a reserved glob is a 404 and never asked upstream; only files
uploaded upstream more than `cooldown` seconds ago (PEP 700 `upload-time`) are offered.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from releasekit.errors import IndexServerError
from releasekit.server.indexes import IndexConfig, config_for, read_registry, update_index
from releasekit.server.storage import Storage

DEFAULT_COOLDOWN = 7 * 86400
DEFAULT_TTL = 600
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_PAGE = 32 * 1024 * 1024
DEFAULT_MAX_FILE = 1024 * 1024 * 1024
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,9})\s*([smhdw]?)")
_PATTERN = re.compile(r"[A-Za-z0-9._*?-]{1,100}")
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:\d{1,5})?")


@dataclass(frozen=True)
class UpstreamConfig:
    """One index's upstream, parsed and checked."""

    url: str
    cooldown: int = DEFAULT_COOLDOWN  # seconds a file must have been public upstream
    reserve: tuple[str, ...] = ()  # normalized globs never asked upstream
    offline: bool = False  # serve only what is cached, never contact upstream
    ttl: int = DEFAULT_TTL  # seconds a cached project page is fresh
    allow_hosts: tuple[str, ...] = ()  # hosts file links may name besides the url's own
    timeout: float = DEFAULT_TIMEOUT  # whole-page deadline (a file gets ten times this)
    max_page_size: int = DEFAULT_MAX_PAGE
    max_file_size: int = DEFAULT_MAX_FILE

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "cooldown": self.cooldown,
            "reserve": list(self.reserve),
            "offline": self.offline,
            "ttl": self.ttl,
            "allow_hosts": list(self.allow_hosts),
            "timeout": self.timeout,
            "max_page_size": self.max_page_size,
            "max_file_size": self.max_file_size,
        }

    @property
    def hosts(self) -> frozenset[str]:
        """The `host[:port]` names file links and redirects may point at."""
        return frozenset({urlsplit(self.url).netloc.lower(), *self.allow_hosts})


def parse_duration(text: str) -> int:
    """`7d`, `12h`, `30m`, `45s`, `2w` or a plain number of seconds, as seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise IndexServerError(
            f"{text!r} is not a duration", hint="write a number with s, m, h, d or w, e.g. 7d"
        )
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def normalize_pattern(pattern: str) -> str:
    """A reserve glob in PEP 503 form (`Aegis_*` -> `aegis-*`), so it matches normalized names."""
    if not _PATTERN.fullmatch(pattern):
        raise IndexServerError(
            f"{pattern!r} cannot reserve names",
            hint="use project-name characters and the globs * and ?, e.g. 'aegis-*'",
        )
    return re.sub(r"[-_.]+", "-", pattern).lower()


def reserved_by(project: str, patterns: tuple[str, ...]) -> str | None:
    """The reserve glob a normalized project name matches, or None."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(project, pattern):
            return pattern
    return None


def check_url(url: str) -> str:
    """An http(s) index URL without credentials, ending in `/`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise IndexServerError(
            f"upstream {url!r} is not an http(s) URL",
            hint="give the simple index URL, e.g. https://pypi.org/simple/",
        )
    if parts.username is not None or parts.password is not None:
        raise IndexServerError(
            "the upstream URL carries credentials, which the registry would keep in clear",
            hint="use an upstream that needs no login (an internal mirror), without user:pass@",
        )
    if parts.query or parts.fragment:
        raise IndexServerError(f"upstream {url!r} has a query or fragment", hint="drop it")
    return url if url.endswith("/") else url + "/"


def _number(raw: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise IndexServerError(f"upstream `{key}` must be a number >= {minimum}, not {value!r}")
    return value


def _strings(raw: Mapping[str, Any], key: str) -> list[str]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise IndexServerError(f"upstream `{key}` must be a list of strings")
    return value


def parse_upstream(raw: Mapping[str, Any] | None) -> UpstreamConfig | None:
    """The registry's `upstream` object as a config (None: no upstream); IndexServerError
    naming the field when it is malformed."""
    if raw is None:
        return None
    if not isinstance(raw.get("url"), str):
        raise IndexServerError("upstream has no `url`", hint="set one with --url")
    hosts = _strings(raw, "allow_hosts")
    for host in hosts:
        if not _HOST.fullmatch(host):
            raise IndexServerError(f"upstream allow_hosts: {host!r} is not a host[:port]")
    offline = raw.get("offline", False)
    if not isinstance(offline, bool):
        raise IndexServerError("upstream `offline` must be true or false")
    return UpstreamConfig(
        url=check_url(raw["url"]),
        cooldown=int(_number(raw, "cooldown", DEFAULT_COOLDOWN, 0)),
        reserve=tuple(normalize_pattern(p) for p in _strings(raw, "reserve")),
        offline=offline,
        ttl=int(_number(raw, "ttl", DEFAULT_TTL, 0)),
        allow_hosts=tuple(h.lower() for h in hosts),
        timeout=float(_number(raw, "timeout", DEFAULT_TIMEOUT, 0.1)),
        max_page_size=int(_number(raw, "max_page_size", DEFAULT_MAX_PAGE, 1024)),
        max_file_size=int(_number(raw, "max_file_size", DEFAULT_MAX_FILE, 1024)),
    )


@dataclass(frozen=True)
class UpstreamChange:
    """What `releasekit server index upstream` was asked to change (None: keep as is)."""

    off: bool = False
    url: str | None = None
    cooldown: str | None = None
    reserve: tuple[str, ...] | None = None
    offline: bool | None = None
    ttl: str | None = None
    allow_hosts: tuple[str, ...] | None = None
    timeout: float | None = None
    max_page_size: int | None = None


def apply_change(current: UpstreamConfig | None, change: UpstreamChange) -> UpstreamConfig | None:
    """The upstream after `change` (pure); IndexServerError for a change that cannot apply."""
    if change.off:
        return None
    if current is None and change.url is None:
        raise IndexServerError(
            "this index has no upstream yet", hint="give one with --url https://.../simple/"
        )
    base = current or UpstreamConfig(url=check_url(str(change.url)))
    updates: dict[str, Any] = {}
    if change.url is not None:
        updates["url"] = check_url(change.url)
    if change.cooldown is not None:
        updates["cooldown"] = parse_duration(change.cooldown)
    if change.ttl is not None:
        updates["ttl"] = parse_duration(change.ttl)
    if change.reserve is not None:
        updates["reserve"] = tuple(normalize_pattern(p) for p in change.reserve)
    if change.offline is not None:
        updates["offline"] = change.offline
    if change.allow_hosts is not None:
        updates["allow_hosts"] = tuple(h.lower() for h in change.allow_hosts)
    if change.timeout is not None:
        updates["timeout"] = change.timeout
    if change.max_page_size is not None:
        updates["max_page_size"] = change.max_page_size
    # Round-trip through the parser: the CLI and the registry obey the same checks.
    return parse_upstream(replace(base, **updates).to_json())


def configure_upstream(root: Storage, index: str, change: UpstreamChange) -> IndexConfig:
    """Record the changed upstream of `index` (`root` included) in the registry."""
    config = config_for(read_registry(root), index)
    updated = apply_change(parse_upstream(config.upstream), change)
    upstream = updated.to_json() if updated is not None else None
    return update_index(root, replace(config, upstream=upstream))


def describe(config: UpstreamConfig | None) -> str:
    """One line for people: what the index reads through, and under which rules."""
    if config is None:
        return "upstream: off (unknown projects are 404)"
    reserve = ", ".join(config.reserve) or "none"
    mode = "offline (cached files only)" if config.offline else "online"
    return (
        f"upstream: {config.url} ({mode}); cooldown {config.cooldown} s; pages fresh for "
        f"{config.ttl} s; reserved: {reserve}"
    )
