"""PEP 751 `pylock.toml` files: one per target, written from a locked closure, read back.

A plan's locks point at the upstream (`url`); a bundle's locks point at the files beside them
(`path`, relative to the lock), so `pip install -r pylock.<target>.toml` and
`uv pip install -r ...` work on the far side with no index at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tomlkit
from packaging.utils import canonicalize_name

from releasekit.bundle.resolve import LockedPackage
from releasekit.bundle.targets import Target, parse_target
from releasekit.bundle.upstream import parse_time
from releasekit.errors import BundleError

FILES_DIR = "files"


def lock_name(target: Target) -> str:
    """`pylock.<target slug>.toml` (PEP 751 names a lock `pylock.<name>.toml`)."""
    return f"pylock.{target.slug}.toml"


def render_lock(
    target: Target, packages: Sequence[LockedPackage], *, local: bool, index_url: str
) -> str:
    """The pylock.toml text for one target; `local` writes `path` entries instead of `url`."""
    doc = tomlkit.document()
    doc["lock-version"] = "1.0"
    # No `requires-python`/`environments`: uv checks them against the interpreter it runs,
    # which refuses `uv pip install --python-version 3.13 --target ...` from a 3.11 host.
    doc["created-by"] = "releasekit"
    entries = tomlkit.aot()
    for package in sorted(packages, key=lambda p: p.name):
        entry = tomlkit.table()
        entry["name"] = package.name
        entry["version"] = package.version
        if not local:
            entry["index"] = index_url
        entry.update(_file_table(package, local=local))
        entries.append(entry)
    doc["packages"] = entries
    tool = tomlkit.table()
    tool["target"] = str(target)
    doc["tool"] = {"releasekit": tool}
    return tomlkit.dumps(doc)


def _file_table(package: LockedPackage, *, local: bool) -> dict[str, Any]:
    upstream = package.file
    table = tomlkit.table()
    table["name"] = upstream.filename
    uploaded = parse_time(upstream.upload_time)
    if uploaded is not None:
        table["upload-time"] = uploaded
    if local:
        table["path"] = f"{FILES_DIR}/{upstream.filename}"
    else:
        table["url"] = upstream.url
    if upstream.size is not None:
        table["size"] = upstream.size
    hashes = tomlkit.inline_table()
    hashes["sha256"] = upstream.sha256
    table["hashes"] = hashes
    if package.is_sdist:
        return {"sdist": table}
    wheels = tomlkit.aot()
    wheels.append(table)
    return {"wheels": wheels}


@dataclass(frozen=True)
class LockEntry:
    """What verify needs from one `[[packages]]` entry of a lock."""

    name: str
    version: str
    filename: str
    path: str | None
    sha256: str


@dataclass(frozen=True)
class ParsedLock:
    target: Target
    entries: tuple[LockEntry, ...]


def parse_lock(text: str, source: str) -> ParsedLock:
    """Read a lock written by `render_lock`; anything else is a BundleError naming `source`."""
    try:
        data = tomlkit.parse(text).unwrap()
        target = parse_target(data["tool"]["releasekit"]["target"])
        entries = []
        for package in data["packages"]:
            files = package.get("wheels") or [package["sdist"]]
            for file in files:
                entries.append(
                    LockEntry(
                        name=canonicalize_name(package["name"]),
                        version=str(package["version"]),
                        filename=file["name"],
                        path=file.get("path"),
                        sha256=file["hashes"]["sha256"],
                    )
                )
    except (KeyError, TypeError, tomlkit.exceptions.ParseError) as exc:
        raise BundleError(
            f"{source} is not a releasekit pylock.toml ({exc})",
            hint="the bundle is damaged: fetch it again",
        ) from None
    return ParsedLock(target, tuple(entries))
