"""Split a commit log into releases, with `git log prevtag..tag` semantics.  (pure)

A commit belongs to the oldest release whose tagged commit reaches it; commits that no release
tag reaches are unreleased. The split is one walk over the commit graph: each release marks the
commits it reaches and stops at commits an older release already marked, so every commit and
every parent edge is looked at once, whatever the number of tags or merges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from releasekit.commits import RawCommit


def split_into_releases(
    commits: Sequence[RawCommit], tag_of: Mapping[str, str], order: Sequence[str]
) -> dict[str | None, tuple[RawCommit, ...]]:
    """Group the log of HEAD (`commits`, newest first) by the release that first contains each commit.

    `tag_of` maps a commit sha to the release tag on it, `order` lists tag names oldest first.
    The result has one key per name in `order` (oldest first; a tag not in the log gets an empty
    tuple) and then `None` for the unreleased commits. Each group keeps the order of `commits`.
    """
    parents_of = {commit.sha: commit.parents for commit in commits}
    sha_of_tag = {tag: sha for sha, tag in tag_of.items()}
    tags = list(dict.fromkeys(order))  # a name listed twice is one release
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
    groups: list[list[RawCommit]] = [[] for _ in tags]
    unreleased: list[RawCommit] = []
    for commit in commits:
        release = owner.get(commit.sha)
        (unreleased if release is None else groups[release]).append(commit)
    result: dict[str | None, tuple[RawCommit, ...]] = {
        tag: tuple(group) for tag, group in zip(tags, groups, strict=True)
    }
    result[None] = tuple(unreleased)
    return result
