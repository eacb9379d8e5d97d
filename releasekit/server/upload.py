"""The legacy upload API (twine, `uv publish`, `poetry publish`, `curl -F`): validate, then store.

Order of checks: form fields, filename grammar, size and digests while copying into a private
temp file, archive sanity and METADATA agreement, duplicates, then one atomic commit. Any refusal
discards the temp file, so nothing is ever stored or listed on failure.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from releasekit.errors import IndexServerError
from releasekit.server.catalogue import Catalogue, FileRecord, hash_file, make_record
from releasekit.server.metadata import (
    ArchiveError,
    DistFilename,
    canonical_version,
    normalize,
    parse_filename,
    read_metadata,
)
from releasekit.server.storage import FileExistsConflict, Storage

_FILETYPES = {"sdist": "sdist", "bdist_wheel": "wheel"}


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
    dist = check_form(fields, filename)
    handle, temp = storage.new_upload()
    try:
        hashers: dict[str, Any] = {
            "sha256": hashlib.sha256(),
            "blake2b": hashlib.blake2b(digest_size=32),
            "md5": hashlib.md5(usedforsecurity=False),
        }
        size = 0
        with handle:
            while chunk := content.read(1024 * 1024):
                size += len(chunk)
                if size > max_size:
                    raise UploadRefused(
                        413,
                        "too-large",
                        f"{dist.filename} is larger than the limit of {max_size} bytes",
                        hint="ask the admin to raise --max-upload-size",
                    )
                handle.write(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
        computed = {name: hasher.hexdigest() for name, hasher in hashers.items()}
        _digests_agree(fields, computed)
        try:
            meta = read_metadata(temp, dist)
        except ArchiveError as exc:
            raise UploadRefused(400, "bad-archive", exc.message, exc.hint) from None
        what = "PKG-INFO" if dist.kind == "sdist" else "METADATA"
        _agree(f"the {what}", dist, name=meta.name, version=meta.version)
        existing = storage.stat(dist.filename)
        if existing is not None:
            known = catalogue.files.get(dist.filename)
            if known is not None and (known.size, known.mtime_ns) == (
                existing.size,
                existing.mtime_ns,
            ):
                old_sha = known.sha256
            else:
                old_sha = hash_file(storage.path(dist.filename))[0]
            if old_sha == computed["sha256"]:
                storage.discard(temp)
                record = known or make_record(
                    storage, existing, dist, meta, computed["sha256"], computed["blake2b"]
                )
                return UploadOutcome(record, created=False)
            if not overwrite:
                raise _conflict(dist.filename)
        try:
            stored = storage.commit(temp, dist.filename, overwrite=overwrite)
        except FileExistsConflict:
            raise _conflict(dist.filename) from None
        record = make_record(storage, stored, dist, meta, computed["sha256"], computed["blake2b"])
        catalogue.add(record)
        return UploadOutcome(record, created=True)
    finally:
        storage.discard(temp)


def _conflict(filename: str) -> UploadRefused:
    return UploadRefused(
        409,
        "file-exists",
        f"File already exists: {filename} is stored with different contents",
        hint="release a new version; files are immutable unless the server runs with --overwrite",
    )
