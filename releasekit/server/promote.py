"""Promote a release from one index to another without a rebuild: the exact files move.

Every file of PROJECT VERSION in the source index is read (its METADATA parsed, its bytes
hashed), then copied into the target through the store path uploads use (`Upload.create`, the
conditional create, with the source's upload time), hashed while copied and read back after
the store: the three sha256 must agree, or the copy is removed again.

Refused before anything is written (`PromoteRefused`, with the HTTP status of the refusal):
no file of that version (404), the source project quarantined or the target project archived
or quarantined (PEP 792, 403), a yanked file unless `include_yanked` (409), a target file of
the same name with other bytes (409, naming both digests). Index names are resolved by
`promote_between` (unknown: 404, the same index twice: 400).

Idempotent: a target file with the same bytes is `present`, a success. Kept: the upload time,
the PEP 658 sidecar (written from the same METADATA bytes), the PEP 740 provenance that binds
these bytes (its publisher as first uploaded), and with `include_yanked` the yank and its
reason. Not copied: the project's PEP 792 status (each index's admins set their own).
A failure half-way (a store fault, a different upload winning a race) raises `PromoteRefused`
whose `in_target` names the files already in the target: running the same promotion again
finishes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from packaging.version import Version

from releasekit.errors import IndexServerError
from releasekit.server.catalogue import YANKED_NAME
from releasekit.server.indexes import ROOT_INDEX, check_name, config_for, read_registry
from releasekit.server.metadata import (
    ArchiveError,
    DistFilename,
    canonical_version,
    normalize,
    parse_filename,
    read_metadata,
)
from releasekit.server.promote_store import (
    Planned,
    PromotedFile,
    PromoteRefused,
    PromoteStep,
    Promotion,
    read_json,
    store_fault,
    store_file,
    target_sha256,
)
from releasekit.server.records import filename_project, hash_stream
from releasekit.server.status import read_statuses
from releasekit.server.storage import Storage, StoredFile

__all__ = [
    "PromoteRefused",
    "PromoteStep",
    "PromotedFile",
    "Promotion",
    "promote",
    "promote_between",
]


def promote_between(
    root: Storage,
    storage_of: Callable[[str], Storage],
    project: str,
    version: str,
    source: str,
    target: str,
    *,
    include_yanked: bool = False,
    progress: Callable[[PromoteStep], None] | None = None,
) -> Promotion:
    """Promote between two indexes named in the root store's registry (`root` included)."""
    for name in (source, target):
        try:
            check_name(name, allow_root=True)
        except IndexServerError as exc:
            raise PromoteRefused(400, "bad-index", exc.message, exc.hint) from None
    if source == target:
        raise PromoteRefused(
            400,
            "same-index",
            f"cannot promote index {source!r} into itself",
            hint="name two different indexes: --from staging --to prod",
        )
    configs = read_registry(root)
    for name in (source, target):
        try:
            config_for(configs, name)
        except IndexServerError as exc:
            raise PromoteRefused(404, "unknown-index", exc.message, exc.hint) from None
    stores = {n: root if n == ROOT_INDEX else storage_of(n) for n in (source, target)}
    result = promote(
        stores[source],
        stores[target],
        project,
        version,
        include_yanked=include_yanked,
        progress=progress,
    )
    return Promotion(result.project, result.version, source, target, result.files)


def promote(
    source: Storage,
    target: Storage,
    project: str,
    version: str,
    *,
    include_yanked: bool = False,
    progress: Callable[[PromoteStep], None] | None = None,
) -> Promotion:
    """Copy every file of PROJECT VERSION from `source` to `target`; see the module docstring."""
    name, wanted = _release(project, version)
    planned = _plan(source, target, name, wanted, include_yanked)
    provenance = _provenance(source, planned)
    yanks = read_json(source, YANKED_NAME) if include_yanked else {}
    if not target.exists():
        target.prepare()  # an index whose store was never created (or was wiped)
    files: list[PromotedFile] = []
    for done, entry in enumerate(planned, 1):
        try:
            promoted = store_file(source, target, entry, provenance, yanks)
        except PromoteRefused as exc:
            raise _stopped(exc, files, planned) from None
        except OSError as exc:
            raise _stopped(store_fault(exc, entry.stored.filename), files, planned) from None
        files.append(promoted)
        if progress is not None:
            progress(PromoteStep(done, len(planned), promoted))
    return Promotion(name, wanted, source.describe(), target.describe(), tuple(files))


def _release(project: str, version: str) -> tuple[str, str]:
    try:
        return normalize(project), canonical_version(version)
    except ArchiveError as exc:
        raise PromoteRefused(400, "bad-version", exc.message, exc.hint) from None


