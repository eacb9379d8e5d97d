"""`bundle import`: verify, work out what would change, then apply it (or only print it).

Two ways in: `--packages-dir` writes into a packages directory directly (a stopped server, or
a running one that picks the change up), keeping each file's upstream upload time as its mtime
(the index's upload time) and applying yanks and tombstones; `--index` uploads over the legacy
API, where the server stamps its own upload time and yanks need an admin on the index host.
Importing the same bundle twice changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from releasekit.bundle.lock import FILES_DIR, parse_lock
from releasekit.bundle.manifest import Manifest
from releasekit.bundle.remote import RemoteIndex
from releasekit.bundle.upstream import parse_time
from releasekit.bundle.verify import verify_bundle
from releasekit.errors import BundleError
from releasekit.server.catalogue import YANKED_NAME, Catalogue
from releasekit.server.localstore import LocalStorage
from releasekit.server.pages import PageSet
from releasekit.server.records import filename_project, hash_stored
from releasekit.server.storage import Storage

LOCKS_STATE = "bundles"


@dataclass(frozen=True)
class ImportPlan:
    """What an import does: files to add, files already there, yanks to apply, locks served."""

    bundle_id: str
    add: tuple[str, ...]
    present: tuple[str, ...]
    yank: tuple[tuple[str, str], ...]
    locks: tuple[str, ...]


def served_requirements(directory: Path, lock: str) -> str:
    """The requirements.txt form of a bundle lock (pins + hashes) that the index serves."""
    parsed = parse_lock((directory / lock).read_text(encoding="utf-8"), str(directory / lock))
    platforms = " ".join(f"--platform {p}" for p in parsed.target.platforms()[:4])
    lines = [
        f"# {parsed.target}: releasekit bundle lock; install with -i <this index>/simple/",
        f"# from another machine: pip install --only-binary :all: {platforms} ... "
        f"--python-version {parsed.target.python} --target DIR -r <this file>",
    ]
    lines += [f"{e.name}=={e.version} --hash=sha256:{e.sha256}" for e in parsed.entries]
    return "\n".join(lines) + "\n"


def _plan(manifest: Manifest, existing: dict[str, str], yanked: dict[str, str]) -> ImportPlan:
    """Compare the bundle with what the index holds ({filename: sha256}, {filename: reason})."""
    missing = [n for n, s in manifest.inherited if existing.get(n) != s]
    if manifest.parent and missing:
        raise BundleError(
            f"bundle {manifest.bundle_id} is a delta on bundle {manifest.parent}, which was not "
            f"imported here: {FILES_DIR}/{missing[0]} ({len(missing)} file(s)) is not on the index",
            hint=f"import bundle {manifest.parent} first, then this one",
        )
    add, present = [], []
    for name, record in sorted(manifest.files.items()):
        if name not in existing:
            add.append(name)
        elif existing[name] == record.sha256:
            present.append(name)
        else:
            raise BundleError(
                f"{FILES_DIR}/{name}: the index already has a different file with this name",
                hint="nothing was imported; remove the index's copy if the bundle's is right",
            )
    wanted = {n: r.yanked for n, r in manifest.files.items() if r.yanked is not None}
    wanted |= {n: reason for n, reason in manifest.tombstones if n in existing or n in wanted}
    yank = tuple(sorted((n, r) for n, r in wanted.items() if yanked.get(n) != r))
    return ImportPlan(manifest.bundle_id, tuple(add), tuple(present), yank, manifest.locks)


def _yanked(storage: Storage) -> dict[str, str]:
    """The directory's yank state ({filename: reason}), read without indexing anything."""
    try:
        data = json.loads(storage.read_state(YANKED_NAME) or b"{}")
    except ValueError:
        raise BundleError(
            f"the yank state {YANKED_NAME} of the packages {storage.describe()} is damaged",
            hint="fix it by hand, or run `releasekit server reindex` first",
        ) from None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def import_to_directory(
    bundle: Path,
    packages: Path,
    *,
    key: Path | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ImportPlan:
    """Verify `bundle` and import it into the packages directory `packages`."""
    return import_to_storage(
        bundle, LocalStorage(packages), key=key, dry_run=dry_run, progress=progress
    )


def import_to_storage(
    bundle: Path,
    storage: Storage,
    *,
    key: Path | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ImportPlan:
    """Verify `bundle` and import it into the index's storage, through the storage seam."""
    if not storage.exists():
        raise BundleError(
            f"packages {storage.describe()} does not exist",
            hint="pass the directory `releasekit server run` serves",
        )
    manifest = verify_bundle(bundle, key).manifest
    catalogue = Catalogue(storage)
    catalogue.load(index=False)  # reading only: indexing would write sidecars
    existing = {n: r.sha256 for n, r in catalogue.files.items()}
    for name in {*manifest.files, *dict(manifest.inherited)} - set(existing):
        if storage.stat(name) is not None:  # on disk, not indexed yet: hash it ourselves
            existing[name] = hash_stored(storage, name)[0]
    plan = _plan(manifest, existing, _yanked(storage))
    if dry_run:
        return plan
    storage.prepare()
    for name in plan.add:
        record = manifest.files[name]
        uploaded = parse_time(record.upload_time)
        # The index reports a file's mtime as its upload time: keep upstream's.
        mtime_ns = None if uploaded is None else _nanoseconds(uploaded)
        with storage.new_upload() as upload, (bundle / FILES_DIR / name).open("rb") as source:
            while chunk := source.read(1024 * 1024):
                upload.write(chunk)
            if upload.create(name, mtime_ns=mtime_ns) is None:
                raise BundleError(
                    f"{FILES_DIR}/{name} was stored by someone else during the import",
                    hint="run the import again: files already there are checked, not copied",
                )
        if progress is not None:
            progress(name)
    if plan.add or plan.yank:  # an import with nothing to do writes nothing
        changed = catalogue.load()
        for name, reason in plan.yank:
            changed |= catalogue.set_yanked([name], reason)
        PageSet(catalogue, storage).rebuild(changed)
        catalogue.save()
    for lock in plan.locks:
        text = served_requirements(bundle, lock).encode()
        slug = lock.removeprefix("pylock.").removesuffix(".toml")
        for folder in (plan.bundle_id, "latest"):
            name = f"{LOCKS_STATE}/{folder}/{slug}.txt"
            if storage.read_state(name) != text:
                storage.write_state(name, text)
    return plan


def _nanoseconds(moment: datetime) -> int:
    """A timestamp in whole nanoseconds, exactly (no float rounding); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def import_over_api(
    bundle: Path,
    index_url: str,
    *,
    auth: tuple[str, str] | None,
    key: Path | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ImportPlan:
    """Verify `bundle` and upload its files to a running index (legacy upload API)."""
    manifest = verify_bundle(bundle, key).manifest
    remote = RemoteIndex(index_url, auth)
    projects = {r.project for r in manifest.files.values()}
    projects |= {filename_project(n) for n, _ in manifest.inherited}
    existing, yanked = remote.state(sorted(projects))
    plan = _plan(manifest, existing, yanked)
    if dry_run:
        return plan
    for name in plan.add:
        record = manifest.files[name]
        remote.upload(bundle / FILES_DIR / name, record.project, record.version, record.sha256)
        if progress is not None:
            progress(name)
    return plan
