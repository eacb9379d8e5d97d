"""Bounds and checks shared by the archive readers, and the bounded zip reader.

Nothing here trusts a size written inside an archive. The zip reader counts the central
directory's entries itself before `zipfile` builds one object per entry; the tar reader is in
`tarball.py`. Every member path is checked as an extractor would see it.
"""

from __future__ import annotations

import posixpath
import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from releasekit.errors import IndexServerError

REBUILD = "rebuild the distribution with `python -m build` and upload it unchanged"


class ArchiveError(IndexServerError):
    """A distribution file is not a valid wheel or sdist."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what reading one archive may cost; each is checked before allocating."""

    max_members: int = 100_000
    max_header_size: int = 64 * 1024  # one GNU long name/link or PAX header
    max_metadata_size: int = 8 * 1024 * 1024
    max_expanded: int = 4 * 1024 * 1024 * 1024
    # Warehouse's zip-bomb rule: refuse more than 50x expansion once past 64 MiB.
    max_ratio: int = 50
    ratio_floor: int = 64 * 1024 * 1024
    max_central_directory: int = 64 * 1024 * 1024


def check_member_path(filename: str, member: str) -> None:
    """Refuse a member name an extractor would place outside its target directory."""
    reason = None
    if not member or "\0" in member:
        reason = "an empty name or a NUL byte"
    elif "\\" in member:
        reason = "a backslash (a path separator on Windows)"
    elif member.startswith("/") or re.match(r"[A-Za-z]:", member):
        reason = "an absolute path"
    elif ".." in member.split("/"):
        reason = "a '..' component"
    if reason:
        raise ArchiveError(
            f"{filename} has an unsafe member {member!r}: {reason}",
            hint=f"distributions never hold paths outside their own tree; {REBUILD}",
        )


def check_link(filename: str, member: str, target: str, *, hard: bool) -> None:
    """A link must resolve inside the archive (symlinks relative to their directory)."""
    base = "" if hard else posixpath.dirname(member)
    resolved = posixpath.normpath(posixpath.join(base, target)) if target else ""
    if (
        not target
        or target.startswith(("/", "\\"))
        or re.match(r"[A-Za-z]:", target)
        or resolved == ".."
        or resolved.startswith("../")
    ):
        kind = "hard link" if hard else "symlink"
        raise ArchiveError(
            f"{filename} has an unsafe member {member!r}: a {kind} to {target!r}, "
            "outside the archive",
            hint=f"links in an sdist must point inside it; {REBUILD}",
        )


def too_many(filename: str, limits: ArchiveLimits, what: str) -> ArchiveError:
    return ArchiveError(
        f"{filename} has more than {limits.max_members} {what}: refused as an archive bomb",
        hint="ask the admin if a real distribution needs more",
    )


class Expansion:
    """Counts decompressed bytes against the absolute cap and the ratio rule."""

    def __init__(self, filename: str, compressed: int, limits: ArchiveLimits) -> None:
        self.filename, self.compressed, self.limits = filename, max(compressed, 1), limits
        self.total = 0

    def add(self, size: int) -> None:
        self.total += size
        limits = self.limits
        ratio_bomb = self.total > limits.ratio_floor and self.total > (
            limits.max_ratio * self.compressed
        )
        if ratio_bomb or self.total > limits.max_expanded:
            raise ArchiveError(
                f"{self.filename} expands to more than {self.total} bytes from "
                f"{self.compressed}: refused as an archive bomb",
                hint=f"distributions may expand at most {limits.max_ratio}x once past "
                f"{limits.ratio_floor // 2**20} MiB, and to {limits.max_expanded // 2**20} MiB",
            )


def _central_directory(handle: BinaryIO) -> tuple[int, int, int]:
    """(entries, directory size, directory start) from the end records (Zip64 aware)."""
    end = handle.seek(0, 2)
    tail_start = max(0, end - (22 + 65535 + 20 + 56))
    handle.seek(tail_start)
    tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise zipfile.BadZipFile("no end of central directory record")
    entries, size, _offset = struct.unpack("<xxxxxxxxxxHIIxx", tail[at : at + 22])
    record_start = tail_start + at
    locator = tail[at - 20 : at] if at >= 20 else b""
    if locator[:4] == b"PK\x06\x07":
        zip64 = tail.rfind(b"PK\x06\x06", 0, at - 20)
        if zip64 < 0 or at - 20 - zip64 < 56:
            raise zipfile.BadZipFile("a damaged Zip64 end record")
        entries, size, _offset = struct.unpack("<QQQ", tail[zip64 + 32 : zip64 + 56])
        record_start = tail_start + zip64
    return entries, size, record_start - size


def check_zip_bounds(handle: BinaryIO, filename: str, limits: ArchiveLimits) -> None:
    """Count the central directory's entries without building them (zipfile would)."""
    entries, size, start = _central_directory(handle)
    if entries > limits.max_members:
        raise too_many(filename, limits, "entries")
    if size > limits.max_central_directory or start < 0:
        raise ArchiveError(f"{filename} has a central directory of {size} bytes: refused")
    counted = 0
    handle.seek(start)
    directory = handle.read(size)
    pos = 0
    while pos + 46 <= len(directory) and directory[pos : pos + 4] == b"PK\x01\x02":
        counted += 1
        if counted > limits.max_members:
            raise too_many(filename, limits, "entries")
        name_len, extra_len, comment_len = struct.unpack("<HHH", directory[pos + 28 : pos + 34])
        pos += 46 + name_len + extra_len + comment_len


def zip_members(
    archive: zipfile.ZipFile, filename: str, compressed: int, limits: ArchiveLimits
) -> list[zipfile.ZipInfo]:
    """Every entry checked: safe path, no symlink, no duplicate, bounded total expansion."""
    infos = archive.infolist()
    expansion = Expansion(filename, compressed, limits)
    seen: set[str] = set()
    for info in infos:
        check_member_path(filename, info.filename.removesuffix("/") or info.filename)
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise ArchiveError(
                f"{filename} has an unsafe member {info.filename!r}: a symlink",
                hint=f"wheels and zip sdists hold regular files only; {REBUILD}",
            )
        if info.flag_bits & 0x1:
            raise ArchiveError(
                f"{filename} has an encrypted member {info.filename!r}",
                hint=f"distributions are never encrypted; {REBUILD}",
            )
        if info.filename in seen:
            raise ArchiveError(
                f"{filename} holds the member {info.filename!r} twice",
                hint=REBUILD,
            )
        seen.add(info.filename)
        expansion.add(info.file_size)
    return infos
