"""`bundle plan`: resolve every target, choose files, and write the plan (locks + plan.json).

A delta plan (`since` a previous bundle) resolves the full closure again but carries only the
files the previous bundle chain does not have, plus tombstones for files yanked upstream since.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from releasekit.atomic import SERVED, write_atomic
from releasekit.bundle.lock import lock_name, render_lock
from releasekit.bundle.manifest import read_manifest
from releasekit.bundle.resolve import LockedPackage, find_uv, lock_target
from releasekit.bundle.targets import Target, parse_target
from releasekit.bundle.upstream import Upstream, UpstreamFile, public_url
from releasekit.errors import BundleError
from releasekit.server.records import filename_project

PLAN_NAME = "plan.json"


@dataclass(frozen=True)
class BundlePlan:
    """Everything `fetch` needs: the locks per target and which files to carry."""

    index_url: str
    requirements: tuple[str, ...]
    locks: tuple[tuple[Target, tuple[LockedPackage, ...]], ...]
    parent: str | None = None
    inherited: tuple[tuple[str, str], ...] = ()  # (filename, sha256) the parent chain carries
    tombstones: tuple[tuple[str, str], ...] = ()  # (filename, yank reason)

    def files(self) -> dict[str, UpstreamFile]:
        """Every file some target installs, once (targets share files)."""
        return {p.file.filename: p.file for _, packages in self.locks for p in packages}

    def carried(self) -> dict[str, UpstreamFile]:
        """The files this bundle carries: all of them, minus what the parent chain has."""
        inherited = dict(self.inherited)
        return {n: f for n, f in self.files().items() if inherited.get(n) != f.sha256}

    def sdists(self) -> list[tuple[Target, LockedPackage]]:
        """Packages a target gets as an sdist (no wheel fits it): it builds them on install."""
        return [(t, p) for t, packages in self.locks for p in packages if p.is_sdist]


def plan_bundle(
    requirements: Sequence[str],
    targets: Sequence[Target],
    index_url: str,
    *,
    since: Path | None = None,
    progress: Callable[[Target], None] | None = None,
    upstream: Upstream | None = None,
) -> BundlePlan:
    """Resolve `requirements` for each target against `index_url` (uv as a subprocess)."""
    if not requirements:
        raise BundleError("no requirements given", hint="pass requirements or -r requirements.txt")
    if not targets:
        raise BundleError("no --target given", hint="e.g. --target manylinux_2_28_x86_64/3.11")
    if len(set(targets)) != len(targets):
        raise BundleError("a --target is given twice", hint="pass each target once")
    uv = find_uv()
    upstream = upstream or Upstream(index_url)
    locks = []
    with tempfile.TemporaryDirectory(prefix="releasekit-uv-cache-") as cache:
        for target in targets:
            if progress is not None:
                progress(target)
            packages = lock_target(requirements, target, upstream, uv, Path(cache))
            locks.append((target, tuple(packages)))
    plan = BundlePlan(public_url(upstream.index_url), tuple(requirements), tuple(locks))
    if since is None:
        return plan
    previous = read_manifest(since)
    known = dict(previous.inherited) | {n: f.sha256 for n, f in previous.files.items()}
    # Files the offline index already has (this chain) and does not know as yanked.
    settled = {n for n, r in previous.files.items() if r.yanked is not None}
    settled |= dict(previous.tombstones).keys()
    tombstones = []
    for filename in sorted(set(known) - settled):
        for entry in upstream.files(filename_project(filename)):
            if entry.filename == filename and entry.yanked is not None:
                tombstones.append((filename, entry.yanked))
    return dataclasses.replace(
        plan,
        parent=previous.bundle_id,
        inherited=tuple(sorted(known.items())),
        tombstones=tuple(sorted(tombstones)),
    )


def write_plan(plan: BundlePlan, directory: Path) -> list[Path]:
    """Write one url-based pylock.toml per target and plan.json; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for target, packages in plan.locks:
        path = directory / lock_name(target)
        text = render_lock(target, packages, local=False, index_url=plan.index_url)
        write_atomic(path, text.encode(), mode=SERVED)
        written.append(path)
    data = {
        "format": 1,
        "index": plan.index_url,
        "requirements": list(plan.requirements),
        "parent": plan.parent,
        "inherited": dict(plan.inherited),
        "tombstones": dict(plan.tombstones),
        "files": {n: dataclasses.asdict(f) for n, f in sorted(plan.files().items())},
        "locks": {
            str(t): [[p.name, p.version, p.file.filename] for p in packages]
            for t, packages in plan.locks
        },
    }
    write_atomic(directory / PLAN_NAME, (json.dumps(data, indent=1) + "\n").encode(), mode=SERVED)
    written.append(directory / PLAN_NAME)
    return written


def read_plan(directory: Path) -> BundlePlan:
    """Read a plan directory written by `write_plan`."""
    path = directory / PLAN_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = {n: UpstreamFile(**f) for n, f in data["files"].items()}
        locks = tuple(
            (
                parse_target(target),
                tuple(LockedPackage(name, version, files[fn]) for name, version, fn in rows),
            )
            for target, rows in data["locks"].items()
        )
        return BundlePlan(
            index_url=data["index"],
            requirements=tuple(data["requirements"]),
            locks=locks,
            parent=data["parent"],
            inherited=tuple(sorted(data["inherited"].items())),
            tombstones=tuple(sorted(data["tombstones"].items())),
        )
    except FileNotFoundError:
        raise BundleError(
            f"{path} does not exist", hint="run `releasekit bundle plan ... -o DIR` first"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(
            f"{path} is not a bundle plan ({exc})", hint="plan again with `releasekit bundle plan`"
        ) from None
