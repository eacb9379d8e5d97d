"""Resolve the closure of a requirement set for one target, then pick that target's files.

Resolution runs `uv pip compile --python-platform --python-version` as a subprocess: uv
evaluates markers and wheel tags for the target, not for this machine, and still resolves
projects that only ship an sdist (pip's resolver needs `--only-binary :all:` as soon as a
`--platform` is given). File choice is ours: the best wheel by the target's tag order, the
sdist only when no wheel fits.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from releasekit.bundle.targets import Target
from releasekit.bundle.upstream import UnknownProject, Upstream, UpstreamFile
from releasekit.errors import BundleError

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
# Names uv gives when it explains a failure ("x was not found", "x==1 has no wheels", ...).
_CULPRIT = re.compile(
    r"(?:\b([A-Za-z0-9][A-Za-z0-9._-]*)(?:[=<>!~]=?[^\s,]+)? (?:was not found|has no|have no|was yanked))"
    r"|(?:\bno versions? of ([A-Za-z0-9][A-Za-z0-9._-]*))"
)


@dataclass(frozen=True)
class LockedPackage:
    """One package of a target's closure and the single file the target installs."""

    name: str
    version: str
    file: UpstreamFile

    @property
    def is_sdist(self) -> bool:
        return not self.file.filename.endswith(".whl")


def find_uv() -> str:
    """The uv binary (a dependency of releasekit); one clear error when it is missing."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    raise BundleError(
        "bundle plan needs uv to resolve for other platforms, and it is not installed",
        hint="pip install 'uv>=0.8' into the environment that runs releasekit",
    )


def resolve_pins(
    requirements: Sequence[str], target: Target, upstream: Upstream, uv: str, cache: Path
) -> list[tuple[str, str]]:
    """(name, version) of the full closure for `target`, as uv resolves it.

    `cache` is a uv cache private to one plan: targets share index pages, and nothing from an
    earlier plan (or the user's own cache) can leak into this one.
    """
    with tempfile.TemporaryDirectory(prefix="releasekit-plan-") as work:
        infile = Path(work) / "requirements.in"
        infile.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        command = [
            uv, "pip", "compile", str(infile), "--no-config", "--no-header", "--no-annotate",
            "--quiet", "--color", "never", "--python-platform", target.uv_platform(),
            "--python-version", target.python, "--default-index", upstream.index_url,
            "--cache-dir", str(cache),
            # uv would otherwise download a CPython of the target's version from the internet
            # to build sdists with; ours builds them (only metadata-less sdists need it).
            "--no-python-downloads", "--python", sys.executable,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise unsatisfiable(requirements, target, upstream, result.stderr)
    pins: list[tuple[str, str]] = []
    for line in result.stdout.splitlines():
        if match := _PIN.match(line.strip()):
            pins.append((canonicalize_name(match.group(1)), match.group(2)))
    return pins


def choose_file(files: Sequence[UpstreamFile], version: str, target: Target) -> UpstreamFile | None:
    """The best file of `version` for `target`: best-ranked wheel, else the sdist."""
    ranks = {tag: rank for rank, tag in enumerate(target.tags())}
    python = Version(f"{target.python}.0")
    best: tuple[int, UpstreamFile] | None = None
    sdist = None
    wanted = Version(version)
    for entry in files:
        if entry.requires_python and not _allows(entry.requires_python, python):
            continue
        if entry.filename.endswith(".whl"):
            try:
                _, file_version, _, file_tags = parse_wheel_filename(entry.filename)
            except InvalidWheelFilename:
                continue
            rank = min((ranks[t] for t in file_tags if t in ranks), default=None)
            if file_version == wanted and rank is not None and (best is None or rank < best[0]):
                best = (rank, entry)
        else:
            try:
                _, file_version = parse_sdist_filename(entry.filename)
            except InvalidSdistFilename:
                continue
            if file_version == wanted:
                sdist = entry
    return best[1] if best else sdist


def _allows(requires_python: str, python: Version) -> bool:
    try:
        return python in SpecifierSet(requires_python)
    except ValueError:
        return True  # an unreadable requires-python is the installer's problem, as in pip


def available_versions(files: Sequence[UpstreamFile], target: Target) -> list[str]:
    """Versions that have a non-yanked file the target can install, lowest first."""
    versions = set()
    for entry in files:
        try:
            if entry.filename.endswith(".whl"):
                version = parse_wheel_filename(entry.filename)[1]
            else:
                version = parse_sdist_filename(entry.filename)[1]
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
        if entry.yanked is None and choose_file([entry], str(version), target) is not None:
            versions.add(version)
    return [str(v) for v in sorted(versions)]


def unsatisfiable(
    requirements: Sequence[str], target: Target, upstream: Upstream, stderr: str
) -> BundleError:
    """Name the package, the target and the nearest version the target could have."""
    wanted = {}
    for text in requirements:
        try:
            wanted[canonicalize_name(Requirement(text).name)] = text
        except InvalidRequirement:
            return BundleError(f"invalid requirement {text!r}", hint="use PEP 508: name==1.2.3")
    named = [canonicalize_name(a or b) for a, b in _CULPRIT.findall(stderr)]
    culprits = list(dict.fromkeys(named))
    cause = " ".join(line.strip() for line in stderr.splitlines() if line.strip())
    detail = cause.removeprefix("error: No solution found when resolving dependencies ")
    for name in sorted(culprits, key=lambda n: (n not in wanted, culprits.index(n))):
        try:
            versions = available_versions(upstream.files(name), target)
        except UnknownProject:
            return BundleError(
                f"{wanted.get(name, name)} cannot be satisfied for target {target}: "
                f"{name} is not on the upstream index",
                hint="check the name or the --index URL",
            )
        requirement = wanted.get(name, name)
        if versions:
            nearest = _nearest(requirement, versions)
            return BundleError(
                f"{requirement} cannot be satisfied for target {target}: nearest available "
                f"version is {name} {nearest} (available for this target: {', '.join(versions)})",
                hint=f"pin {name}=={nearest}, or drop target {target}",
            )
        return BundleError(
            f"{requirement} cannot be satisfied for target {target}: no version of {name} that "
            "is not yanked has a file for this platform and Python",
            hint=f"drop target {target}, or ask the maintainers of {name} for a wheel or sdist",
        )
    return BundleError(
        f"cannot resolve the requirements for target {target}: {detail or 'uv failed'}",
        hint="change the requirements uv names above, or drop the target",
    )


def _nearest(requirement: str, versions: list[str]) -> str:
    """The available version closest to what was asked (highest below an exact pin, else top)."""
    try:
        specifier = Requirement(requirement).specifier
    except InvalidRequirement:
        return versions[-1]
    pinned = [Version(s.version) for s in specifier if s.operator == "==" and "*" not in s.version]
    if pinned:
        below = [v for v in versions if Version(v) <= pinned[0]]
        return below[-1] if below else versions[0]
    return versions[-1]


def lock_target(
    requirements: Sequence[str], target: Target, upstream: Upstream, uv: str, cache: Path
) -> list[LockedPackage]:
    """The target's closure with one chosen file per package."""
    locked = []
    for name, version in resolve_pins(requirements, target, upstream, uv, cache):
        chosen = choose_file(upstream.files(name), version, target)
        if chosen is None:
            versions = available_versions(upstream.files(name), target)
            nearest = versions[-1] if versions else "none"
            raise BundleError(
                f"{name}=={version} (resolved for target {target}) has no file this target can "
                f"install; nearest available version is {nearest}",
                hint=f"pin {name} to an available version, or drop target {target}",
            )
        locked.append(LockedPackage(name, version, chosen))
    return locked
