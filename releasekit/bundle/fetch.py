"""`bundle fetch`: download a plan's files once each, in parallel, resumably, hash-checked.

A file is downloaded to `files/<name>.part` and renamed only after its sha256 matches the
index's; an interrupted run leaves `.part` files that the next run continues with a Range
request. bundle.json and SHA256SUMS are written last, so a bundle without SHA256SUMS is
visibly unfinished.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from releasekit.atomic import SERVED, write_atomic
from releasekit.bundle.lock import FILES_DIR, lock_name, render_lock
from releasekit.bundle.manifest import (
    MANIFEST,
    SIGNATURE,
    SUMS,
    BundledFile,
    Manifest,
    bundle_id,
    render_sums,
    sha256_file,
)
from releasekit.bundle.plan import BundlePlan
from releasekit.bundle.upstream import UpstreamFile
from releasekit.errors import BundleError, IndexServerError
from releasekit.server.metadata import parse_filename, read_metadata

CHUNK = 256 * 1024
TIMEOUT = 60


@dataclass(frozen=True)
class FetchProgress:
    """One file finished: `done` of `total`, and whether it was already there (resume)."""

    done: int
    total: int
    filename: str
    reused: bool


class _Fetcher:
    def __init__(self, directory: Path, auth: tuple[str, str] | None) -> None:
        self.directory = directory
        self.auth = auth
        self.local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.auth = self.auth
        session: requests.Session = self.local.session
        return session

    def get(self, entry: UpstreamFile) -> bool:
        """Make files/<name> hold the verified file; True when it was already complete."""
        target = self.directory / entry.filename
        if target.exists() and sha256_file(target) == entry.sha256:
            return True
        part = target.with_name(target.name + ".part")
        self._download(entry.url, part, entry.filename)
        actual = sha256_file(part)
        if actual != entry.sha256:
            part.unlink()
            raise BundleError(
                f"{entry.filename}: sha256 {actual} does not match the index's {entry.sha256}",
                hint=f"the upstream served different bytes from {entry.url}; fetch again, "
                "and if it repeats, report it to the index's operators",
            )
        part.replace(target)
        self._metadata(entry, target)
        return False

    def _download(self, url: str, part: Path, filename: str) -> None:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with self.session().get(url, headers=headers, stream=True, timeout=TIMEOUT) as answer:
                if answer.status_code == 416:  # the part is already whole
                    return
                if answer.status_code not in (200, 206):
                    raise BundleError(
                        f"{filename}: the upstream answered {answer.status_code} for {url}",
                        hint="check the plan's index and credentials (--index with user:token@)",
                    )
                mode = "ab" if answer.status_code == 206 else "wb"
                with part.open(mode) as sink:
                    for chunk in answer.iter_content(CHUNK):
                        sink.write(chunk)
        except requests.RequestException as exc:
            raise BundleError(
                f"{filename}: download interrupted ({exc})",
                hint="run the same `bundle fetch` again: it resumes where it stopped",
            ) from None

    def _metadata(self, entry: UpstreamFile, target: Path) -> None:
        """files/<name>.metadata: the index's PEP 658 file (hash-checked) or the archive's own."""
        sidecar = target.with_name(target.name + ".metadata")
        if entry.metadata_sha256 is not None:
            answer = self.session().get(entry.url + ".metadata", timeout=TIMEOUT)
            if answer.status_code == 200:
                if hashlib.sha256(answer.content).hexdigest() != entry.metadata_sha256:
                    raise BundleError(
                        f"{entry.filename}.metadata does not match the index's hash",
                        hint="fetch again; if it repeats the upstream serves bad metadata",
                    )
                write_atomic(sidecar, answer.content, mode=SERVED, durable=False)
                return
        try:
            raw = read_metadata(target, parse_filename(entry.filename)).raw
        except IndexServerError:
            return  # an sdist without PKG-INFO: verify reports its closure as unchecked
        write_atomic(sidecar, raw, mode=SERVED, durable=False)


def fetch_bundle(
    plan: BundlePlan,
    directory: Path,
    *,
    jobs: int = 4,
    auth: tuple[str, str] | None = None,
    progress: Callable[[FetchProgress], None] | None = None,
) -> Manifest:
    """Download the plan's carried files into `directory` and write the bundle around them."""
    if jobs < 1:
        raise BundleError("--jobs must be at least 1", hint="e.g. --jobs 4")
    carried = plan.carried()
    _claim(directory, plan, carried)
    files_dir = directory / FILES_DIR
    files_dir.mkdir(parents=True, exist_ok=True)
    fetcher = _Fetcher(files_dir, auth)
    done = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(fetcher.get, f): name for name, f in sorted(carried.items())}
        for future, name in futures.items():
            reused = future.result()
            done += 1
            if progress is not None:
                progress(FetchProgress(done, len(carried), name, reused))
    locks = []
    for target, packages in plan.locks:
        text = render_lock(target, packages, local=True, index_url=plan.index_url)
        write_atomic(directory / lock_name(target), text.encode(), mode=SERVED)
        locks.append(lock_name(target))
    names = [f"{FILES_DIR}/{n}" for n in carried]
    names += [
        f"{FILES_DIR}/{n}.metadata" for n in carried if (files_dir / f"{n}.metadata").exists()
    ]
    body = render_sums(directory, names + locks)
    records = {n: _record(files_dir, n, f, plan) for n, f in carried.items()}
    manifest = Manifest(
        bundle_id=bundle_id(body, plan.parent),
        parent=plan.parent,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        index=plan.index_url,
        targets=tuple(str(t) for t, _ in plan.locks),
        locks=tuple(locks),
        files=records,
        inherited=tuple(
            (n, s) for n, s in plan.inherited if n in plan.files() and n not in carried
        ),
        tombstones=plan.tombstones,
    )
    write_atomic(directory / MANIFEST, manifest.to_json().encode(), mode=SERVED)
    write_atomic(
        directory / SUMS, render_sums(directory, [*names, *locks, MANIFEST]).encode(), mode=SERVED
    )
    return manifest


