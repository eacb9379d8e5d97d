"""Builders of hostile distribution files: bombs, dangerous member paths, broken headers.

Plain functions (no fixtures) so the unit tests, the seeded generator and the benchmark share
them. Large archives are streamed through gzip, never built in memory.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

from tests.server.conftest import metadata_text

BLOCK = 512


def tar_header(name: bytes, size: int, typeflag: bytes, linkname: bytes = b"") -> bytes:
    """One ustar header block with a correct checksum (names are not length-checked)."""
    header = bytearray(BLOCK)
    header[0:100] = name[:100].ljust(100, b"\0")
    header[100:108] = b"0000644\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = f"{size:011o}\0".encode()
    header[136:148] = b"14000000000\0"
    header[148:156] = b" " * 8
    header[156:157] = typeflag
    header[157:257] = linkname[:100].ljust(100, b"\0")
    header[257:265] = b"ustar\x0000"
    checksum = sum(header)
    header[148:156] = f"{checksum:06o}\0 ".encode()
    assert len(header) == BLOCK, "a field overflowed its width"
    return bytes(header)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def long_header_sdist(
    path: Path, header_size: int, *, typeflag: bytes = b"L", level: int = 9
) -> Path:
    """An sdist whose first member is a GNU long-name ('L'/'K') or PAX ('x') header of
    `header_size` bytes, followed by a valid PKG-INFO (the issue's 256 MiB bomb)."""
    chunk = b"a" * (1024 * 1024)
    with gzip.open(path, "wb", compresslevel=level) as out:
        out.write(tar_header(b"././@LongLink", header_size, typeflag))
        left = header_size
        if typeflag == b"x":
            record = b" path=x\n"
            first = f"{header_size}".encode() + record
            first = first.ljust(min(header_size, len(first)), b"a")
            out.write(first[:header_size])
            left -= min(header_size, len(first))
        while left > 0:
            out.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
        out.write(_padding(header_size))
        name, version = path.name.removesuffix(".tar.gz").rsplit("-", 1)
        info = metadata_text(name, version, metadata_version="2.2").encode()
        out.write(tar_header(f"{name}-{version}/PKG-INFO".encode(), len(info), b"0"))
        out.write(info + _padding(len(info)))
        out.write(b"\0" * BLOCK * 2)
    return path


def sdist_with(
    path: Path,
    members: list[tuple[str, bytes]],
    links: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    *,
    pkg_info: str | None = "default",
) -> Path:
    """A .tar.gz with the given regular members and (name, target, type) links; by default a
    valid `<base>/PKG-INFO` comes first."""
    name, version = path.name.removesuffix(".tar.gz").rsplit("-", 1)
    entries = list(members)
    if pkg_info == "default":
        pkg_info = f"{name}-{version}/PKG-INFO"
    if pkg_info is not None:
        info = metadata_text(name, version, metadata_version="2.2").encode()
        entries.insert(0, (pkg_info, info))
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as archive:
        for member_name, data in entries:
            member = tarfile.TarInfo(member_name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
        for member_name, target, kind in links:
            member = tarfile.TarInfo(member_name)
            member.type = kind
            member.linkname = target
            archive.addfile(member)
    return path


def wheel_with(
    path: Path, extra: dict[str, bytes], *, symlinks: dict[str, str] | None = None
) -> Path:
    """A wheel with a valid METADATA plus `extra` members (names used verbatim) and symlinks."""
    name, version = path.name.split("-")[:2]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            f"{name}-{version}.dist-info/METADATA", metadata_text(name, version).encode()
        )
        for member_name, data in extra.items():
            archive.writestr(zipfile.ZipInfo(member_name, (2024, 1, 1, 0, 0, 0)), data)
        for member_name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(member_name, (2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o120777 << 16) | 0x10
            info.create_system = 3
            archive.writestr(info, target)
    return path


def many_entries_wheel(path: Path, entries: int) -> Path:
    """A wheel with a valid METADATA and `entries` empty members (a zip entry-count bomb)."""
    name, version = path.name.split("-")[:2]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(
            f"{name}-{version}.dist-info/METADATA", metadata_text(name, version).encode()
        )
        for n in range(entries):
            archive.writestr(zipfile.ZipInfo(f"e/{n}", (2024, 1, 1, 0, 0, 0)), b"")
    return path
