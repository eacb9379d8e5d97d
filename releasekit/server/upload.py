"""The legacy upload API (twine, `uv publish`, `poetry publish`, `curl -F`): validate, then store.

Order of checks: form fields, filename grammar, size and digests while copying into a private
temp file, archive sanity and METADATA agreement, duplicates, then one atomic commit. Any refusal
discards the temp file, so nothing is ever stored or listed on failure.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from releasekit.errors import IndexServerError
from releasekit.server.catalogue import Catalogue, FileRecord, hash_stored, make_record
from releasekit.server.metadata import (
    ArchiveError,
    CoreMetadata,
    DistFilename,
    canonical_version,
    normalize,
    parse_filename,
    read_metadata,
)
from releasekit.server.records import index_file, metadata_state_name, record_note, store_sidecar
from releasekit.server.storage import Storage, Upload

_FILETYPES = {"sdist": "sdist", "bdist_wheel": "wheel"}
_HEX = r"\s*[0-9a-fA-F]{%d}\s*"
# The shape of every field the server reads, checked before any is used (ASCII only: str
# methods such as isdigit() and hmac.compare_digest() misbehave on other scripts).
_FIELD_SHAPES = {
    "protocol_version": (r"[0-9]{1,3}", "1"),
    "name": (r"\s*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]{0,198}[A-Za-z0-9])\s*", "my-package"),
    "version": (r"\s*[A-Za-z0-9.+!_-]{1,128}\s*", "1.2.3"),
    "filetype": (r"sdist|bdist_wheel", "bdist_wheel or sdist"),
    "pyversion": (r"[A-Za-z0-9._,+-]{1,64}", "py3 or source"),
    "metadata_version": (r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", "2.4"),
    "sha256_digest": (_HEX % 64, "64 hex digits"),
    "blake2_256_digest": (_HEX % 64, "64 hex digits"),
    "md5_digest": (_HEX % 32, "32 hex digits"),
}
SINGLE_FIELDS = frozenset({":action", *_FIELD_SHAPES})


class UploadRefused(IndexServerError):
    """An upload the server will not store; `status` and `code` go into the problem body."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class UploadOutcome:
    """The stored file's record; `created` is False for an identical re-upload."""

    record: FileRecord
    created: bool


def collect_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The form's text fields; a single-valued field sent twice with two values is refused."""
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in SINGLE_FIELDS and fields.get(key, value) != value:
            raise UploadRefused(
                400,
                "bad-field",
                f"the form sends {key} twice with different values",
                hint=f"send {key} once",
            )
        fields[key] = value
    return fields


def check_fields(fields: Mapping[str, str]) -> None:
    """Every field the server reads has its expected shape: ASCII, bounded, well-formed."""
    for key, (shape, example) in _FIELD_SHAPES.items():
        value = fields.get(key)
        if value is not None and not re.fullmatch(shape, value, re.ASCII):
            raise UploadRefused(
                400,
                "bad-field",
                f"the form field {key} is malformed: {value[:80]!r}",
                hint=f"send {key} like {example} (ASCII), as twine and uv publish do",
            )


def check_form(fields: Mapping[str, str], filename: str | None) -> DistFilename:
    """Validate what the form says before reading the file: protocol, filename, name, version."""
    protocol = fields.get("protocol_version", "1")
    if protocol != "1":
        raise UploadRefused(
            400,
            "bad-protocol",
            f"protocol_version {protocol!r} is not supported",
            hint="send protocol_version=1 (the legacy upload API)",
        )
    if not filename:
        raise UploadRefused(
            400,
            "missing-content",
            "the form has no file in its `content` field",
            hint="send the distribution as a file part named content (curl -F content=@FILE)",
        )
    try:
        dist = parse_filename(filename)
    except ArchiveError as exc:
        raise UploadRefused(400, "bad-filename", exc.message, exc.hint) from None
    filetype = fields.get("filetype")
    if filetype and _FILETYPES.get(filetype) != dist.kind:
        raise UploadRefused(
            400,
            "filetype-mismatch",
            f"filetype {filetype!r} does not match {filename} (a {dist.kind})",
            hint="send filetype=bdist_wheel for wheels and filetype=sdist for sdists",
        )
    _agree("the form", dist, name=fields.get("name"), version=fields.get("version"))
    return dist


