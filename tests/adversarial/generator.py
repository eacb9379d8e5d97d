"""A seeded generator of malformed and hostile uploads, as raw multipart bodies.

Each case is built from a valid upload of a small wheel or sdist and one family of damage:
form fields, the raw filename, the file's bytes, a hostile archive, or the multipart framing
itself. The same seed gives the same cases, so a failure can be replayed with its seed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tests.adversarial.hostile import tar_header
from tests.server.conftest import metadata_text

BOUNDARY = "hostile-boundary-8"
FAMILIES = ("field", "filename", "bytes", "archive", "multipart")
VALID_EVERY = 100  # one valid upload (a new project) per this many cases, as a control
_FIELDS = (
    "sha256_digest", "md5_digest", "blake2_256_digest", "name", "version", "filetype",
    "pyversion", "metadata_version", "protocol_version", ":action", "summary", "",
)  # fmt: skip
_VALUES = (
    "é", "٣" * 64, "Ⅻ", "0" * 63, "g" * 64, "A" * 64, " " * 64, "", "\x00", "\r\n", "\t1",
    "1\x00", "x" * 5000, "1.0\ud7ff", "../../etc/passwd", "C:\\x", "%00", "0x1f", "-1",
    "１", "alpha\u200b", "ALPHA", "alpha..beta", "1.0.0", "1!0", "1.0+local", "sdist",
    "bdist_wheel", "bdist_egg", "2", "file_upload", "remove_pkg", "😀" * 10, "\\", '"',
    "=?utf-8?q?=C3=A9?=", "1" * 200, "None", "null", "[]", "{}", "<script>",
)  # fmt: skip
_FILENAMES = (
    "C:\\x\\{w}", "c:/x/{w}", "\\\\host\\share\\{w}", "a/{w}", "../{w}", "/{w}", "./{w}",
    "{w}\x00.txt", "{w}\r\nX-Injected: 1", "{w} ", " {w}", ".{w}", "{w}.", "{w}/", "",
    "alpha-1.0.exe", "alpha-1.0.tar.bz2", "alpha-1.0-py3-none-any.WHL", "ålpha-1.0.tar.gz",
    "alpha-1.0-py3-none-any.whl" * 20, "alpha-١.٠-py3-none-any.whl", "alpha-1.0.tar.gz.whl",
    "alpha-1.0-py3-none-any.whl.tar.gz", "con-1.0.tar.gz", "alpha%2F..%2F-1.0.tar.gz",
    "alpha-1.0-py3-none-any.whl;.tar.gz", 'al"pha-1.0.tar.gz', "alpha-1.0-x-y-z-w.whl",
    "beta-1.0-py3-none-any.whl", "alpha-2.0-py3-none-any.whl",
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One hostile request: its family (for the tally), body and content type."""

    family: str
    body: bytes
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}"


