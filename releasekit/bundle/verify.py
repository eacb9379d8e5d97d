"""`bundle verify`: signature, manifest, every hash, and each lock's dependency closure.

Every failure is a BundleError that names the file at fault, so an operator on the offline
side knows what to ask the connected side for.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

from releasekit.bundle.lock import FILES_DIR, ParsedLock, parse_lock
from releasekit.bundle.manifest import (
    MANIFEST,
    SIGNATURE,
    SUMS,
    Manifest,
    parse_sums,
    read_manifest,
    sha256_file,
)
from releasekit.bundle.sign import check_signature, load_public
from releasekit.errors import BundleError
from releasekit.server.metadata import ArchiveError, parse_filename


@dataclass(frozen=True)
class VerifyReport:
    """What a successful verify checked."""

    manifest: Manifest
    hashed: int
    signed_by: Path | None
    packages_checked: int
    unchecked: tuple[str, ...]  # lock entries whose metadata the bundle does not carry


def verify_bundle(
    directory: Path,
    key: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Check `directory` completely; raise BundleError naming the first bad file."""
    sums_path = directory / SUMS
    if not sums_path.is_file():
        raise BundleError(
            f"{sums_path} is missing: not a finished bundle",
            hint="run `releasekit bundle fetch` again until it completes",
        )
    if key is not None:
        check_signature(directory, load_public(key))
    sums = parse_sums(sums_path.read_text(encoding="utf-8"), str(sums_path))
    _check_listing(directory, sums)
    for done, (name, digest) in enumerate(sorted(sums.items()), 1):
        path = directory / name
        if not path.is_file():
            raise BundleError(
                f"{path} is listed in {SUMS} but missing from the bundle",
                hint="copy the bundle again from the connected side (the file was lost)",
            )
        if sha256_file(path) != digest:
            raise BundleError(
                f"{path}: sha256 does not match {SUMS} (the file is damaged or was altered)",
                hint="copy the bundle again; do not import a damaged bundle",
            )
        if progress is not None:
            progress(done, len(sums))
    if MANIFEST not in sums:
        raise BundleError(f"{sums_path} does not cover {MANIFEST}", hint="fetch the bundle again")
    manifest = read_manifest(directory)
    for filename in [*manifest.files, *dict(manifest.inherited), *dict(manifest.tombstones)]:
        try:
            parse_filename(filename)  # a plain wheel or sdist name: it becomes a path on import
        except ArchiveError as exc:
            raise BundleError(
                f"{directory / MANIFEST} names {filename!r}, which is not a distribution file "
                f"name ({exc.message})",
                hint="do not import this bundle; fetch it again from the connected side",
            ) from None
    for filename, record in manifest.files.items():
        if sums.get(f"{FILES_DIR}/{filename}") != record.sha256:
            raise BundleError(
                f"{directory / FILES_DIR / filename}: {MANIFEST} and {SUMS} disagree about it",
                hint="the bundle is inconsistent: fetch it again",
            )
    checked, unchecked = 0, []
    for lock in manifest.locks:
        if lock not in sums:
            raise BundleError(f"{directory / lock} is not covered by {SUMS}", hint="fetch again")
        parsed = parse_lock((directory / lock).read_text(encoding="utf-8"), str(directory / lock))
        _check_entries(directory, lock, parsed, manifest)
        count, missing_meta = _check_closure(directory, lock, parsed)
        checked += count
        unchecked += missing_meta
    return VerifyReport(manifest, len(sums), key, checked, tuple(unchecked))


def _check_listing(directory: Path, sums: dict[str, str]) -> None:
    """Every file of the bundle must be listed: an unlisted file was added after fetch."""
    for path in sorted(directory.rglob("*")):
        name = path.relative_to(directory).as_posix()
        if path.is_symlink():
            raise BundleError(
                f"{path} is a symbolic link: a bundle holds only regular files",
                hint="copy the bundle with `tar` or `cp -r` from the original, not with links",
            )
        if path.is_file() and name not in sums and name not in (SUMS, SIGNATURE):
            raise BundleError(
                f"{path} is not listed in {SUMS}",
                hint="something was added to the bundle after it was made: remove it or "
                "fetch the bundle again",
            )


def _check_entries(directory: Path, lock: str, parsed: ParsedLock, manifest: Manifest) -> None:
    inherited = dict(manifest.inherited)
    for entry in parsed.entries:
        record = manifest.files.get(entry.filename)
        if record is not None and record.sha256 == entry.sha256:
            continue
        if inherited.get(entry.filename) == entry.sha256:
            continue
        raise BundleError(
            f"{directory / lock}: {FILES_DIR}/{entry.filename} is neither in the bundle nor in "
            "its parent bundle",
            hint="plan and fetch the bundle again on the connected side",
        )


def _check_closure(directory: Path, lock: str, parsed: ParsedLock) -> tuple[int, list[str]]:
    """Each locked package's Requires-Dist (for the lock's target) must be in the lock."""
    environment = {**parsed.target.environment(), "extra": ""}
    versions = {e.name: e.version for e in parsed.entries}
    checked, unchecked = 0, []
    for entry in parsed.entries:
        meta_path = directory / FILES_DIR / f"{entry.filename}.metadata"
        if not meta_path.is_file():
            unchecked.append(f"{lock}: {entry.filename}")
            continue
        message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            meta_path.read_bytes()
        )
        for text in message.get_all("Requires-Dist") or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue  # installers skip it too; not ours to judge
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            name = requirement.name.lower().replace("_", "-").replace(".", "-")
            have = versions.get(name)
            if have is None:
                raise BundleError(
                    f"{directory / lock}: {entry.name} {entry.version} requires {text!r} "
                    f"({meta_path.name}) and the lock has no {name}",
                    hint="the lock's closure is incomplete: plan the bundle again",
                )
            if not requirement.specifier.contains(Version(have), prereleases=True):
                raise BundleError(
                    f"{directory / lock}: {entry.name} {entry.version} requires {text!r} "
                    f"({meta_path.name}) and the lock has {name} {have}",
                    hint="the lock's closure is inconsistent: plan the bundle again",
                )
        checked += 1
    return checked, unchecked
