"""Bounded readers of wheels and sdists: find the core metadata, refuse bombs and unsafe paths.

Nothing here trusts a size written inside an archive. The tar reader walks the decompressed
stream header by header (no `tarfile`, which reads a GNU long name or a PAX header of any size
into memory), checks every bound before reading a byte of the thing it bounds, and counts the
bytes it decompresses. The zip reader counts the central directory's entries itself before
`zipfile` builds one object per entry. Every member path is checked as an extractor would see it.
"""

from __future__ import annotations

import gzip
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from releasekit.errors import IndexServerError

BLOCK = 512
_CHUNK = 1024 * 1024
_REBUILD = "rebuild the distribution with `python -m build` and upload it unchanged"


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
            hint=f"distributions never hold paths outside their own tree; {_REBUILD}",
        )


def _check_link(filename: str, member: str, target: str, *, hard: bool) -> None:
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
            hint=f"links in an sdist must point inside it; {_REBUILD}",
        )


def _too_many(filename: str, limits: ArchiveLimits, what: str) -> ArchiveError:
    return ArchiveError(
        f"{filename} has more than {limits.max_members} {what}: refused as an archive bomb",
        hint="ask the admin if a real distribution needs more",
    )


class _Expansion:
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


class _Stream:
    """The decompressed tar stream, read in bounded chunks with every byte counted."""

    def __init__(self, raw: BinaryIO, expansion: _Expansion) -> None:
        self.gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self.expansion = expansion

    def read(self, size: int, filename: str) -> bytes:
        parts, left = [], size
        while left:
            chunk = self.gz.read(min(left, _CHUNK))
            if not chunk:
                raise ArchiveError(
                    f"{filename} ends in the middle of a member: the archive is truncated",
                    hint="upload the file exactly as the build produced it",
                )
            self.expansion.add(len(chunk))
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def header(self, filename: str) -> bytes:
        """The next 512-byte block, or b"" at a clean end of the stream."""
        first = self.gz.read(BLOCK)
        self.expansion.add(len(first))
        if len(first) in (0, BLOCK):
            return first
        return first + self.read(BLOCK - len(first), filename)

    def drain(self) -> None:
        """Read to the end (counted): a truncated or corrupt gzip stream raises here."""
        while chunk := self.gz.read(_CHUNK):
            self.expansion.add(len(chunk))

    def skip(self, size: int, filename: str) -> None:
        while size:
            step = min(size, _CHUNK)
            self.read(step, filename)
            size -= step