def wheel_bytes(name: str, version: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A small valid wheel, in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = f"{name}-{version}.dist-info"
        archive.writestr(f"{info}/METADATA", metadata_text(name, version))
        archive.writestr(f"{name}/__init__.py", f"v = {version!r}\n")
        with warnings.catch_warnings():  # a duplicate member name is one of the hostile cases
            warnings.simplefilter("ignore")
            for member, data in (extra or {}).items():
                archive.writestr(member, data)
    return buffer.getvalue()


def sdist_bytes(name: str, version: str, members: list[tarfile.TarInfo] | None = None) -> bytes:
    """A small valid .tar.gz sdist (plus hostile `members` without data), in memory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = metadata_text(name, version, metadata_version="2.2").encode()
        member = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
        member.size = len(info)
        archive.addfile(member, io.BytesIO(info))
        for extra in members or ():
            archive.addfile(extra, io.BytesIO(bytes(extra.size)) if extra.size else None)
    return buffer.getvalue()


def multipart(parts: Sequence[tuple[str, str | None, bytes]], *, headers: str = "") -> bytes:
    """A multipart body; a part with a filename is a file part (filename used verbatim)."""
    out = io.BytesIO()
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out.write(f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{headers}".encode())
        out.write(
            b"Content-Type: application/octet-stream\r\n\r\n" if filename is not None else b"\r\n"
        )
        out.write(data + b"\r\n")
    out.write(f"--{BOUNDARY}--\r\n".encode())
    return out.getvalue()


def _form(
    filename: str, data: bytes, fields: dict[str, str]
) -> list[tuple[str, str | None, bytes]]:
    parts: list[tuple[str, str | None, bytes]] = [
        (k, None, v.encode("utf-8", "surrogatepass")) for k, v in fields.items()
    ]
    parts.append(("content", filename, data))
    return parts


def _base_fields(data: bytes) -> dict[str, str]:
    return {
        ":action": "file_upload",
        "protocol_version": "1",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
    }


def _hostile_archives() -> list[tuple[str, bytes]]:
    """Small archives that must each be refused: paths, links, headers, structure."""
    wheel = "alpha-1.0-py3-none-any.whl"
    out = [
        (wheel, wheel_bytes("alpha", "1.0", {path: b"x"}))
        for path in ("../../x.py", "/etc/cron.d/x", "C:/x", "a/../../x", "a\\..\\x", "a//..//x")
    ]
    out.append((wheel, wheel_bytes("alpha", "1.0", {"alpha-1.0.dist-info/METADATA": b"x"})))
    out.append((wheel, wheel_bytes("beta", "1.0")))
    encrypted = bytearray(wheel_bytes("alpha", "1.0"))
    encrypted[encrypted.index(b"PK\x01\x02") + 8] |= 0x1  # the "encrypted" flag
    out.append((wheel, bytes(encrypted)))
    links = []
    for name, target, kind in (
        ("alpha-1.0/l", "/etc/passwd", tarfile.SYMTYPE),
        ("alpha-1.0/l", "../../x", tarfile.SYMTYPE),
        ("alpha-1.0/l", "../x", tarfile.LNKTYPE),
        ("alpha-1.0/d", "", tarfile.CHRTYPE),
        ("alpha-1.0/f", "", tarfile.FIFOTYPE),
        ("../alpha-1.0/x", "", tarfile.REGTYPE),
        ("/abs", "", tarfile.REGTYPE),
    ):
        member = tarfile.TarInfo(name)
        member.type, member.linkname = kind, target
        links.append(member)
    out += [("alpha-1.0.tar.gz", sdist_bytes("alpha", "1.0", [m])) for m in links]
    for typeflag in (b"L", b"K", b"x", b"g"):
        stream = tar_header(b"././@LongLink", 70_000, typeflag) + b"a" * 70_144
        out.append(("alpha-1.0.tar.gz", gzip.compress(stream + bytes(1024))))
    broken = bytearray(sdist_bytes("alpha", "1.0"))
    out.append(("alpha-1.0.tar.gz", bytes(broken[:-30])))
    out.append(("alpha-1.0.tar.gz", wheel_bytes("alpha", "1.0")))
    out.append((wheel, sdist_bytes("alpha", "1.0")))
    return out


def generate(seed: int, count: int) -> Iterator[Case]:
    """`count` hostile cases from `seed` (valid uploads are mixed in as a control)."""
    rng = random.Random(seed)  # noqa: S311  (replayable by seed, not a secret)
    wheel = wheel_bytes("alpha", "1.0")
    sdist = sdist_bytes("alpha", "1.0")
    archives = _hostile_archives()
    for n in range(count):
        family = "valid" if n % VALID_EVERY == VALID_EVERY - 1 else FAMILIES[n % len(FAMILIES)]
        filename, data = rng.choice(
            [("alpha-1.0-py3-none-any.whl", wheel), ("alpha-1.0.tar.gz", sdist)]
        )
        fields = _base_fields(data)
        if family == "field":
            for _ in range(rng.randint(1, 3)):
                fields[rng.choice(_FIELDS)] = rng.choice(_VALUES)
            yield Case(family, multipart(_form(filename, data, fields)))
        elif family == "filename":
            raw = rng.choice(_FILENAMES).format(w=filename)
            yield Case(family, multipart(_form(raw, data, fields)))
        elif family == "bytes":
            yield Case(
                family, multipart(_form(filename, _damage(rng, data), {":action": "file_upload"}))
            )
        elif family == "archive":
            filename, data = rng.choice(archives)
            if rng.random() < 0.3:
                data = _damage(rng, data)
            fields = _base_fields(data) if rng.random() < 0.5 else {":action": "file_upload"}
            yield Case(family, multipart(_form(filename, data, fields)))
        elif family == "multipart":
            yield _framing(rng, filename, data, fields)
        else:
            project = f"control{n}"
            odd = n // VALID_EVERY % 2
            valid = wheel_bytes(project, "1.0") if odd else sdist_bytes(project, "1.0")
            name = f"{project}-1.0-py3-none-any.whl" if odd else f"{project}-1.0.tar.gz"
            yield Case(family, multipart(_form(name, valid, _base_fields(valid))))


def _damage(rng: random.Random, data: bytes) -> bytes:
    """Truncate, flip bytes, insert, replace with noise, or empty."""
    how = rng.randrange(5)
    if how == 0:
        return data[: rng.randrange(len(data))]
    if how == 1:
        mutable = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutable[rng.randrange(len(mutable))] = rng.randrange(256)
        return bytes(mutable)
    if how == 2:
        at = rng.randrange(len(data))
        return data[:at] + rng.randbytes(rng.randint(1, 600)) + data[at:]
    if how == 3:
        return rng.randbytes(rng.randint(0, 4000))
    return b""


def _framing(rng: random.Random, filename: str, data: bytes, fields: dict[str, str]) -> Case:
    """Damage to the multipart body or its headers rather than to the upload."""
    body = multipart(_form(filename, data, fields))
    how = rng.randrange(10)
    if how == 0:
        return Case("multipart", body[: rng.randrange(len(body))])
    if how == 1:
        return Case("multipart", body, "multipart/form-data")  # no boundary
    if how == 2:
        return Case("multipart", body, "multipart/form-data; boundary=other")
    if how == 3:
        return Case("multipart", body, rng.choice(["application/json", "text/plain", ""]))
    if how == 4:  # two content parts
        parts = [*_form(filename, data, fields), ("content", filename, data[::-1])]
        return Case("multipart", multipart(parts))
    if how == 5:  # a single-valued field twice with two values
        parts = [*_form(filename, data, fields), ("sha256_digest", None, b"0" * 64)]
        return Case("multipart", multipart(parts))
    if how == 6:
        return Case("multipart", multipart(_form(filename, data, fields), headers="X: y\r\n" * 200))
    if how == 7:  # content sent as a plain field
        return Case("multipart", multipart([(k, None, v.encode()) for k, v in fields.items()]
                                           + [("content", None, data)]))  # fmt: skip
    if how == 8:  # a part without a name
        return Case("multipart", body.replace(b'name="content"; ', b"", 1))
    mutable = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        mutable[rng.randrange(len(mutable))] = rng.randrange(256)
    return Case("multipart", bytes(mutable))
