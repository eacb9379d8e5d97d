"""Release history: what the version decision reads from git, and a log split into releases.

`read_history` asks the repository a handful of questions (one tag listing, bounded reachability
checks, one `git log`), never walking the whole history. `split_into_releases` is pure: a commit belongs to the oldest release whose tagged commit reaches it; commits that no release
tag reaches are unreleased. The split is one walk over the commit graph: each release marks the
commits it reaches and stops at commits an older release already marked, so every commit and
every parent edge is looked at once, whatever the number of tags or merges.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from releasekit.commits import RawCommit
from releasekit.git import GitRepository, Tag


def split_into_releases(
    commits: Sequence[RawCommit], tag_of: Mapping[str, str], order: Sequence[str]
) -> dict[str | None, tuple[RawCommit, ...]]:
    """Group the log of HEAD (`commits`, newest first) by the release that first contains each commit.

    `tag_of` maps a commit sha to the release tag on it, `order` lists tag names oldest first.
    The result has one key per name in `order` (oldest first; a tag not in the log gets an empty
    tuple) and then `None` for the unreleased commits. Each group keeps the order of `commits`.
    """
    tags = list(dict.fromkeys(order))  # a name listed twice is one release
    sha_of_tag = {tag: sha for sha, tag in tag_of.items()}
    owners = _chain_owners(commits, sha_of_tag, tags)
    if owners is None:
        walked = _walk_owners(commits, sha_of_tag, tags)
        owners = [walked.get(commit.sha) for commit in commits]
    groups: list[list[RawCommit]] = [[] for _ in tags]
    unreleased: list[RawCommit] = []
    for commit, release in zip(commits, owners, strict=True):
        (unreleased if release is None else groups[release]).append(commit)
    result: dict[str | None, tuple[RawCommit, ...]] = {
        tag: tuple(group) for tag, group in zip(tags, groups, strict=True)
    }
    result[None] = tuple(unreleased)
    return result


def _walk_owners(
    commits: Sequence[RawCommit], sha_of_tag: Mapping[str, str], tags: Sequence[str]
) -> dict[str, int]:
    """sha -> index in `tags` of the release that owns it, by one walk over the commit graph."""
    parents_of = {commit.sha: commit.parents for commit in commits}
    owner: dict[str, int] = {}
    for index, tag in enumerate(tags):
        start = sha_of_tag.get(tag)
        stack = [start] if start is not None else []
        # Iterative depth-first walk: 50k-commit histories are far deeper than Python's stack.
        while stack:
            sha = stack.pop()
            # Parents outside the log (a shallow clone's boundary, another branch's tag) own nothing.
            if sha in owner or sha not in parents_of:
                continue
            owner[sha] = index
            stack.extend(parents_of[sha])
    return owner


def _chain_owners(
    commits: Sequence[RawCommit], sha_of_tag: Mapping[str, str], tags: Sequence[str]
) -> list[int | None] | None:
    """The owner of each position when the log is one chain (the usual linear history), else None.

    In a chain a tag reaches exactly the commits at and below its own position, so the owner of
    a commit is the first release, in `tags` order, whose tag sits at or above it: one sweep,
    no graph walk, no dictionary of every commit (a fifth of a 100k-commit render otherwise).
    """
    for commit, parent in itertools.pairwise(commits):
        parents = commit.parents
        if len(parents) != 1 or parents[0] != parent.sha:
            return None
    rank = {
        sha_of_tag[tag]: index
        for index, tag in reversed(list(enumerate(tags)))
        if tag in sha_of_tag
    }
    owners: list[int | None] = []
    best: int | None = None
    for commit in commits:
        found = rank.get(commit.sha)
        if found is not None and (best is None or found < best):
            best = found
        owners.append(best)
    return owners


@dataclass(frozen=True)
class History:
    """What the version decision needs from git, read without walking the whole history."""

    branch: str
    head: str
    tags: tuple[Tag, ...]
    """Reachable release tags down to the last final one (all of them if none is final)."""
    current: Tag | None
    last_final: Tag | None
    commits_since_final: tuple[RawCommit, ...]
    since_current: frozenset[str]


def read_history(repo: GitRepository, tag_format: str) -> History:
    """Tags down to the last final release and one `git log` since it (plus a rev-list on a prerelease).

    The cost follows the commits since the last final release, not the length of the history.
    """
    branch = repo.current_branch()
    head = repo.head_sha()
    tags = tuple(repo.release_tags(tag_format, down_to_final=True))
    current = tags[0] if tags else None
    last_final = next((tag for tag in tags if not tag.version.is_prerelease), None)
    commits = tuple(repo.log(f"{last_final.sha}..HEAD" if last_final else None))
    if current is None or current is last_final:
        since_current = frozenset(commit.sha for commit in commits)
    else:
        since_current = repo.shas_in(f"{current.sha}..HEAD")
    return History(branch, head, tags, current, last_final, commits, since_current)
