"""Read and edit INI files (pip.conf, .pypirc) keeping every other line byte for byte.

configparser can read these files but writes them back without comments or layout, so edits
are made on the lines: a key is replaced in place (with its continuation lines), added at the
end of its section, or a new section is appended.
"""

from __future__ import annotations

import configparser
import re

from releasekit.errors import ConfigError

_HEADER = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY = re.compile(r"^([^\s=:#;\[][^=:]*?)\s*[=:]")


def parse_ini(text: str, display: str) -> configparser.RawConfigParser:
    """Parse `text`; a malformed file is a ConfigError that does not quote it (secrets)."""
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(text, source=display)
    except configparser.Error:
        raise ConfigError(
            f"{display} is malformed and cannot be edited safely",
            hint=f"fix {display} (or move it away) and run again",
        ) from None
    return parser


def ini_get(parser: configparser.RawConfigParser, section: str, key: str) -> str | None:
    """The value of `key` in `section`; `index_url` and `index-url` are the same key (pip)."""
    if not parser.has_section(section):
        return None
    for name, value in parser.items(section):
        if _norm(name) == _norm(key):
            return value.strip()
    return None


def ini_set(text: str, section: str, key: str, values: list[str]) -> str:
    """`text` with `key` in `section` set to `values` (one value per line when several)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    rendered = _render(key, values)
    start = next(
        (i for i, line in enumerate(lines) if _section_name(line) == section),
        None,
    )
    if start is None:
        gap = "\n" if lines and lines[-1].strip() else ""
        return "".join(lines) + gap + f"[{section}]\n" + "".join(rendered)
    end = next(
        (i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])),
        len(lines),
    )
    for i in range(start + 1, end):
        match = _KEY.match(lines[i])
        if match and _norm(match.group(1)) == _norm(key):
            after = i + 1
            while after < end and _is_continuation(lines[after]):
                after += 1
            return "".join([*lines[:i], *rendered, *lines[after:]])
    insert = end
    while insert > start + 1 and not lines[insert - 1].strip():
        insert -= 1
    return "".join([*lines[:insert], *rendered, *lines[insert:]])


def _render(key: str, values: list[str]) -> list[str]:
    if len(values) == 1:
        return [f"{key} = {values[0]}\n"]
    return [f"{key} =\n", *(f"    {value}\n" for value in values)]


def _section_name(line: str) -> str | None:
    match = _HEADER.match(line)
    return match.group(1).strip() if match else None


def _is_continuation(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and line[0] in " \t" and not stripped.startswith(("#", ";"))


def _norm(key: str) -> str:
    return key.strip().lower().replace("_", "-")
