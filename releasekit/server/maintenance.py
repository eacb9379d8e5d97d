"""Admin operations on a packages directory: reindex, yank, unyank, remove.

They work on the store directly (no server needed); each change is also a change-log entry,
which a running server applies before its next page (locally) or within its poll interval.
Nothing here needs Starlette, so the CLI can import it without the server extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from releasekit.errors import IndexServerError
from releasekit.server.catalogue import Catalogue, FileRecord, Progress, metadata_state_name
from releasekit.server.metadata import ArchiveError, canonical_version, normalize
from releasekit.server.pages import PageSet
from releasekit.server.status import ProjectStatus
from releasekit.server.storage import Storage

PROGRESS_EVERY = 1000


@dataclass(frozen=True)
class ReindexReport:
    """What `reindex` found: listed files and projects, and files it could not list (and why)."""

    files: int
    projects: int
    skipped: tuple[tuple[str, str], ...]


def open_index(storage: Storage) -> tuple[Catalogue, PageSet]:
    """Load the catalogue (reusing the cache) and its pages, without writing pages."""
    catalogue = Catalogue(storage)
    catalogue.load()
    pages = PageSet(catalogue, storage)
    return catalogue, pages


def reindex(storage: Storage, progress: Callable[[Progress], None] | None = None) -> ReindexReport:
    """Throw the cache away and rebuild it (records, pages) from the files alone; PEP 658
    sidecars are written again at their first request.

    `progress` (a terminal user watches this long job) is told the files done so far and
    the total about every PROGRESS_EVERY files, and once at the end.
    """
    if not storage.exists():
        raise IndexServerError(
            f"the packages {storage.describe()} does not exist",
            hint="pass the directory the server runs on",
        )
    for name in ("simple", "metadata"):
        storage.clear_state(name)
    storage.delete_state("catalogue.json")
    storage.prepare()
    catalogue = Catalogue(storage)
    catalogue.load(use_cache=False, progress=_every(PROGRESS_EVERY, progress))
    PageSet(catalogue, storage).rebuild(catalogue.projects)
    catalogue.save()
    return ReindexReport(
        files=len(catalogue.files),
        projects=len(catalogue.projects),
        skipped=tuple(sorted(catalogue.skipped.items())),
    )


def _every(
    step: int, progress: Callable[[Progress], None] | None
) -> Callable[[Progress], None] | None:
    """Pass on a progress report each time `done` crosses a multiple of `step`, and the last."""
    if progress is None:
        return None
    told = 0

    def report(now: Progress) -> None:
        nonlocal told
        if now.done // step > told // step or now.done == now.total:
            told = now.done
            progress(now)

    return report


def release_files(catalogue: Catalogue, project: str, version: str) -> list[FileRecord]:
    """The files of one release, or an IndexServerError naming what exists instead."""
    name = normalize(project)
    try:
        wanted = canonical_version(version)
    except ArchiveError as exc:
        raise IndexServerError(exc.message, hint=exc.hint) from None
    records = catalogue.projects.get(name)
    if not records:
        raise IndexServerError(
            f"project {name!r} is not on this index",
            hint="check the name; `releasekit server reindex` lists what the directory holds",
        )
    found = [r for r in records if r.version == wanted]
    if not found:
        versions = sorted({r.version for r in records})
        raise IndexServerError(
            f"{name} has no release {wanted}", hint=f"known versions: {', '.join(versions)}"
        )
    return found


def set_yanked(
    storage: Storage, project: str, version: str, reason: str | None
) -> list[FileRecord]:
    """Yank (reason given, may be empty) or unyank (None) every file of a release."""
    catalogue, pages = open_index(storage)
    records = release_files(catalogue, project, version)
    changed = catalogue.set_yanked([r.filename for r in records], reason)
    pages.rebuild(changed)
    catalogue.save()
    return records


def remove_files(
    storage: Storage, catalogue: Catalogue, pages: PageSet, filenames: list[str]
) -> list[str]:
    """Delete files and their sidecars, then re-render what changed.

    Returns the files that were already gone (someone removed them first).
    """
    gone = []
    for filename in filenames:
        if not storage.delete(filename):
            gone.append(filename)
        storage.delete_state(metadata_state_name(filename))
    pages.provenance.remove(filenames)
    pages.rebuild(catalogue.remove(filenames))
    catalogue.save()
    return gone


def remove_release(storage: Storage, project: str, version: str) -> list[FileRecord]:
    """Delete every file of a release from the directory."""
    catalogue, pages = open_index(storage)
    records = release_files(catalogue, project, version)
    remove_files(storage, catalogue, pages, [r.filename for r in records])
    return records


def set_project_status(storage: Storage, project: str, status: ProjectStatus) -> set[str]:
    """Set a project's PEP 792 status (active clears it); re-render its pages."""
    name = normalize(project)
    catalogue, pages = open_index(storage)
    if name not in catalogue.projects:
        raise IndexServerError(
            f"project {name!r} is not on this index",
            hint="check the name; a status is set on a project that has files",
        )
    catalogue.set_status(name, status)
    pages.rebuild({name})
    return {name}
