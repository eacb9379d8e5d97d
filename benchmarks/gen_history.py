"""Synthetic linear git histories for the history benchmark, written by one `git fast-import` stream.

A history of N commits: conventional messages with bodies, each touching 1 of 50 modules; a
`chore(release): X.Y.Z` commit tagged `vX.Y.Z` about every 200 commits (the version bumped by
what the commits since the previous tag require), the last 150 commits untagged, a breaking
change every 997 commits and some dependabot bodies carrying `fix:` lines. The same
(commits, seed) always gives the same repository, byte for byte: authors and dates are pinned.

    python benchmarks/gen_history.py --commits 10000          # cached under benchmarks/.work/repos
    python benchmarks/gen_history.py --commits 500 /tmp/repo  # a fresh repository at /tmp/repo
"""

from __future__ import annotations

import argparse
import datetime
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

FORMAT = 3
"""Bumped whenever the generated history changes, so cached repositories are rebuilt."""
TAG_EVERY = 200  # ~500 tags at 100k commits
UNTAGGED_TAIL = 150  # what `changelog --unreleased` renders
BREAKING_EVERY = 997
DEPENDABOT_PERCENT = 3
MODULES = 50
FIRST_VERSION = "1.0.0"
BASE_TIME = 1_577_836_800  # 2020-01-01T00:00:00Z; then one commit an hour
IDENT = "Synthetic Author <synthetic@example.com>"
REMOTE_URL = "https://github.com/example/synthetic-history.git"
WORK_DIR = Path(__file__).resolve().parent / ".work"

# Weights roughly as in busy libraries: fixes most common, features next, then upkeep.
_TYPE_WEIGHTS = {"feat": 22, "fix": 28, "perf": 5, "docs": 12, "chore": 12, "refactor": 13}
_TYPE_WEIGHTS |= {"test": 4, "ci": 2, "build": 2}
_LEVELS = {"feat": 2, "fix": 1, "perf": 1}  # 3 = major, 2 = minor, 1 = patch, 0 = nothing
_SCOPES = ("api", "cli", "core", "parser", "config", "cache", "auth", "storage", "io", "http")
_VERBS: tuple[str, ...] = ("add", "handle", "support", "avoid", "speed up", "clarify", "remove")
_VERBS += ("rename", "cache", "validate", "document", "simplify", "reject", "retry", "expose")
_OBJECTS: tuple[str, ...] = ("empty config files", "unicode paths", "slow lookups", "timeouts")
_OBJECTS += ("the retry budget", "nested tables", "large uploads", "duplicate keys", "symlinks")
_OBJECTS += ("missing headers", "the default index", "trailing slashes", "lock contention")
_PROSE = (
    "the parser now keeps state between calls so that repeated lookups stay cheap while "
    "callers that relied on the old order get a warning first and a clear error later when "
    "options conflict with values read from the environment or the project file"
)
_WORDS = tuple(_PROSE.split())
_PACKAGES = ("requests", "httpx", "click", "tomlkit", "packaging", "pytest", "ruff", "urllib3")


@dataclass(frozen=True)
class SyntheticCommit:
    """One commit of the plan: its message, the files it writes, and its release if tagged."""

    message: str
    changes: tuple[tuple[str, str], ...]
    level: int
    release: str | None = None


@dataclass(frozen=True)
class History:
    """A planned history, oldest commit first."""

    commits: tuple[SyntheticCommit, ...]
    releases: tuple[str, ...]
    """Released versions (PEP 440 = semver here), oldest first."""
    next_version: str
    """What a conventional-commit tool should compute at HEAD; "" when nothing is releasable."""


def bump(version: str, level: int) -> str:
    """Semver arithmetic for the plan: 3 major, 2 minor, 1 patch, 0 unchanged."""
    major, minor, patch = (int(part) for part in version.split("."))
    if level == 3:
        return f"{major + 1}.0.0"
    if level == 2:
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}" if level == 1 else version


def plan_history(
    commits: int, seed: int = 0, *, tag_every: int = TAG_EVERY, untagged_tail: int = UNTAGGED_TAIL
) -> History:
    """Decide every message, file change and release of a history of `commits` commits."""
    if commits < 1 or tag_every < 1 or untagged_tail < 0:
        raise ValueError("need commits >= 1, tag_every >= 1 and untagged_tail >= 0")
    rng = random.Random(seed)
    last_tagged = commits - untagged_tail - 1
    tagged = set(range(last_tagged, 0, -tag_every)) if last_tagged >= 1 else set()
    plan = [SyntheticCommit("chore: initial project skeleton\n", _skeleton(FIRST_VERSION), 0)]
    releases: list[str] = []
    version, level = FIRST_VERSION, 0
    window: list[SyntheticCommit] = []
    for index in range(1, commits):
        if index in tagged:
            if releases:
                version = bump(version, max(level, 1))
            releases.append(version)
            day = _date(index)
            plan.append(_release_commit(version, day, window))
            level, window = 0, []
            continue
        commit = _work_commit(rng, index)
        plan.append(commit)
        level = max(level, commit.level)
        window.append(commit)
    next_version = bump(version, level) if releases else FIRST_VERSION
    return History(tuple(plan), tuple(releases), next_version if level else "")


