"""Distribution filenames and the core metadata inside wheels and sdists.

Everything here is pure: names and versions come from the filename grammar (PEP 427/625) and
from the METADATA / PKG-INFO file inside the archive, never from guesses.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from releasekit.errors import IndexServerError

# Plain basenames only: no separators, no control characters, no leading dot.
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")
SDIST_SUFFIXES = (".tar.gz", ".zip")
# Warehouse's zip-bomb rule: refuse more than 50x expansion once past 64 MiB uncompressed.
MAX_RATIO = 50
RATIO_FLOOR = 64 * 1024 * 1024
MAX_METADATA_SIZE = 8 * 1024 * 1024


class ArchiveError(IndexServerError):
    """A distribution file is not a valid wheel or sdist."""


@dataclass(frozen=True)
class DistFilename:
    """What a distribution filename says: normalized project, canonical version, kind."""

    filename: str
    project: str
    version: str
    kind: Literal["wheel", "sdist"]


@dataclass(frozen=True)
class CoreMetadata:
    """The core metadata of one distribution, with its raw bytes for PEP 658 serving."""

    raw: bytes
    name: str
    version: str
    metadata_version: str
    requires_python: str | None
    dynamic: tuple[str, ...]


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return canonicalize_name(name)


def canonical_version(text: str) -> str:
    """The PEP 440 normalized form of a version; trailing zeros are kept (1.0 != 1.0.0)."""
    try:
        return str(Version(text))
    except InvalidVersion:
        raise ArchiveError(
            f"{text!r} is not a valid PEP 440 version", hint="use a version such as 1.2.3"
        ) from None


def parse_filename(filename: str) -> DistFilename:
    """Parse a wheel or sdist filename, refusing anything that is not a plain, valid name."""
    if not _SAFE_FILENAME.match(filename) or ".." in filename:
        raise ArchiveError(
            f"filename {filename!r} is not a plain distribution filename",
            hint="upload the file under its own name, e.g. pkg-1.0-py3-none-any.whl; "
            "paths, '..', backslashes and control characters are refused",
        )
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return DistFilename(filename, normalize(name), str(version), "wheel")
        if filename.endswith(SDIST_SUFFIXES):
            name, sversion = parse_sdist_filename(filename)
            return DistFilename(filename, normalize(name), str(sversion), "sdist")
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as exc:
        raise ArchiveError(
            f"filename {filename!r} does not follow the wheel/sdist naming rules: {exc}",
            hint="build the file with `python -m build` and upload it unchanged",
        ) from None
    raise ArchiveError(
        f"filename {filename!r} has an unsupported extension",
        hint="upload wheels (.whl) or sdists (.tar.gz, .zip)",
    )


def parse_metadata(raw: bytes) -> CoreMetadata:
    """Parse METADATA / PKG-INFO bytes (RFC 822 style headers)."""
    message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    name = message.get("Name")
    version = message.get("Version")
    if not name or not version:
        raise ArchiveError(
            "the core metadata has no Name or no Version field",
            hint="rebuild the distribution with a current build backend",
        )
    requires_python = message.get("Requires-Python")
    return CoreMetadata(
        raw=raw,
        name=str(name).strip(),
        version=str(version).strip(),
        metadata_version=str(message.get("Metadata-Version", "1.0")).strip(),
        requires_python=str(requires_python).strip() if requires_python else None,
        dynamic=tuple(str(v).strip() for v in message.get_all("Dynamic") or ()),
    )


def serves_pep658(dist: DistFilename, meta: CoreMetadata) -> bool:
    """Whether the metadata may be served as `<file>.metadata` (PEP 658; sdists need PEP 643)."""
    if dist.kind == "wheel":
        return True
    try:
        static = Version(meta.metadata_version) >= Version("2.2")
    except InvalidVersion:
        return False
    return static and not meta.dynamic


def read_metadata(path: Path, dist: DistFilename) -> CoreMetadata:
    """Read the core metadata from a wheel or sdist on disk, guarding against archive bombs."""
    if dist.filename.endswith((".whl", ".zip")):
        return _read_zip(path, dist)
    return _read_tar(path, dist)


def _check_expansion(compressed: int, expanded: int, filename: str) -> None:
    if expanded > RATIO_FLOOR and expanded > MAX_RATIO * max(compressed, 1):
        raise ArchiveError(
            f"{filename} expands to {expanded} bytes from {compressed}: refused as an archive bomb",
            hint="distributions may expand at most 50x once past 64 MiB",
        )


def _read_zip(path: Path, dist: DistFilename) -> CoreMetadata:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_expansion(path.stat().st_size, sum(i.file_size for i in infos), dist.filename)
            if dist.kind == "wheel":
                wanted = [
                    i
                    for i in infos
                    if re.fullmatch(r"[^/]+\.dist-info/METADATA", i.filename)
                    and _dist_info_project(i.filename) == dist.project
                ]
            else:
                wanted = [i for i in infos if re.fullmatch(r"[^/]+/PKG-INFO", i.filename)]
            if len(wanted) != 1:
                what = "<name>-<version>.dist-info/METADATA" if dist.kind == "wheel" else "PKG-INFO"
                raise ArchiveError(
                    f"{dist.filename} holds {len(wanted)} {what} files, expected exactly one",
                    hint="rebuild the distribution with `python -m build`",
                )
            if wanted[0].file_size > MAX_METADATA_SIZE:
                raise ArchiveError(f"{dist.filename}: the metadata file is too large")
            return parse_metadata(archive.read(wanted[0]))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as exc:
        raise ArchiveError(
            f"{dist.filename} is not a readable zip archive: {exc}",
            hint="upload the file exactly as the build produced it",
        ) from None


def _read_tar(path: Path, dist: DistFilename) -> CoreMetadata:
    compressed = path.stat().st_size
    found: list[bytes] = []
    expanded = 0
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for member in archive:
                expanded += member.size
                _check_expansion(compressed, expanded, dist.filename)
                if member.isfile() and re.fullmatch(r"[^/]+/PKG-INFO", member.name):
                    if member.size > MAX_METADATA_SIZE:
                        raise ArchiveError(f"{dist.filename}: PKG-INFO is too large")
                    handle = archive.extractfile(member)
                    if handle is not None:
                        found.append(handle.read())
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(
            f"{dist.filename} is not a readable .tar.gz archive: {exc}",
            hint="upload the file exactly as the build produced it",
        ) from None
    if len(found) != 1:
        raise ArchiveError(
            f"{dist.filename} holds {len(found)} top-level PKG-INFO files, expected exactly one",
            hint="rebuild the sdist with `python -m build --sdist`",
        )
    return parse_metadata(found[0])


def _dist_info_project(member: str) -> str:
    """`Foo_Bar-1.0.dist-info/METADATA` -> `foo-bar`."""
    return normalize(member.split("/")[0].removesuffix(".dist-info").rsplit("-", 1)[0])