def _number(field: bytes) -> int:
    """A tar numeric field: octal text, or base-256 when the high bit is set."""
    if field and field[0] in (0o200, 0o377):
        value = int.from_bytes(field[1:], "big")
        return -value if field[0] == 0o377 else value
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _checksums(block: bytes) -> tuple[int, int]:
    """The unsigned and signed header sums (tar writers have used both)."""
    unsigned = 256 + sum(block[:148]) + sum(block[156:])
    signed = 256 + sum(struct.unpack("148b8x356b", block))
    return unsigned, signed


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes, filename: str) -> dict[str, str]:
    """Parse PAX records `<len> <key>=<value>\\n`; any malformed record refuses the archive."""
    values, pos = {}, 0
    while pos < len(data) and data[pos] != 0:
        match = re.match(rb"(\d+) ", data[pos : pos + 24])
        length = int(match.group(1)) if match else 0
        record = data[pos : pos + length]
        if not match or length <= len(match.group(0)) or not record.endswith(b"\n"):
            raise ArchiveError(f"{filename} has a malformed PAX header", hint=_REBUILD)
        key, sep, value = record[len(match.group(0)) : -1].partition(b"=")
        if not sep:
            raise ArchiveError(f"{filename} has a malformed PAX header", hint=_REBUILD)
        values[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return values


_EXTENSIONS = {b"L": "GNU long name", b"K": "GNU long link name", b"x": "PAX header",
               b"g": "PAX global header"}  # fmt: skip
_REGULAR = (b"0", b"\0", b"7")


def read_tar_metadata(path: Path, filename: str, limits: ArchiveLimits) -> bytes:
    """The bytes of the one top-level PKG-INFO of a .tar.gz sdist, every member checked."""
    found: list[tuple[str, bytes]] = []
    try:
        with path.open("rb") as raw:
            stream = _Stream(raw, _Expansion(filename, path.stat().st_size, limits))
            for name, typeflag, size, linkname in _tar_members(stream, filename, limits):
                check_member_path(filename, name)
                if typeflag in (b"1", b"2"):
                    _check_link(filename, name, linkname, hard=typeflag == b"1")
                if typeflag in _REGULAR and re.fullmatch(r"(\./)?[^/]+/PKG-INFO", name):
                    if size > limits.max_metadata_size:
                        raise ArchiveError(f"{filename}: PKG-INFO is larger than allowed")
                    found.append((name, stream.read(size, filename)))
                    stream.skip(-size % BLOCK, filename)
                elif typeflag in _REGULAR:
                    stream.skip(size + -size % BLOCK, filename)
            stream.drain()  # the gzip trailer's CRC and length are checked at its end
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
        raise ArchiveError(
            f"{filename} is not a readable .tar.gz archive: {exc}",
            hint="upload the file exactly as the build produced it",
        ) from None
    if len(found) != 1:
        raise ArchiveError(
            f"{filename} holds {len(found)} top-level PKG-INFO files, expected exactly one",
            hint="rebuild the sdist with `python -m build --sdist`",
        )
    return found[0][1]


def _tar_members(
    stream: _Stream, filename: str, limits: ArchiveLimits
) -> Iterator[tuple[str, bytes, int, str]]:
    """(name, typeflag, size, linkname) of each member; extension headers applied and bounded.

    The caller must consume (read or skip) a regular member's data before the next one.
    """
    headers = 0
    pending: dict[str, str] = {}
    while True:
        block = stream.header(filename)
        if not block or block == bytes(BLOCK):
            return  # end-of-archive marker, or the end of the stream at a header boundary
        headers += 1
        if headers > limits.max_members:
            raise _too_many(filename, limits, "members")
        try:
            checksum, size = _number(block[148:156]), _number(block[124:136])
        except ValueError:
            checksum = size = -1
        if checksum not in _checksums(block) or size < 0:
            raise ArchiveError(f"{filename} has a damaged tar header", hint=_REBUILD)
        typeflag = block[156:157]
        if typeflag in _EXTENSIONS:
            if size > limits.max_header_size:
                raise ArchiveError(
                    f"{filename} has a {_EXTENSIONS[typeflag]} of {size} bytes (the limit is "
                    f"{limits.max_header_size}): refused as an archive bomb",
                    hint=_REBUILD,
                )
            data = stream.read(size + -size % BLOCK, filename)[:size]
            if typeflag == b"L":
                pending["path"] = _text(data)
            elif typeflag == b"K":
                pending["linkpath"] = _text(data)
            elif typeflag == b"x":
                pending.update(_pax(data, filename))
            elif {"path", "linkpath"} & _pax(data, filename).keys():
                raise ArchiveError(f"{filename} sets member paths in a PAX global header")
            continue
        name = _text(block[0:100])
        if block[257:263] == b"ustar\0" and block[345] != 0:
            name = _text(block[345:500]) + "/" + name
        name = pending.get("path", name)
        linkname = pending.get("linkpath", _text(block[157:257]))
        if "size" in pending:
            try:
                size = int(pending["size"])
            except ValueError:
                size = -1
            if size < 0:
                raise ArchiveError(f"{filename} has a malformed PAX size", hint=_REBUILD)
        pending = {}
        if typeflag not in (*_REGULAR, b"1", b"2", b"5"):
            raise ArchiveError(
                f"{filename} has an unsafe member {name!r}: a device, FIFO or other special "
                f"file (tar type {typeflag!r})",
                hint=f"sdists hold files, directories and links only; {_REBUILD}",
            )
        yield name, typeflag, size, linkname


def _central_directory(path: Path) -> tuple[int, int, int]:
    """(entries, directory size, directory start) from the end records (Zip64 aware)."""
    with path.open("rb") as handle:
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


def check_zip_bounds(path: Path, filename: str, limits: ArchiveLimits) -> None:
    """Count the central directory's entries without building them (zipfile would)."""
    entries, size, start = _central_directory(path)
    if entries > limits.max_members:
        raise _too_many(filename, limits, "entries")
    if size > limits.max_central_directory or start < 0:
        raise ArchiveError(f"{filename} has a central directory of {size} bytes: refused")
    counted = 0
    with path.open("rb") as handle:
        handle.seek(start)
        directory = handle.read(size)
    pos = 0
    while pos + 46 <= len(directory) and directory[pos : pos + 4] == b"PK\x01\x02":
        counted += 1
        if counted > limits.max_members:
            raise _too_many(filename, limits, "entries")
        name_len, extra_len, comment_len = struct.unpack("<HHH", directory[pos + 28 : pos + 34])
        pos += 46 + name_len + extra_len + comment_len


def zip_members(
    archive: zipfile.ZipFile, filename: str, compressed: int, limits: ArchiveLimits
) -> list[zipfile.ZipInfo]:
    """Every entry checked: safe path, no symlink, no duplicate, bounded total expansion."""
    infos = archive.infolist()
    expansion = _Expansion(filename, compressed, limits)
    seen: set[str] = set()
    for info in infos:
        check_member_path(filename, info.filename.removesuffix("/") or info.filename)
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise ArchiveError(
                f"{filename} has an unsafe member {info.filename!r}: a symlink",
                hint=f"wheels and zip sdists hold regular files only; {_REBUILD}",
            )
        if info.filename in seen:
            raise ArchiveError(
                f"{filename} holds the member {info.filename!r} twice",
                hint=_REBUILD,
            )
        seen.add(info.filename)
        expansion.add(info.file_size)
    return infos