def _work_commit(rng: random.Random, index: int) -> SyntheticCommit:
    module = rng.randrange(MODULES)
    change = (
        f"src/synthetic/mod_{module:02d}.py",
        f'"""Module {module}."""\n\nREVISION = {index}\n',
    )
    breaking = index % BREAKING_EVERY == BREAKING_EVERY - 1
    if not breaking and rng.randrange(100) < DEPENDABOT_PERCENT:
        return SyntheticCommit(_dependabot_message(rng), (change,), 0)
    kind = rng.choices(tuple(_TYPE_WEIGHTS), tuple(_TYPE_WEIGHTS.values()))[0]
    if breaking:
        kind = rng.choice(("feat", "fix"))
    scope = rng.choice(_SCOPES) if rng.randrange(5) else ""
    header = f"{kind}({scope}): " if scope else f"{kind}: "
    header += f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
    paragraphs = [_sentences(rng, rng.randint(1, 3)) for _ in range(rng.randint(1, 2))]
    footers = [f"Refs: #{rng.randint(1, 9999)}"] if rng.randrange(5) == 0 else []
    if breaking:
        footers.insert(0, f"BREAKING CHANGE: {rng.choice(_OBJECTS)} are no longer accepted")
    message = "\n\n".join([header, *paragraphs, *(["\n".join(footers)] if footers else [])])
    return SyntheticCommit(message + "\n", (change,), 3 if breaking else _LEVELS.get(kind, 0))


def _dependabot_message(rng: random.Random) -> str:
    # The release notes of the dependency carry `fix:` lines: body lines that must not release.
    package = rng.choice(_PACKAGES)
    old = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
    new = bump(old, 1)
    notes = "\n".join(f"fix: {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}" for _ in range(3))
    return (
        f"chore(deps): bump {package} from {old} to {new}\n\n"
        f"Bumps [{package}](https://github.com/example/{package}) from {old} to {new}.\n\n"
        f"Release notes\n\nSourced from {package}'s releases.\n\n{notes}\n\n"
        f"---\nupdated-dependencies:\n- dependency-name: {package}\n"
        "  dependency-type: direct:production\n  update-type: version-update:semver-patch\n"
        "...\n\nSigned-off-by: dependabot[bot] <support@github.com>\n"
    )


def _sentences(rng: random.Random, count: int) -> str:
    sentences = []
    for _ in range(count):
        words = rng.sample(_WORDS, rng.randint(6, 14))
        sentences.append(" ".join(words).capitalize() + ".")
    return _wrap(" ".join(sentences))


def _wrap(text: str, width: int = 72) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def _release_commit(version: str, day: str, window: list[SyntheticCommit]) -> SyntheticCommit:
    files = (
        ("pyproject.toml", pyproject_text(version)),
        ("CHANGELOG.md", _changelog(version, day, window)),
    )
    return SyntheticCommit(f"chore(release): {version}\n", files, 0, release=version)


def _changelog(version: str, day: str, window: list[SyntheticCommit]) -> str:
    # Only the newest section: a changelog holding every release would make the stream
    # quadratic in the number of releases, and the tools under test render history anyway.
    groups: dict[str, list[str]] = {"Breaking changes": [], "Features": [], "Bug fixes": []}
    for commit in window:
        name = {3: "Breaking changes", 2: "Features", 1: "Bug fixes"}.get(commit.level)
        if name:
            header = commit.message.split("\n", 1)[0]
            kind, description = header.split(": ", 1)
            scope = kind.partition("(")[2].rstrip(")")
            groups[name].append(f"- **{scope}:** {description}" if scope else f"- {description}")
    body = "".join(
        f"### {name}\n\n" + "\n".join(lines) + "\n\n" for name, lines in groups.items() if lines
    )
    return f"# Changelog\n\n## {version} - {day}\n\n{body}Older releases: see the git tags.\n"


def pyproject_text(version: str) -> str:
    """The generated project's pyproject.toml: releasekit, commitizen and PSR agree on it."""
    return f"""[build-system]
requires = ["poetry-core>=2.0,<3"]
build-backend = "poetry.core.masonry.api"

[project]
name = "synthetic-history"
version = "{version}"
description = "A synthetic library for the releasekit history benchmark."
requires-python = ">=3.11"

[tool.releasekit]
tag_format = "v{{version}}"
changelog_file = "CHANGELOG.md"
repository_url = "https://github.com/example/synthetic-history"

[tool.commitizen]
name = "cz_conventional_commits"
version_provider = "pep621"
tag_format = "v$version"
update_changelog_on_bump = false

[tool.semantic_release]
version_toml = ["pyproject.toml:project.version"]
tag_format = "v{{version}}"
allow_zero_version = true
major_on_zero = true
commit_parser = "conventional"

[tool.semantic_release.branches.main]
match = "main"
prerelease = false

[tool.semantic_release.changelog]
mode = "init"

[tool.semantic_release.remote]
type = "github"
ignore_token_for_push = true
"""


