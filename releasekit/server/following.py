"""Applying change-log entries (changes.py) to a catalogue's maps: pure apart from `stat`.

Entries (JSON objects):
- `put`: {filename, size, mtime_ns, record?} a file was stored; `record` is its catalogue record
  without filename/size/mtime_ns, so followers list it without reading the file;
- `del`: {filename, size, mtime_ns} a file was removed;
- `index`: {records: [full records]} files indexed by one process, so no other indexes them;
- `yank`: {filenames: [...], reason: str | null} (null unyanks);
- `status`: {project, status, reason} a PEP 792 marker.
A record is used only while the file still has the entry's size and mtime (else the file is
pending: indexed from its bytes), so a stale or forged entry can never list bytes it does not
describe, and an entry never names anything but a plain file in the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace

from releasekit.server.changes import plain_filename
from releasekit.server.metadata import ArchiveError, normalize
from releasekit.server.records import FileRecord, PendingFile, filename_project
from releasekit.server.status import STATUSES, ProjectStatus
from releasekit.server.storage import StoredFile

_HEX64 = re.compile(r"[0-9a-f]{64}")
_OPTIONAL = {"requires_python", "metadata_sha256", "yanked"}
NOTE_FIELDS = tuple(f.name for f in fields(FileRecord) if f.name not in ("filename", "size",
                    "mtime_ns", "yanked"))  # fmt: skip


class BadChange(ValueError):
    """An entry this index did not write (malformed, forged): skipped with a warning."""


@dataclass
class Work:
    """A working copy of the catalogue's maps while a batch of entries is applied."""

    files: dict[str, FileRecord]
    pending: dict[str, PendingFile]
    yanked: dict[str, str]
    statuses: dict[str, ProjectStatus]
    changed: set[str] = field(default_factory=set)
    indexed: int = 0  # pending files that became records (indexing progress)
    # A store logged without a record (a bundle import, a promotion, a migration): its writer
    # may have set yanks or statuses in the snapshots only, so the follower re-reads them.
    foreign: bool = False


def note_of(record: FileRecord) -> dict[str, object]:
    """What a `put` entry carries about a file (the record minus name, size, mtime, yank)."""
    return {name: getattr(record, name) for name in NOTE_FIELDS}


def record_from(data: Mapping[str, object], stored: StoredFile) -> FileRecord:
    """A record from an entry's fields, every field checked for its type and shape."""
    values: dict[str, object] = {}
    for name in NOTE_FIELDS:
        value = data.get(name)
        if value is None and name in _OPTIONAL:
            values[name] = None
        elif not isinstance(value, str) or len(value) > 4096:
            raise BadChange(f"record field {name} is missing or not a string")
        else:
            values[name] = value
    if not _HEX64.fullmatch(str(values["sha256"])) or not _HEX64.fullmatch(str(values["blake2b"])):
        raise BadChange("record digests are not 64 hex digits")
    if values["project"] != _project(stored.filename):
        raise BadChange(f"record project does not match {stored.filename}")
    return FileRecord(
        filename=stored.filename,
        size=stored.size,
        mtime_ns=stored.mtime_ns,
        **values,  # type: ignore[arg-type]
    ).compact()  # a follower holds one per file, like the indexer that logged them


def _project(name: str) -> str:
    try:
        return filename_project(name)
    except ArchiveError as exc:
        raise BadChange(f"{name!r} is not a distribution filename") from exc


def _stored(change: Mapping[str, object]) -> StoredFile:
    name = plain_filename(change.get("filename"))
    size, mtime = change.get("size"), change.get("mtime_ns")
    if name is None:
        raise BadChange(f"filename {str(change.get('filename'))[:80]!r} is not a plain file name")
    if type(size) is not int or type(mtime) is not int or size < 0 or mtime < 0:
        raise BadChange("size and mtime_ns must be non-negative integers")
    return StoredFile(name, size, mtime)