def _plan(
    source: Storage, target: Storage, project: str, version: str, include_yanked: bool
) -> list[Planned]:
    """Read and hash the release in `source`; refuse (writing nothing) what cannot be promoted."""
    if not source.exists():
        raise PromoteRefused(
            404,
            "not-found",
            f"project {project!r} is not on the source index ({source.describe()} is empty)",
        )
    _check_status(source, target, project)
    found: dict[str, list[tuple[StoredFile, DistFilename]]] = {}
    for stored in source.scan():
        try:
            if filename_project(stored.filename) != project:
                continue
            dist = parse_filename(stored.filename)
        except ArchiveError:
            continue  # not a distribution: the index does not list it either
        found.setdefault(dist.version, []).append((stored, dist))
    release = sorted(found.get(version, []), key=lambda pair: pair[0].filename)
    if not release:
        known = ", ".join(sorted(found, key=Version)) or "none"
        raise PromoteRefused(
            404,
            "not-found",
            f"{project} {version} has no files on the source index",
            hint=f"versions of {project} there: {known}",
        )
    yanked = read_json(source, YANKED_NAME)
    refused = [s.filename for s, _ in release if s.filename in yanked]
    if refused and not include_yanked:
        raise PromoteRefused(
            409,
            "yanked",
            f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} yanked on the source "
            "index; a yanked file is not promoted by default",
            hint="pass --include-yanked to promote it with its yank (and reason), or unyank it",
        )
    planned, conflicts = [], []
    for stored, dist in release:
        entry = _read_source(source, stored, dist)
        theirs = target_sha256(target, stored.filename)
        if theirs is not None and theirs != entry.sha256:
            conflicts.append(f"{stored.filename} (target {theirs}, source {entry.sha256})")
        planned.append(replace(entry, present=theirs is not None))
    if conflicts:
        raise PromoteRefused(
            409,
            "file-exists",
            f"the target index has other bytes under the same name: {'; '.join(conflicts)}; "
            "nothing was promoted",
            hint="files are immutable: release a new version, or remove the target's copy first",
        )
    return planned


def _check_status(source: Storage, target: Storage, project: str) -> None:
    status = read_statuses(source).get(project)
    if status is not None and not status.serves_files:
        raise PromoteRefused(
            403,
            "quarantined",
            f"project {project!r} is quarantined on the source index; its files are not promoted",
            hint="ask the index admins to lift it (`releasekit server status PROJECT active`)",
        )
    status = read_statuses(target).get(project)
    if status is not None and not status.takes_uploads:
        raise PromoteRefused(
            403,
            f"project-{status.status}",
            f"project {project!r} is {status.status} on the target index; it takes no new files",
            hint="ask the index admins to set it active there (`releasekit server status`)",
        )


def _read_source(source: Storage, stored: StoredFile, dist: DistFilename) -> Planned:
    """One source file read once (METADATA and digests from the same reader)."""
    try:
        with source.open(stored.filename) as handle:
            meta = read_metadata(handle, dist)
            sha256, blake2b = hash_stream(handle)
    except ArchiveError as exc:
        raise PromoteRefused(
            409,
            "unreadable",
            f"{stored.filename} on the source index cannot be read: {exc.message}",
            hint="remove or replace it there, then promote again",
        ) from None
    except FileNotFoundError:
        raise PromoteRefused(
            409, "changed", f"{stored.filename} was removed from the source index meanwhile"
        ) from None
    return Planned(stored, dist, meta, sha256, blake2b, present=False)


def _provenance(source: Storage, planned: list[Planned]) -> dict[str, bytes]:
    """The PEP 740 records of the source that bind exactly the bytes being promoted."""
    found: dict[str, bytes] = {}
    for entry in planned:
        raw = source.read_state(f"provenance/{entry.stored.filename}.json")
        if raw is None:
            continue
        try:
            binds = json.loads(raw).get("sha256") == entry.sha256
        except (ValueError, AttributeError):
            binds = False
        if binds:
            found[entry.stored.filename] = raw
    return found


def _stopped(
    exc: PromoteRefused, done: list[PromotedFile], planned: list[Planned]
) -> PromoteRefused:
    """The refusal, saying which files of the release are in the target (a rerun resumes)."""
    in_target = tuple(f.filename for f in done)
    missing = [p.stored.filename for p in planned if p.stored.filename not in in_target]
    already = ", ".join(in_target) if in_target else "none"
    return PromoteRefused(
        exc.status,
        exc.code,
        f"{exc.message}; stopped half-way: in the target: {already}; not promoted: "
        f"{', '.join(missing)}",
        hint=f"{exc.hint + '; ' if exc.hint else ''}run the same promotion again to finish it "
        "(files already there are checked, not copied)",
        in_target=in_target,
    )
