"""The bounded .tar.gz reader: the core metadata of an sdist, every member checked.

It walks the decompressed stream header by header instead of using `tarfile`, which reads a GNU
long name or a PAX header of any size into memory. Every bound is checked before reading a byte
of what it bounds, and every decompressed byte is counted (`Expansion`).
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from releasekit.server.archives import (
    REBUILD,
    ArchiveError,
    ArchiveLimits,
    Expansion,
    check_link,
    check_member_path,
    too_many,
)

BLOCK = 512
_CHUNK = 1024 * 1024
READ_AHEAD = 64 * 1024


class _Stream:
    """The decompressed tar stream, read in bounded chunks with every byte counted.

    Decompressed bytes are taken from gzip READ_AHEAD at a time and handed out from a buffer:
    a tar is mostly 512-byte headers, and one gzip read per header was half the cost of
    indexing an sdist. Every byte is counted (`Expansion`) when it leaves gzip.
    """

    def __init__(self, raw: BinaryIO, expansion: Expansion) -> None:
        self.gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self.expansion = expansion
        self.buffer = b""
        self.pos = 0

    def _pull(self, size: int) -> bytes:
        chunk = self.gz.read(size)
        self.expansion.add(len(chunk))
        return chunk

    def _take(self, size: int) -> bytes:
        """Up to `size` bytes (fewer only at the end of the stream); `size` is bounded by the
        caller (a header, a bounded extension header, a metadata file, or one _CHUNK)."""
        have = len(self.buffer) - self.pos
        if have < size:
            parts = [self.buffer[self.pos :]]
            while have < size:
                chunk = self._pull(max(READ_AHEAD, size - have))
                if not chunk:
                    break
                parts.append(chunk)
                have += len(chunk)
            self.buffer, self.pos = b"".join(parts), 0
        data = self.buffer[self.pos : self.pos + size]
        self.pos += len(data)
        return data

    def read(self, size: int, filename: str) -> bytes:
        parts, left = [], size
        while left:
            chunk = self._take(min(left, _CHUNK))
            if not chunk:
                raise ArchiveError(
                    f"{filename} ends in the middle of a member: the archive is truncated",
                    hint="upload the file exactly as the build produced it",
                )
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def header(self, filename: str) -> bytes:
        """The next 512-byte block, or b"" at a clean end of the stream."""
        first = self._take(BLOCK)
        if len(first) in (0, BLOCK):
            return first
        return first + self.read(BLOCK - len(first), filename)

    def drain(self) -> None:
        """Read to the end (counted): a truncated or corrupt gzip stream raises here."""
        self.buffer, self.pos = b"", 0
        while self._pull(_CHUNK):
            pass

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
            raise ArchiveError(f"{filename} has a malformed PAX header", hint=REBUILD)
        key, sep, value = record[len(match.group(0)) : -1].partition(b"=")
        if not sep:
            raise ArchiveError(f"{filename} has a malformed PAX header", hint=REBUILD)
        values[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return values


_EXTENSIONS = {b"L": "GNU long name", b"K": "GNU long link name", b"x": "PAX header",
               b"g": "PAX global header"}  # fmt: skip
_REGULAR = (b"0", b"\0", b"7")


def read_tar_metadata(raw: BinaryIO, filename: str, limits: ArchiveLimits) -> bytes:
    """The bytes of the one top-level PKG-INFO of a .tar.gz sdist, every member checked."""
    found: list[tuple[str, bytes]] = []
    try:
        compressed = raw.seek(0, 2)
        raw.seek(0)
        stream = _Stream(raw, Expansion(filename, compressed, limits))
        for name, typeflag, size, linkname in _tar_members(stream, filename, limits):
            check_member_path(filename, name)
            if typeflag in (b"1", b"2"):
                check_link(filename, name, linkname, hard=typeflag == b"1")
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
            raise too_many(filename, limits, "members")
        try:
            checksum, size = _number(block[148:156]), _number(block[124:136])
        except ValueError:
            checksum = size = -1
        if checksum not in _checksums(block) or size < 0:
            raise ArchiveError(f"{filename} has a damaged tar header", hint=REBUILD)
        typeflag = block[156:157]
        if typeflag in _EXTENSIONS:
            if size > limits.max_header_size:
                raise ArchiveError(
                    f"{filename} has a {_EXTENSIONS[typeflag]} of {size} bytes (the limit is "
                    f"{limits.max_header_size}): refused as an archive bomb",
                    hint=REBUILD,
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
                raise ArchiveError(f"{filename} has a malformed PAX size", hint=REBUILD)
        pending = {}
        if typeflag not in (*_REGULAR, b"1", b"2", b"5"):
            raise ArchiveError(
                f"{filename} has an unsafe member {name!r}: a device, FIFO or other special "
                f"file (tar type {typeflag!r})",
                hint=f"sdists hold files, directories and links only; {REBUILD}",
            )
        if size > limits.max_expanded:  # refused now, not after decompressing up to the cap
            raise ArchiveError(
                f"{filename} has a member {name!r} of {size} bytes: refused as an archive bomb",
                hint=f"members may be at most {limits.max_expanded // 2**20} MiB",
            )
        yield name, typeflag, size, linkname