def apply_change(
    change: Mapping[str, object], work: Work, stat: Callable[[str], StoredFile | None]
) -> None:
    """Fold one entry into `work`; raises BadChange (nothing applied) for a malformed one."""
    op = change.get("op")
    if op in ("put", "del"):
        stored = _stored(change)
        record = change.get("record")
        if op == "put" and record is not None and not isinstance(record, dict):
            raise BadChange("record is not an object")
        made = record_from(record, stored) if op == "put" and isinstance(record, dict) else None
        work.foreign = work.foreign or (op == "put" and made is None)
        _settle(stored.filename, made, work, stat)
    elif op == "index":
        records = change.get("records")
        if not isinstance(records, list):
            raise BadChange("records is not a list")
        checked = []
        for row in records:
            if not isinstance(row, dict):
                raise BadChange("a record is not an object")
            checked.append(record_from(row, _stored(row)))
        for made in checked:
            _settle(made.filename, made, work, stat)
    elif op == "yank":
        _yank(change, work)
    elif op == "status":
        _status(change, work)
    else:
        raise BadChange(f"unknown op {str(op)[:40]!r}")


def _settle(
    name: str, made: FileRecord | None, work: Work, stat: Callable[[str], StoredFile | None]
) -> None:
    """Make `work` agree with what is stored under `name` now, using `made` if it describes it."""
    known, waiting = work.files.get(name), work.pending.get(name)
    if (
        made is not None
        and known is not None
        and _same(known, made)
        and known.sha256 == made.sha256
    ):
        return  # our own entry, or one applied before: nothing to do and nothing to stat
    if made is not None and waiting is not None and _same(waiting.stored, made):
        current: StoredFile | None = waiting.stored  # a scan stat it already
    else:
        current = stat(name)
    project = made.project if made is not None else None
    if current is None:
        for gone in (work.files.pop(name, None), work.pending.pop(name, None)):
            if gone is not None:
                work.changed.add(gone.project)
        return
    project = project or _project(name)
    if made is not None and _same(current, made):
        work.files[name] = replace(made, yanked=work.yanked.get(name))
        if work.pending.pop(name, None) is not None:
            work.indexed += 1
    elif known is not None and _same(current, known):
        return  # the entry describes other bytes than the ones we already list
    elif waiting is None or not _same(current, waiting.stored):
        work.files.pop(name, None)
        work.pending[name] = PendingFile(current, project)  # indexed from its bytes
    else:
        return
    work.changed.add(project)


def _same(a: StoredFile | FileRecord, b: StoredFile | FileRecord) -> bool:
    return (a.size, a.mtime_ns) == (b.size, b.mtime_ns)


def _yank(change: Mapping[str, object], work: Work) -> None:
    names, reason = change.get("filenames"), change.get("reason")
    if not isinstance(names, list) or not (reason is None or isinstance(reason, str)):
        raise BadChange("a yank names a list of filenames and a reason (string or null)")
    checked = [plain_filename(n) for n in names]
    if None in checked:
        raise BadChange("a yank names something that is not a plain file name")
    for name in checked:
        assert name is not None
        if reason is None:
            work.yanked.pop(name, None)
        else:
            work.yanked[name] = reason
        record = work.files.get(name)
        if record is not None and record.yanked != reason:
            work.files[name] = replace(record, yanked=reason)
            work.changed.add(record.project)


def _status(change: Mapping[str, object], work: Work) -> None:
    project, status, reason = change.get("project"), change.get("status"), change.get("reason")
    if not isinstance(project, str) or not project or normalize(project) != project:
        raise BadChange("a status names no normalized project")
    if status not in STATUSES or not isinstance(reason, str):
        raise BadChange("a status needs a known status and a reason string")
    marker = ProjectStatus(status, reason)
    if marker.status == "active":
        work.statuses.pop(project, None)
    else:
        work.statuses[project] = marker
    work.changed.add(project)
