"""split_into_releases against what `git rev-list` says, on real linear and merge-heavy repos."""

from __future__ import annotations

import itertools
import random

from releasekit.commits import RawCommit
from releasekit.history import split_into_releases
from tests.conftest import GitRepo


def read_log(repo: GitRepo) -> list[RawCommit]:
    """The whole log of HEAD, newest first, read directly from git."""
    out = repo.git("log", "--format=%H%x1f%P%x1f%B%x1e", "HEAD")
    commits = []
    for record in out.split("\x1e"):
        if record.strip():
            sha, parents, message = record.strip("\n").split("\x1f")
            commits.append(RawCommit(sha, tuple(parents.split()), message))
    return commits


def rev_list(repo: GitRepo, *revs: str) -> list[str]:
    out = repo.git("rev-list", *revs)
    return out.split() if out else []


def tag_map(repo: GitRepo, names: list[str]) -> dict[str, str]:
    return {repo.git("rev-list", "-n", "1", name): name for name in names}


def assert_matches_git(repo: GitRepo, order: list[str]) -> dict[str | None, tuple[RawCommit, ...]]:
    """Each release holds exactly `git rev-list <previous>..<tag>`, in log order."""
    log = read_log(repo)
    groups = split_into_releases(log, tag_map(repo, order), order)
    assert list(groups) == [*order, None]
    position = {commit.sha: index for index, commit in enumerate(log)}
    ranges = [order[0]] + [f"{a}..{b}" for a, b in itertools.pairwise(order)]
    ranges.append(f"{order[-1]}..HEAD" if order else "HEAD")
    for key, rev_range in zip([*order, None], ranges, strict=True):
        expected = sorted(rev_list(repo, rev_range), key=position.__getitem__)
        assert [c.sha for c in groups[key]] == expected, f"{key}: {rev_range}"
    assert sum(len(group) for group in groups.values()) == len(log)
    return groups


def test_linear_history(git_repo: GitRepo) -> None:
    for n in range(1, 8):
        git_repo.commit(f"feat: change {n}")
        if n in (2, 5):
            git_repo.tag(f"v0.{n}.0")
    groups = assert_matches_git(git_repo, ["v0.2.0", "v0.5.0"])
    assert [c.message.strip() for c in groups["v0.5.0"]] == [
        "feat: change 5",
        "feat: change 4",
        "feat: change 3",
    ]
    assert [c.message.strip() for c in groups[None]] == ["feat: change 7", "feat: change 6"]


def test_annotated_tags_and_release_at_head(git_repo: GitRepo) -> None:
    git_repo.commit("feat: one")
    git_repo.tag("v1.0.0", "release 1.0.0")
    git_repo.commit("fix: two")
    git_repo.tag("v1.0.1", "release 1.0.1")
    groups = assert_matches_git(git_repo, ["v1.0.0", "v1.0.1"])
    assert groups[None] == ()


def test_merge_heavy_history(git_repo: GitRepo) -> None:
    """Branches that start before a release and land after it belong to the later release."""
    git_repo.commit("chore: initial commit")
    git_repo.checkout("feature-a", create=True)
    git_repo.commit("feat(a): start a")
    git_repo.checkout("main")
    git_repo.commit("fix: on main")
    git_repo.checkout("feature-b", create=True)
    git_repo.commit("feat(b): start b")
    git_repo.checkout("main")
    git_repo.merge("feature-b")
    git_repo.tag("v1.0.0")
    git_repo.checkout("feature-a")
    git_repo.commit("feat(a): more a")
    git_repo.merge("main", "Merge main into feature-a")  # a back-merge brings released commits
    git_repo.commit("feat(a): finish a")
    git_repo.checkout("main")
    git_repo.commit("perf: on main again")
    git_repo.checkout("feature-b")
    git_repo.commit("fix(b): late fix on the old branch")
    git_repo.checkout("main")
    git_repo.merge("feature-a")
    git_repo.tag("v1.1.0")
    git_repo.merge("feature-b")
    git_repo.checkout("feature-c", create=True)
    git_repo.commit("feat(c): c")
    git_repo.checkout("main")
    git_repo.commit("docs: unreleased on main")
    git_repo.merge("feature-c")
    groups = assert_matches_git(git_repo, ["v1.0.0", "v1.1.0"])
    assert sum(commit.is_merge for commit in read_log(git_repo)) == 5
    subjects = {key: {c.message.strip() for c in value} for key, value in groups.items()}
    assert "feat(a): start a" in subjects["v1.1.0"]  # committed before v1.0.0, merged after
    assert "fix(b): late fix on the old branch" in subjects[None]
    assert "fix: on main" in subjects["v1.0.0"]


