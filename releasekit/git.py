"""The only module that runs git: one subprocess per question, never a walk over commit objects.

Every command goes through `GitRepository._run` (or the streamed `_log`), which turns a failure
into a `GitError` carrying the command, git's own stderr and a hint. `history.read_history` puts
the questions together for the version decision.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from releasekit.commits import RawCommit
from releasekit.errors import GitError
from releasekit.versioning import Version, parse_tag

_MAX_LISTED_PATHS = 10
# for-each-ref fields, NUL-separated: ref names cannot hold NUL, dates and shas cannot either.
_TAG_FORMAT = (
    "%(refname:strip=2)%00%(objecttype)%00%(objectname)%00%(*objectname)%00%(*objecttype)"
    "%00%(creatordate:short)"
)
# `git log -z` ends every record with NUL, which a commit message can never contain.
_LOG_FORMAT = "--format=%H %P%n%B"
_HINTS = (
    (
        "Please tell me who you are",
        "set an identity: git config user.name NAME; git config user.email EMAIL",
    ),
    ("does not have any commits yet", "make a first commit before releasing"),
    ("unknown revision", "check that the tag or branch exists (git fetch --tags)"),
    ("Could not read from remote", "check the remote URL and your access to it (git remote -v)"),
    ("Authentication failed", "check the credentials CI uses to push"),
    ("already exists", "a leftover local tag? check it with git show, delete it with git tag -d"),
)


def _git_env() -> dict[str, str]:
    """The environment git runs in: English messages, which the hints match."""
    return {**os.environ, "LANGUAGE": "C", "LC_ALL": "C"}


@dataclass(frozen=True)
class Tag:
    """A release tag: its name, the version it spells, the commit it points to, and its date."""

    name: str
    version: Version
    sha: str
    date: datetime.date


class GitRepository:
    """A git work tree, asked one question per git subprocess."""

    def __init__(self, root: Path) -> None:
        # Plain subprocesses (no git library): importing one cost more than a whole
        # `version --print` at 100k commits, and every question here is one git command anyway.
        self.root = root
        status, out, _ = self._run(
            "rev-parse", "--is-bare-repository", "--show-toplevel", check=False
        )
        lines = out.splitlines()
        if lines[:1] == ["true"]:
            raise GitError(
                f"{root} is a bare repository", hint="run releasekit in a clone with a work tree"
            )
        if status != 0 or len(lines) < 2:
            raise GitError(
                f"{root} is not inside a git work tree",
                hint="run releasekit from the repository root, or pass --project-dir",
            )
        self.root = Path(lines[1]).resolve()

    def _run(self, *args: str, hint: str | None = None, check: bool = True) -> tuple[int, str, str]:
        """Run `git *args` in the work tree; (status, stdout, stderr), raising GitError on failure."""
        command = ["git", *args]
        try:
            result = subprocess.run(
                command,
                cwd=self.root,
                env=_git_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
        except FileNotFoundError as exc:
            if not Path(self.root).is_dir():
                return 128, "", f"{self.root} does not exist"
            raise GitError("git is not installed or not on PATH", hint="install git") from exc
        status, out = result.returncode, result.stdout
        err = result.stderr.decode("utf-8", "replace")
        stdout = out.decode("utf-8", "surrogateescape")
        if check and status != 0:
            raise GitError(
                f"`{' '.join(command)}` failed (exit {status}): {err.strip() or stdout.strip()}",
                hint=hint or next((h for needle, h in _HINTS if needle in err), None),
            )
        return status, stdout, err

    def _out(self, *args: str, hint: str | None = None) -> str:
        return self._run(*args, hint=hint)[1].strip()

    def current_branch(self) -> str:
        """The checked-out branch; GitError on a detached HEAD."""
        branch = self._branch()
        if branch is None:
            raise GitError(
                "HEAD is detached: a release needs a branch to commit to and push",
                hint="check out the branch (git switch <branch>); in CI, check out the branch, not the sha",
            )
        return branch

    def _branch(self) -> str | None:
        # not --short: it answers "heads/main" when a tag is also called "main"
        status, out, _ = self._run("symbolic-ref", "--quiet", "HEAD", check=False)
        return out.strip().removeprefix("refs/heads/") if status == 0 else None

    def dirty_paths(self) -> list[str]:
        """Tracked files that are modified, staged or deleted.

        Untracked files do not count: the release commit stages only the files releasekit writes,
        and build output or virtualenvs are routinely untracked (and not always ignored).
        """
        out = self._run("status", "--porcelain=v1", "-z", "--untracked-files=no")[1]
        entries = iter(out.split("\0"))
        paths: list[str] = []
        for entry in entries:  # "XY path", and a rename or copy is followed by its source path
            if len(entry) > 3:
                paths.append(entry[3:])
                if entry[0] in "RC":
                    next(entries, None)
        return paths

    def ensure_clean(self) -> None:
        """Refuse a work tree with uncommitted changes to tracked files."""
        paths = self.dirty_paths()
        if paths:
            listed = ", ".join(paths[:_MAX_LISTED_PATHS])
            more = (
                f" and {len(paths) - _MAX_LISTED_PATHS} more"
                if len(paths) > _MAX_LISTED_PATHS
                else ""
            )
            raise GitError(
                f"the work tree has uncommitted changes: {listed}{more}",
                hint="commit or stash them (git stash) before releasing",
            )

    def is_shallow(self) -> bool:
        return self._out("rev-parse", "--is-shallow-repository") == "true"

    def ensure_full_history(self) -> None:
        """Deepen a shallow clone from its remote, since tags and history decide the version."""
        if not self.is_shallow():
            return
        remote = self.remote_name()
        if remote is None:
            raise GitError(
                "this is a shallow clone with no remote to fetch the full history from",
                hint="clone with full history (in GitHub Actions: actions/checkout with fetch-depth: 0)",
            )
        self._run(
            "fetch", "--quiet", "--unshallow", "--tags", remote,
            hint="clone with full history (in GitHub Actions: actions/checkout with fetch-depth: 0)",
        )  # fmt: skip

    def release_tags(self, tag_format: str, *, down_to_final: bool = False) -> list[Tag]:
        """Tags reachable from HEAD that spell a version in `tag_format`, highest version first.

        With `down_to_final`, stop below the highest reachable final release: asking git which of
        *all* tags are reachable walks the whole history (0.3 s at 50k commits), asking about the
        few tags above the last final release walks only back to it.
        """
        if not down_to_final:
            return self._tags(tag_format, "--merged", "HEAD")
        reachable: list[Tag] = []
        for tag in self._tags(tag_format):
            # `merge-base --is-ancestor` walks from HEAD only back to the tag; `--merged` over
            # all tags walks the whole history when there is no commit-graph (0.4 s at 50k).
            if self._run("merge-base", "--is-ancestor", tag.sha, "HEAD", check=False)[0] == 0:
                reachable.append(tag)
                if not tag.version.is_prerelease:
                    break
        return reachable

    def is_ancestor(self, sha: str, ref: str = "HEAD") -> bool:
        """Whether `sha` is reachable from `ref` (a walk from `ref` back to `sha` only)."""
        return self._run("merge-base", "--is-ancestor", sha, ref, check=False)[0] == 0

    def file_at_head(self, relpath: str) -> str | None:
        """The committed text of `relpath` at HEAD, None when HEAD has no such file."""
        status, out, _ = self._run("show", f"HEAD:{relpath}", check=False)
        return out if status == 0 else None

    def tag_names(self) -> list[str]:
        """Every tag name (one call)."""
        return self._out("tag", "--list").splitlines()

    def all_tags(self, tag_format: str) -> list[Tag]:
        """Every tag that spells a version, reachable or not, highest first (one cheap call)."""
        return self._tags(tag_format)

    def _tags(self, tag_format: str, *filters: str) -> list[Tag]:
        out = self._run("for-each-ref", *filters, f"--format={_TAG_FORMAT}", "refs/tags")[1]
        tags: list[Tag] = []
        for line in out.splitlines():
            name, kind, sha, peeled, peeled_kind, date = line.split("\0")
            version = parse_tag(name, tag_format)
            if version is None or kind in ("blob", "tree") or peeled_kind in ("blob", "tree"):
                continue
            if peeled_kind == "tag":  # a tag of a tag: rare, so one extra call to peel it fully
                status, peeled_out, _ = self._run(
                    "rev-parse", "--verify", "--quiet", f"refs/tags/{name}^{{commit}}", check=False
                )
                if status != 0:
                    continue
                peeled = peeled_out.strip()
            tags.append(Tag(name, version, peeled or sha, datetime.date.fromisoformat(date)))
        # Two spellings of one version (v1.0.0 and 1.0.0): the newer tag wins, then the name decides.
        tags.sort(key=lambda tag: (tag.version, tag.date, tag.name), reverse=True)
        return tags

    def tag_exists(self, name: str) -> bool:
        """Whether any tag called `name` exists, reachable from HEAD or not."""
        return (
            self._run("show-ref", "--verify", "--quiet", f"refs/tags/{name}", check=False)[0] == 0
        )

    def log(
        self, rev_range: str | None = None, *, each: Callable[[RawCommit], object] | None = None
    ) -> list[RawCommit]:
        """Commits of `rev_range` (default: all of HEAD), newest first, with full raw messages.

        `each` sees every commit as it arrives, while git is still writing the rest: work done
        there overlaps git's own (it runs on the other core).
        """
        return self._log(rev_range or "HEAD", "--", each=each)

    def _log(
        self, *args: str, each: Callable[[RawCommit], object] | None = None
    ) -> list[RawCommit]:
        """Stream `git log -z`: records are decoded while git is still writing the rest."""
        command = ["git", "log", "-z", _LOG_FORMAT, *args]
        process = subprocess.Popen(
            command,
            cwd=self.root,
            env=_git_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        commits: list[RawCommit] = []
        pending = b""
        try:
            while chunk := process.stdout.read1(1 << 20):  # type: ignore[attr-defined]
                records = (pending + chunk).split(b"\0")
                pending = records.pop()
                for record in records:
                    header, _, message = record.decode("utf-8", "surrogateescape").partition("\n")
                    sha, *parents = header.split()
                    commit = RawCommit(sha=sha, parents=tuple(parents), message=message)
                    commits.append(commit)
                    if each is not None:
                        each(commit)
            err = process.stderr.read().decode("utf-8", "replace")
        finally:
            process.stdout.close()
            process.stderr.close()
            status = process.wait()
        if status != 0:
            raise GitError(
                f"`{' '.join(command)}` failed (exit {status}): {err.strip()}",
                hint=next((h for needle, h in _HINTS if needle in err), None),
            )
        return commits

    def shas_in(self, rev_range: str) -> frozenset[str]:
        return frozenset(self._out("rev-list", rev_range, "--").split())

    def head_sha(self) -> str:
        return self._out(
            "rev-parse", "--verify", "HEAD", hint="make a first commit before releasing"
        )

    def commit_of(self, rev: str) -> str:
        """The sha of the commit `rev` (a tag, branch or sha) names."""
        return self._out("rev-parse", "--verify", f"{rev}^{{commit}}")

    def head_message(self) -> str:
        return self._log("-1", "HEAD", "--")[0].message

    def commit_paths(self, paths: Sequence[Path], message: str) -> str:
        """Stage exactly `paths` and commit only them with `message`; returns the new sha.

        Relative paths are taken from the work tree root; hooks and signing run as configured.
        """
        if not paths:  # `git commit` without a pathspec would commit whatever happens to be staged
            raise GitError(
                "no paths to commit", hint="this is a bug in the caller: pass the written files"
            )
        names = [self._relative(path) for path in paths]
        self._run("add", "--", *names)
        try:
            # A pathspec makes `git commit` take only these paths, whatever else is staged.
            self._run("commit", "--quiet", "-m", message, "--", *names)
        except GitError:
            # A hook or a missing identity refused it: unstage, so the caller's restore of the
            # files leaves a clean tree and the same command can simply run again.
            self._run("reset", "--quiet", "--", *names, check=False)
            raise
        return self.head_sha()

    def create_tag(self, name: str, message: str, ref: str = "HEAD") -> None:
        """An annotated tag `name` on `ref`; the message is kept verbatim (`### ` headings stay)."""
        self._run("tag", "--annotate", "--cleanup=verbatim", "--message", message, name, ref)

    def remote_name(self) -> str | None:
        """The current branch's upstream remote, else "origin" if it exists, else None."""
        remotes = self._out("remote").split()
        branch = self._branch()
        if branch is not None:
            upstream = self._run("config", "--get", f"branch.{branch}.remote", check=False)[1]
            upstream = upstream.strip()
            if upstream in remotes:
                return upstream
        return "origin" if "origin" in remotes else None

    def remote_url(self) -> str | None:
        """The URL of the branch's remote (else origin), or None without a remote."""
        name = self.remote_name()
        if name is None:
            return None
        status, out, _ = self._run("remote", "get-url", name, check=False)
        return (out.strip() or None) if status == 0 else None

    def push(self, remote: str, branch: str, tag: str) -> None:
        """Push the branch and the tag together: both land or neither does."""
        status, out, err = self._run(
            "push", "--atomic", "--porcelain", remote, f"refs/heads/{branch}", f"refs/tags/{tag}",
            check=False,
        )  # fmt: skip
        if status == 0:
            return
        raise GitError(
            f"`git push` of {branch} and {tag} to {remote} was rejected: {_push_reason(out, err)}",
            hint=_push_hint(f"{out}\n{err}", remote, branch, tag),
        )

    def tag_points_at_head(self, name: str) -> bool:
        return name in self._out("tag", "--points-at", "HEAD").splitlines()

    def remote_has(self, remote: str, branch: str, tag: str) -> tuple[bool, bool]:
        """(remote `branch` is at the local branch's sha, remote has `tag`), for resuming a push."""
        local = self._out("rev-parse", "--verify", f"refs/heads/{branch}")
        out = self._out("ls-remote", remote, f"refs/heads/{branch}", f"refs/tags/{tag}")
        remote_refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            remote_refs[ref] = sha
        return remote_refs.get(f"refs/heads/{branch}") == local, f"refs/tags/{tag}" in remote_refs

    def _relative(self, path: Path) -> str:
        if not path.is_absolute():
            return path.as_posix()
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            raise GitError(
                f"{path} is outside the repository {self.root}",
                hint="version files must live in the repository",
            ) from None


def _push_reason(porcelain: str, stderr: str) -> str:
    """The rejected refs from `git push --porcelain` ("!<TAB>from:to<TAB>summary"), else stderr."""
    rejected = []
    for line in porcelain.splitlines():
        fields = line.split("\t")
        if fields[0] == "!" and len(fields) == 3:
            rejected.append(f"{fields[1].partition(':')[2]} {fields[2]}")
    remote_lines = [
        line for line in stderr.splitlines() if line.startswith(("remote:", "error:", "fatal:"))
    ]
    return "; ".join(rejected + remote_lines) or stderr.strip()


def _push_hint(text: str, remote: str, branch: str, tag: str) -> str | None:
    if "protected" in text or "hook declined" in text:
        return f"{branch} is protected on {remote}: push as a user allowed to, or release through a pull request"
    if "fetch first" in text or "non-fast-forward" in text:
        return (
            f"{remote}/{branch} has moved on since this release was made: drop the local release "
            f"(git tag -d {tag}; git reset --hard HEAD~1), git pull --rebase {remote} {branch}, "
            "then release again so the version accounts for the new commits"
        )
    return next((hint for needle, hint in _HINTS if needle in text), None)