def _skeleton(version: str) -> tuple[tuple[str, str], ...]:
    modules = tuple(
        (f"src/synthetic/mod_{n:02d}.py", f'"""Module {n}."""\n\nREVISION = 0\n')
        for n in range(MODULES)
    )
    return (
        ("pyproject.toml", pyproject_text(version)),
        ("CHANGELOG.md", "# Changelog\n"),
        ("README.md", "# synthetic-history\n\nGenerated by benchmarks/gen_history.py.\n"),
        ("src/synthetic/__init__.py", '"""A synthetic library."""\n'),
        *modules,
    )


def _date(index: int) -> str:
    moment = datetime.datetime.fromtimestamp(BASE_TIME + index * 3600, tz=datetime.UTC)
    return moment.date().isoformat()


def fast_import_stream(history: History, *, annotated: bool = True) -> bytes:
    """The whole history as one `git fast-import` stream on refs/heads/main."""
    out: list[bytes] = []

    def data(text: str) -> None:
        raw = text.encode()
        out.append(b"data %d\n%s\n" % (len(raw), raw))

    for mark, commit in enumerate(history.commits, start=1):
        when = f"{BASE_TIME + (mark - 1) * 3600} +0000"
        out.append(f"commit refs/heads/main\nmark :{mark}\n".encode())
        out.append(f"author {IDENT} {when}\ncommitter {IDENT} {when}\n".encode())
        data(commit.message)
        for path, content in commit.changes:
            out.append(f"M 100644 inline {path}\n".encode())
            data(content)
        if commit.release is None:
            continue
        tag = f"v{commit.release}"
        if annotated:
            out.append(f"tag {tag}\nfrom :{mark}\ntagger {IDENT} {when}\n".encode())
            data(f"Release {commit.release}\n")
        else:
            out.append(f"reset refs/tags/{tag}\nfrom :{mark}\n\n".encode())
    out.append(b"done\n")
    return b"".join(out)


def generate(
    path: Path,
    commits: int,
    seed: int = 0,
    *,
    annotated: bool = True,
    tag_every: int = TAG_EVERY,
    untagged_tail: int = UNTAGGED_TAIL,
) -> Path:
    """Create the repository at `path` (absent or empty), checked out on `main`; returns `path`."""
    history = plan_history(commits, seed, tag_every=tag_every, untagged_tail=untagged_tail)
    path.mkdir(parents=True, exist_ok=True)
    if any(path.iterdir()):
        raise FileExistsError(f"{path} is not empty")
    stream = fast_import_stream(history, annotated=annotated)
    _git(path, "init", "--quiet", "--initial-branch=main")
    _git(path, "fast-import", "--quiet", "--done", stdin=stream)
    _git(path, "reset", "--quiet", "--hard")
    _git(path, "pack-refs", "--all")  # a clone has packed refs too
    _git(path, "config", "user.name", IDENT.split(" <")[0])
    _git(path, "config", "user.email", IDENT.split("<")[1].rstrip(">"))
    _git(path, "remote", "add", "origin", REMOTE_URL)
    return path


def cached_repo(
    commits: int, seed: int = 0, *, annotated: bool = True, root: Path | None = None
) -> Path:
    """The repository for (commits, seed), generated once under `root` and reused afterwards."""
    root = root or WORK_DIR / "repos"
    kind = "annotated" if annotated else "lightweight"
    target = root / f"history-{commits}-seed{seed}-{kind}-f{FORMAT}"
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed into place: a half-built repository is never reused.
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=root))
    try:
        generate(staging, commits, seed, annotated=annotated)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> None:
    result = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"git {args[0]} failed in {cwd}: {result.stderr.decode(errors='replace')}"
        )


def main(argv: list[str] | None = None) -> int:
    """CLI: generate one repository and print its path and releases."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", nargs="?", type=Path, help="target directory (default: the cache)")
    parser.add_argument("--commits", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--lightweight", action="store_true", help="lightweight tags, not annotated"
    )
    args = parser.parse_args(argv)
    annotated = not args.lightweight
    if args.path is None:
        path = cached_repo(args.commits, args.seed, annotated=annotated)
    else:
        path = generate(args.path, args.commits, args.seed, annotated=annotated)
    history = plan_history(args.commits, args.seed)
    last = history.releases[-1] if history.releases else "none"
    summary = f"{args.commits} commits, {len(history.releases)} tags (last v{last})"
    print(f"{path}: {summary}, next version {history.next_version or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