def _claim(directory: Path, plan: BundlePlan, carried: dict[str, UpstreamFile]) -> None:
    """Make `directory` this plan's bundle: refuse a foreign directory, drop stale bundle files.

    Only names a bundle writes are ever removed, so `-o` pointing at the wrong directory is a
    refusal, never a deletion.
    """
    if not directory.exists():
        return
    ours = {MANIFEST, SUMS, SIGNATURE, FILES_DIR}
    foreign = [
        p.name
        for p in directory.iterdir()
        if p.name not in ours and not (p.name.startswith("pylock.") and p.name.endswith(".toml"))
    ]
    if foreign:
        raise BundleError(
            f"{directory} is not a bundle directory (it holds {foreign[0]!r})",
            hint="pass a new or empty directory to -o, or the bundle being resumed",
        )
    for name in (SUMS, SIGNATURE):  # the bundle is changing: unfinished until rewritten
        (directory / name).unlink(missing_ok=True)
    locks = {lock_name(t) for t, _ in plan.locks}
    for path in directory.glob("pylock.*.toml"):
        if path.name not in locks:
            path.unlink()
    keep = set(carried) | {f"{n}.metadata" for n in carried} | {f"{n}.part" for n in carried}
    if (directory / FILES_DIR).is_dir():
        for path in (directory / FILES_DIR).iterdir():
            if path.name not in keep and path.is_file():
                path.unlink()


def _record(files_dir: Path, name: str, entry: UpstreamFile, plan: BundlePlan) -> BundledFile:
    dist = parse_filename(name)
    return BundledFile(
        project=dist.project,
        version=dist.version,
        sha256=entry.sha256,
        size=(files_dir / name).stat().st_size,
        upload_time=entry.upload_time,
        yanked=entry.yanked,
        has_metadata=(files_dir / f"{name}.metadata").exists(),
    )