def _agree(source: str, dist: DistFilename, *, name: str | None, version: str | None) -> None:
    """`source` (the form, the METADATA) must name the same project and version as the file."""
    if name is not None and normalize(name) != dist.project:
        raise UploadRefused(
            400,
            "name-mismatch",
            f"{source} name {name!r} does not match the filename {dist.filename!r} "
            f"(project {dist.project!r})",
            hint="upload the file that the build produced for this project, unrenamed",
        )
    if version is not None:
        try:
            same = canonical_version(version) == dist.version
        except ArchiveError:
            same = False
        if not same:
            raise UploadRefused(
                400,
                "version-mismatch",
                f"{source} version {version!r} does not match the filename {dist.filename!r} "
                f"(version {dist.version!r})",
                hint="rebuild so that the metadata, the filename and the upload agree",
            )


def _digests_agree(fields: Mapping[str, str], computed: Mapping[str, str]) -> None:
    for field, algorithm in (
        ("sha256_digest", "sha256"),
        ("blake2_256_digest", "blake2b"),
        ("md5_digest", "md5"),
    ):
        supplied = fields.get(field)
        # check_fields made it ASCII hex already: compare_digest refuses non-ASCII str.
        if supplied and not hmac.compare_digest(supplied.strip().lower(), computed[algorithm]):
            raise UploadRefused(
                400,
                "digest-mismatch",
                f"the {field} supplied ({supplied}) does not match the uploaded file "
                f"({computed[algorithm]}): the file was corrupted or changed in transit",
                hint="upload again; if it keeps failing, rebuild the file",
            )


def receive_upload(
    storage: Storage,
    catalogue: Catalogue,
    fields: Mapping[str, str],
    filename: str | None,
    content: BinaryIO,
    *,
    max_size: int,
    overwrite: bool,
) -> UploadOutcome:
    """Validate and store one uploaded file; raises UploadRefused and stores nothing on failure."""
    check_fields(fields)
    dist = check_form(fields, filename)
    try:
        upload = storage.new_upload()
    except OSError as exc:
        raise storage_refusal(exc) from None
    try:
        with upload:
            computed = _copy(content, upload, dist, max_size)
            _digests_agree(fields, computed)
            try:
                with upload.reader() as written:
                    meta = read_metadata(written, dist)
            except ArchiveError as exc:
                raise UploadRefused(400, "bad-archive", exc.message, exc.hint) from None
            what = "PKG-INFO" if dist.kind == "sdist" else "METADATA"
            _agree(f"the {what}", dist, name=meta.name, version=meta.version)
            # One commit per filename at a time: the check, the commit and the record agree.
            with storage.lock(dist.filename):
                return _commit(
                    storage, catalogue, dist, meta, upload, computed, overwrite=overwrite
                )
    except OSError as exc:
        raise storage_refusal(exc) from None


