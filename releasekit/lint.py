"""`releasekit check`: lint commit messages with the same parser the version rule uses."""

from __future__ import annotations

from pathlib import Path

from releasekit.commits import RawCommit, lint_message
from releasekit.config import load_config
from releasekit.errors import GitError, ReleaseError
from releasekit.git import GitRepository


def check_messages(
    root: Path, message_file: Path | None, rev_range: str | None, message: str | None
) -> list[str]:
    """One line per message that is not a Conventional Commit; empty when all are fine.

    Stricter than the version rule on form only: see `lint_message`.
    """
    # Inside a project the types are its own (defaults and [tool.releasekit.types]); a hook
    # or a PR-title check outside any project accepts any type word. A broken config is an
    # error, not a reason to check less.
    allowed = set(load_config(root).types) if (root / "pyproject.toml").is_file() else None
    if rev_range is not None:
        problems = []
        for commit in _log(root, rev_range):
            if commit.is_merge:
                continue
            reason = lint_message(commit.message, allowed_types=allowed)
            if reason:
                problems.append(f"{commit.short_sha} {commit.subject!r}: {reason}")
        return problems
    if message is None:
        if message_file is None:
            raise ReleaseError(
                "nothing to check",
                hint="pass a message file (commit-msg hook), --message TEXT or --range A..B",
            )
        try:
            message = message_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ReleaseError(f"cannot read {message_file}: {exc.strerror}") from exc
    reason = lint_message(message, allowed_types=allowed)
    return [reason] if reason else []


def _log(root: Path, rev_range: str) -> list[RawCommit]:
    try:
        return GitRepository(root).log(rev_range)
    except GitError as exc:
        if "bad revision" not in exc.message and "unknown revision" not in exc.message:
            raise
        raise GitError(
            f"--range {rev_range}: this repository has no such revision",
            hint="fetch it first (a CI checkout often lacks it: git fetch origin main), or name"
            " refs it has, e.g. --range v1.2.0..HEAD",
        ) from exc