def test_tags_outside_the_log_and_duplicates(git_repo: GitRepo) -> None:
    git_repo.commit("feat: one")
    git_repo.tag("v1.0.0")
    git_repo.commit("feat: two")
    log = read_log(git_repo)
    tag_of = {log[1].sha: "v1.0.0", "f" * 40: "v0.9.0"}
    groups = split_into_releases(log, tag_of, ["v0.9.0", "v1.0.0", "v1.0.0", "v2.0.0"])
    assert groups == {"v0.9.0": (), "v1.0.0": (log[1],), "v2.0.0": (), None: (log[0],)}


def test_no_tags_means_everything_is_unreleased(git_repo: GitRepo) -> None:
    git_repo.commit("feat: one")
    git_repo.commit("feat: two")
    log = read_log(git_repo)
    assert split_into_releases(log, {}, []) == {None: tuple(log)}
    assert split_into_releases([], {}, []) == {None: ()}


def test_deep_synthetic_history_is_walked_without_recursion() -> None:
    """50k commits in one chain with side branches: far deeper than Python's recursion limit."""
    count = 50_000
    shas = [f"{n:040x}" for n in range(count)]  # shas[0] is the root
    commits = []
    for n in range(count - 1, -1, -1):
        parents: tuple[str, ...] = (shas[n - 1],) if n else ()
        if n % 100 == 0 and n >= 300:
            parents += (shas[n - 250],)  # merges that reach back across two releases
        commits.append(RawCommit(shas[n], parents, f"feat: {n}"))
    order = [f"v{n}" for n in range(1, 500)]
    tag_of = {shas[n * 100 - 1]: f"v{n}" for n in range(1, 500)}
    groups = split_into_releases(commits, tag_of, order)
    assert [len(groups[tag]) for tag in ("v1", "v2", "v499")] == [100, 100, 100]
    assert len(groups[None]) == count - 49_900
    assert sum(len(group) for group in groups.values()) == count


def test_the_chain_sweep_agrees_with_the_graph_walk() -> None:
    """Linear logs take a positional shortcut; it must own exactly what the walk would."""
    from releasekit.history import _chain_owners, _walk_owners

    rng = random.Random(3)  # noqa: S311 - reproducible test data
    for _ in range(300):
        size = rng.randint(0, 40)
        shas = [f"{n:040x}" for n in range(size)]
        boundary = rng.choice([(), ("f" * 40,)])  # a root commit, or a range's lower end
        commits = [
            RawCommit(sha, (shas[i + 1],) if i + 1 < size else boundary, "m")
            for i, sha in enumerate(shas)
        ]
        names = [f"v{n}" for n in range(rng.randint(0, 8))]
        targets = [*shas, "e" * 40] if shas else ["e" * 40]  # "e...": a tag outside the log
        sha_of_tag = {name: rng.choice(targets) for name in names}
        order = names[:]
        rng.shuffle(order)  # versions need not follow positions
        chain = _chain_owners(commits, sha_of_tag, order)
        walked = _walk_owners(commits, sha_of_tag, order)
        assert chain == [walked.get(sha) for sha in shas]
    merge = [RawCommit("a" * 40, ("b" * 40, "c" * 40), "m"), RawCommit("b" * 40, (), "m")]
    assert _chain_owners(merge, {}, []) is None