def _copy(content: BinaryIO, upload: Upload, dist: DistFilename, max_size: int) -> dict[str, str]:
    """Stream the body into the upload, enforcing the size limit; the digests of the bytes."""
    hashers: dict[str, Any] = {
        "sha256": hashlib.sha256(),
        "blake2b": hashlib.blake2b(digest_size=32),
        "md5": hashlib.md5(usedforsecurity=False),
    }
    size = 0
    while chunk := content.read(1024 * 1024):
        size += len(chunk)
        if size > max_size:
            raise UploadRefused(
                413,
                "too-large",
                f"{dist.filename} is larger than the limit of {max_size} bytes",
                hint="ask the admin to raise --max-upload-size",
            )
        upload.write(chunk)
        for hasher in hashers.values():
            hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def _commit(
    storage: Storage,
    catalogue: Catalogue,
    dist: DistFilename,
    meta: CoreMetadata,
    upload: Upload,
    computed: Mapping[str, str],
    *,
    overwrite: bool,
) -> UploadOutcome:
    """Store the checked upload (caller holds the filename's lock)."""
    sha256, blake2b = computed["sha256"], computed["blake2b"]
    existing = _stored_sha256(storage, catalogue, dist.filename)
    if existing is not None:
        if existing[1] == sha256:
            return UploadOutcome(existing[0] or _record(storage, dist, meta, computed), False)
        if not overwrite:
            raise _conflict(dist.filename)
    # The sidecar before the commit point and the record in the change-log entry: a worker that
    # applies the entry can list and serve the file (and its metadata) without reading it.
    sidecar = store_sidecar(storage, dist.filename, dist, meta)
    note = record_note(dist, meta, sha256, blake2b, sidecar)
    try:
        stored = (
            upload.replace(dist.filename, note=note)
            if overwrite
            else upload.create(dist.filename, note=note)
        )
    except BaseException:
        if sidecar is not None and existing is None and storage.stat(dist.filename) is None:
            storage.delete_state(metadata_state_name(dist.filename))  # nothing half-written
        raise
    if stored is None:
        # Another process won the race for this name: same bytes is a success, as above.
        existing = _stored_sha256(storage, catalogue, dist.filename)
        if existing is not None and existing[1] == sha256:
            return UploadOutcome(existing[0] or _record(storage, dist, meta, computed), False)
        _restore_sidecar(storage, dist.filename)
        raise _conflict(dist.filename)
    record = FileRecord(filename=stored.filename, size=stored.size, mtime_ns=stored.mtime_ns,
                        **note)  # type: ignore[arg-type]  # fmt: skip
    catalogue.add(record)
    return UploadOutcome(record, created=True)


def _stored_sha256(
    storage: Storage, catalogue: Catalogue, filename: str
) -> tuple[FileRecord | None, str] | None:
    """The stored file's record (when current) and sha256, None when nothing is stored."""
    existing = storage.stat(filename)
    if existing is None:
        return None
    known = catalogue.files.get(filename)
    if known is not None and (known.size, known.mtime_ns) == (existing.size, existing.mtime_ns):
        return known, known.sha256
    try:
        return None, hash_stored(storage, filename)[0]
    except FileNotFoundError:
        return None  # removed by an admin a moment ago


def _restore_sidecar(storage: Storage, filename: str) -> None:
    """Put back the winner's sidecar, which this losing upload wrote over before its create."""
    stored = storage.stat(filename)
    if stored is not None:
        with contextlib.suppress(IndexServerError, OSError):
            index_file(storage, stored)


def _record(
    storage: Storage, dist: DistFilename, meta: CoreMetadata, computed: Mapping[str, str]
) -> FileRecord:
    """The record of an identical file stored by someone else and not indexed yet."""
    stored = storage.stat(dist.filename)
    if stored is None:
        raise _conflict(dist.filename)
    return make_record(storage, stored, dist, meta, computed["sha256"], computed["blake2b"])


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def storage_refusal(exc: OSError) -> UploadRefused | OSError:
    """A full disk or quota is the client's 507 (retry later); anything else stays a fault."""
    if exc.errno not in _DISK_FULL:
        return exc  # re-raised as it is: a real server fault, answered 500
    what = "quota" if exc.errno == errno.EDQUOT else "disk"
    return UploadRefused(
        507,
        "insufficient-storage",
        f"the index's {what} is full: the upload was not stored (nothing was kept of it)",
        hint="retry once the admin has freed space; /ready reports low disk",
    )


def _conflict(filename: str) -> UploadRefused:
    return UploadRefused(
        409,
        "file-exists",
        f"File already exists: {filename} is stored with different contents",
        hint="release a new version; files are immutable unless the server runs with --overwrite "
        "(or the index allows it: `releasekit server index overwrite NAME on`)",
    )
