"""`plan_retention(files, rules, now)`: which releases an index's rules delete, and why (pure).

Records in, a plan out: no storage, no clock. The rules and their semantics are in retention.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from packaging.version import InvalidVersion, Version

from releasekit.server.retention import Kind, RetentionRules, excluded, kind_of


@dataclass(frozen=True)
class RetentionFile:
    """One stored file as retention sees it; `problem`: why the index could not read it."""

    filename: str
    project: str
    version: str
    size: int
    uploaded_ns: int
    problem: str | None = None


@dataclass(frozen=True)
class Deletion:
    """One release the rules delete: all of its files, and the rule that selects it."""

    project: str
    version: str
    kind: Kind
    rank: int  # 1 = the newest release of its kind in the project
    count: int  # releases of that kind in the project
    rule: str  # `keep-dev 5` or `keep-dev 5, older-than 30d`
    files: tuple[RetentionFile, ...]

    @property
    def why(self) -> str:
        kinds = "dev releases" if self.kind == "dev" else "pre-releases"
        return f"#{self.rank} of {self.count} {kinds}, newest first [{self.rule}]"


@dataclass(frozen=True)
class RetentionPlan:
    """What a run deletes; `skipped` files (and why) are never touched."""

    deletions: tuple[Deletion, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    excluded: tuple[str, ...] = ()  # projects left alone by an exclude glob

    @property
    def files(self) -> tuple[RetentionFile, ...]:
        return tuple(f for d in self.deletions for f in d.files)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def projects(self) -> int:
        return len({d.project for d in self.deletions})


@dataclass(frozen=True)
class _Release:
    version: Version
    files: tuple[RetentionFile, ...]


def plan_retention(
    files: Iterable[RetentionFile], rules: RetentionRules, now: float
) -> RetentionPlan:
    """The releases `rules` delete from `files` at time `now` (seconds since the epoch)."""
    grouped: dict[str, dict[Version, list[RetentionFile]]] = {}
    skipped: list[tuple[str, str]] = []
    for file in files:
        try:
            version = Version(file.version)
        except InvalidVersion:
            skipped.append((file.filename, f"{file.version!r} is not a PEP 440 version"))
            continue
        grouped.setdefault(file.project, {}).setdefault(version, []).append(file)
    deletions: list[Deletion] = []
    left_alone: list[str] = []
    for project in sorted(grouped):
        if excluded(project, rules.exclude):
            left_alone.append(project)
            continue
        releases = [
            _Release(v, tuple(sorted(fs, key=lambda f: f.filename)))
            for v, fs in sorted(grouped[project].items())
        ]
        chosen, kept_whole = _plan_project(project, releases, rules, now)
        deletions += chosen
        skipped += kept_whole
    deletions.sort(key=lambda d: (d.project, Version(d.version)))
    return RetentionPlan(tuple(deletions), tuple(sorted(skipped)), tuple(left_alone))


def _plan_project(
    project: str, releases: list[_Release], rules: RetentionRules, now: float
) -> tuple[list[Deletion], list[tuple[str, str]]]:
    newest = releases[-1]  # sorted ascending by PEP 440: the newest version always stays
    age = rules.older_than_seconds
    cutoff_ns = None if age is None else int((now - age) * 1e9)
    deletions: list[Deletion] = []
    skipped: list[tuple[str, str]] = []
    for kind, keep in rules.keeps():
        if keep is None:
            continue
        of_kind = [r for r in reversed(releases) if kind_of(r.version) == kind]
        rule = f"keep-{kind} {keep}" + (f", older-than {rules.older_than}" if age else "")
        for rank, release in enumerate(of_kind, 1):
            if rank <= keep or release is newest:
                continue
            if cutoff_ns is not None and max(f.uploaded_ns for f in release.files) > cutoff_ns:
                continue  # some file of it is recent: the release is not old enough yet
            unreadable = [f for f in release.files if f.problem is not None]
            if unreadable:
                # Its files go together: deleting the readable ones would leave a stray file.
                skipped += [
                    (f.filename, f"kept with its release {release.version}: {f.problem}")
                    for f in unreadable
                ]
                continue
            deletions.append(
                Deletion(
                    project, str(release.version), kind, rank, len(of_kind), rule, release.files
                )
            )
    return deletions, skipped


def render_plan(index: str, rules: RetentionRules, plan: RetentionPlan) -> list[str]:
    """The dry-run listing: every file with the rule that selects it, then a summary."""
    lines = [f"index {index}: {rules.describe()}"]
    for deletion in plan.deletions:
        for file in deletion.files:
            lines.append(
                f"would delete {file.filename} ({file.size} bytes): {deletion.project} "
                f"{deletion.version} is {deletion.why}"
            )
    lines += [f"skipped {filename}: {why}" for filename, why in plan.skipped]
    lines += [f"excluded {project}" for project in plan.excluded]
    lines.append(f"index {index}: would delete {summary(plan)}")
    return lines


def summary(plan: RetentionPlan) -> str:
    """`4 files (1234 bytes) of 2 releases in 1 project`."""
    return (
        f"{count(len(plan.files), 'file')} ({plan.bytes} bytes) of "
        f"{count(len(plan.deletions), 'release')} in {count(plan.projects, 'project')}"
    )


def count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
