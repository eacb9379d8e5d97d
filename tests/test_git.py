"""releasekit.git on real repositories: state checks, tags, history, commits, tags and pushes."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path
from typing import Any

import pytest

from releasekit.errors import GitError
from releasekit.git import GitRepository
from releasekit.history import read_history
from releasekit.versioning import Version
from tests.conftest import GitRepo


def raw_message(repo: GitRepo, sha: str) -> str:
    """The commit message exactly as stored, bytes decoded, nothing stripped."""
    raw = subprocess.run(
        ["git", "cat-file", "commit", sha], cwd=repo.path, capture_output=True, check=True
    ).stdout.decode("utf-8")
    return raw.partition("\n\n")[2]


def clone(source: Path, target: Path, *args: str) -> GitRepo:
    subprocess.run(
        ["git", "clone", "--quiet", *args, f"file://{source}", str(target)],
        check=True,
        capture_output=True,
    )
    cloned = GitRepo.__new__(GitRepo)
    cloned.path, cloned._clock = target, 1_800_000_000
    return cloned


def bare_remote(repo: GitRepo, tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    repo.git("remote", "add", "origin", str(remote))
    repo.git("push", "--quiet", "origin", "main")
    return remote


# --- opening a repository -------------------------------------------------------------------


def test_not_a_work_tree_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GitError) as info:
        GitRepository(tmp_path)
    assert "is not inside a git work tree" in info.value.message
    assert info.value.hint is not None and "--project-dir" in info.value.hint


def test_bare_repository_is_refused(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "--quiet", "--bare", str(tmp_path / "b.git")], check=True)
    with pytest.raises(GitError, match="bare repository"):
        GitRepository(tmp_path / "b.git")


def test_a_subdirectory_opens_the_work_tree(project: GitRepo) -> None:
    repo = GitRepository(project.path / "example_lib")
    assert repo.root == project.path.resolve()
    assert repo.head_sha() == project.head()


def test_unborn_branch_has_no_head(git_repo: GitRepo) -> None:
    repo = GitRepository(git_repo.path)
    assert repo.current_branch() == "main"
    with pytest.raises(GitError) as info:
        repo.head_sha()
    assert info.value.hint == "make a first commit before releasing"


def test_a_failing_command_names_itself_and_gits_reason(project: GitRepo) -> None:
    with pytest.raises(GitError) as info:
        GitRepository(project.path).log("no-such-tag..HEAD")
    assert "`git log -z" in info.value.message
    assert "no-such-tag" in info.value.message  # git's own stderr is carried


# --- work tree state ------------------------------------------------------------------------


def test_clean_tree_and_untracked_files_do_not_count(project: GitRepo) -> None:
    project.write("dist/example_lib-0.1.0.tar.gz", "build output")
    repo = GitRepository(project.path)
    assert repo.dirty_paths() == []
    repo.ensure_clean()


def test_dirty_paths_lists_modified_staged_deleted_and_renamed(project: GitRepo) -> None:
    project.commit("chore: more", {"a.txt": "a\n", "b.txt": "b\n", "old name.txt": "x\n"})
    project.write("a.txt", "changed\n")
    project.write("new.txt", "new\n")
    project.git("add", "new.txt")
    (project.path / "b.txt").unlink()
    project.git("mv", "old name.txt", "new name.txt")
    paths = GitRepository(project.path).dirty_paths()
    assert sorted(paths) == ["a.txt", "b.txt", "new name.txt", "new.txt"]


def test_ensure_clean_lists_ten_paths_and_changes_nothing(project: GitRepo) -> None:
    project.commit("chore: files", {f"f{i:02}.txt": "x\n" for i in range(12)})
    for i in range(12):
        project.write(f"f{i:02}.txt", "changed\n")
    before = project.snapshot()
    with pytest.raises(GitError) as info:
        GitRepository(project.path).ensure_clean()
    assert info.value.message.startswith("the work tree has uncommitted changes: f00.txt, f01.txt")
    assert "f09.txt and 2 more" in info.value.message
    assert "f10.txt" not in info.value.message
    assert info.value.hint is not None and "stash" in info.value.hint
    assert project.snapshot() == before


def test_branch_name_shared_with_a_tag(project: GitRepo) -> None:
    project.tag("main")
    assert GitRepository(project.path).current_branch() == "main"


def test_detached_head_is_refused(project: GitRepo) -> None:
    project.commit("feat: two")
    project.git("checkout", "--quiet", "--detach", "HEAD~1")
    repo = GitRepository(project.path)
    with pytest.raises(GitError) as info:
        repo.current_branch()
    assert "HEAD is detached" in info.value.message
    assert info.value.hint is not None and "git switch <branch>" in info.value.hint
    with pytest.raises(GitError, match="detached"):
        read_history(repo, "v{version}")


# --- shallow clones -------------------------------------------------------------------------


def test_shallow_clone_is_deepened_from_its_remote(project: GitRepo, tmp_path: Path) -> None:
    project.tag("v0.1.0", "release 0.1.0")
    for n in range(3):
        project.commit(f"fix: change {n}")
    shallow = clone(project.path, tmp_path / "shallow", "--depth", "1", "--no-tags")
    repo = GitRepository(shallow.path)
    assert repo.is_shallow()
    assert len(repo.log()) == 1
    repo.ensure_full_history()
    assert not repo.is_shallow()
    assert len(repo.log()) == 4
    assert [tag.name for tag in repo.release_tags("v{version}")] == ["v0.1.0"]


def test_shallow_clone_without_remote_is_refused(project: GitRepo, tmp_path: Path) -> None:
    project.commit("fix: one")
    shallow = clone(project.path, tmp_path / "shallow", "--depth", "1")
    shallow.git("remote", "remove", "origin")
    before = shallow.snapshot()
    repo = GitRepository(shallow.path)
    with pytest.raises(GitError) as info:
        repo.ensure_full_history()
    assert "shallow clone with no remote" in info.value.message
    assert info.value.hint is not None and "fetch-depth: 0" in info.value.hint
    assert repo.is_shallow()
    assert shallow.snapshot() == before


def test_full_clone_needs_nothing(project: GitRepo) -> None:
    repo = GitRepository(project.path)
    assert not repo.is_shallow()
    repo.ensure_full_history()  # no remote, but nothing to fetch either


# --- tags -----------------------------------------------------------------------------------


def test_release_tags_reads_every_kind_and_orders_by_version(project: GitRepo) -> None:
    first = project.head()
    project.tag("v0.1.0")  # lightweight
    second = project.commit("feat: two")
    project._clock += 3 * 86400  # the annotated tag is made three days after its commit
    project.tag("v0.2.0", "release 0.2.0")
    third = project.commit("feat: three")
    project.tag("v1.0.0-rc.1")  # semver spelling
    project.tag("v0.10.0rc1", "a prerelease above 0.2.0: 10 > 2, not text order")
    project.tag("deploy-prod")
    project.tag("vnext")
    project.tag("0.3.0")  # no prefix: another tag_format
    project.checkout("side", create=True)
    project.commit("feat: unreleased side work")
    project.tag("v9.0.0", "not reachable from main")
    project.checkout("main")

    tags = GitRepository(project.path).release_tags("v{version}")

    assert [(tag.name, str(tag.version), tag.sha) for tag in tags] == [
        ("v1.0.0-rc.1", "1.0.0rc1", third),
        ("v0.10.0rc1", "0.10.0rc1", third),
        ("v0.2.0", "0.2.0", second),
        ("v0.1.0", "0.1.0", first),
    ]
    # committer date for a lightweight tag, tagger date for an annotated one
    by_name = {tag.name: tag for tag in tags}
    assert by_name["v0.1.0"].date == datetime.date(2023, 11, 14)  # @1700000060
    assert by_name["v0.2.0"].date == datetime.date(2023, 11, 17)  # @1700000120 + 3 days


def test_tag_of_a_tag_is_peeled_to_its_commit(project: GitRepo) -> None:
    project.tag("inner", "inner tag")
    project.git("tag", "-a", "v0.1.0", "-m", "outer", "inner")
    tags = GitRepository(project.path).release_tags("v{version}")
    assert [(tag.name, tag.sha) for tag in tags] == [("v0.1.0", project.head())]


def test_tags_of_blobs_are_not_releases(project: GitRepo) -> None:
    blob = project.git("hash-object", "-w", "pyproject.toml")
    project.git("tag", "v5.0.0", blob)
    project.git("tag", "-a", "v6.0.0", "-m", "a key, as linux tags its signing key", blob)
    project.tag("v0.1.0")
    repo = GitRepository(project.path)
    assert [tag.name for tag in repo.release_tags("v{version}")] == ["v0.1.0"]
    assert [tag.name for tag in repo.release_tags("v{version}", down_to_final=True)] == ["v0.1.0"]


def test_two_spellings_of_one_version_sort_stably(project: GitRepo) -> None:
    project.tag("v1.0.0-rc.1")
    project.tag("v1.0.0rc1")
    names = [tag.name for tag in GitRepository(project.path).release_tags("v{version}")]
    assert names == ["v1.0.0rc1", "v1.0.0-rc.1"]


def test_tag_exists_sees_unreachable_tags(project: GitRepo) -> None:
    project.checkout("side", create=True)
    project.commit("feat: side")
    project.tag("v9.0.0", "side")
    project.checkout("main")
    repo = GitRepository(project.path)
    assert repo.tag_exists("v9.0.0")
    assert not repo.tag_exists("v9.0.1")
    assert not repo.tag_points_at_head("v9.0.0")


# --- log ------------------------------------------------------------------------------------


ODD_MESSAGES = [
    "fix: record\x1eseparator and unit\x1fseparator\n\nbody with %H %x00 and a tab\there\n",
    "feat: crlf line ends\r\n\r\nbody line\r\n\r\nBREAKING CHANGE: yes\r\n",
    "docs: ünïcødé – ☃ 🎉\n\n日本語の本文\n",
    "chore: no trailing newline",
    "\n\nfix: leading blank lines and trailing spaces   \n\n\n",
]


def test_log_keeps_odd_messages_exactly(project: GitRepo) -> None:
    shas = []
    for message in ODD_MESSAGES:
        project._clock += 60
        project.git("commit", "--quiet", "--allow-empty", "--cleanup=verbatim", "-m", message)
        shas.append(project.head())
    commits = GitRepository(project.path).log()
    assert [commit.sha for commit in commits[:5]] == shas[::-1]
    for commit in commits[:5]:
        assert commit.message == raw_message(project, commit.sha)
    assert commits[3].message == ODD_MESSAGES[1]  # CRLF survives
    assert commits[2].message == ODD_MESSAGES[2]


def test_log_over_merges_has_parents_and_ranges(project: GitRepo) -> None:
    root = project.head()
    project.tag("v0.1.0")
    project.checkout("feature", create=True)
    topic = project.commit("feat: on a branch")
    project.checkout("main")
    mainline = project.commit("fix: on main")
    merge = project.merge("feature", "Merge branch 'feature'\n\nwith a body\n")
    repo = GitRepository(project.path)

    commits = repo.log("v0.1.0..HEAD")
    assert commits[0].sha == merge
    assert commits[0].parents == (mainline, topic)
    assert {commit.sha for commit in commits} == {merge, mainline, topic}
    assert {commit.sha: commit.parents for commit in repo.log()}[root] == ()
    assert repo.shas_in("v0.1.0..HEAD") == {merge, mainline, topic}
    assert repo.head_message() == "Merge branch 'feature'\n\nwith a body\n"


# --- read_history ---------------------------------------------------------------------------


def test_history_without_tags_is_the_whole_history(project: GitRepo) -> None:
    second = project.commit("feat: two")
    history = read_history(GitRepository(project.path), "v{version}")
    assert history.branch == "main"
    assert history.head == second
    assert history.tags == ()
    assert history.current is None and history.last_final is None
    assert [commit.sha for commit in history.commits_since_final] == [
        second,
        project.git("rev-parse", "HEAD~1"),
    ]
    assert history.since_current == {commit.sha for commit in history.commits_since_final}


def test_history_after_a_final_tag(project: GitRepo) -> None:
    project.commit("feat: old")
    project.tag("v0.2.0", "release")
    new = [project.commit("fix: one"), project.commit("feat: two")]
    history = read_history(GitRepository(project.path), "v{version}")
    assert history.current is not None and history.current is history.last_final
    assert history.current.version == Version(0, 2, 0)
    assert [commit.sha for commit in history.commits_since_final] == new[::-1]
    assert history.since_current == set(new)


def test_history_with_a_prerelease_after_the_final(project: GitRepo) -> None:
    project.tag("v0.1.0", "final")
    before_rc = project.commit("feat: one")
    project.tag("v0.2.0rc1", "rc")
    after_rc = [project.commit("fix: two"), project.commit("fix: three")]
    history = read_history(GitRepository(project.path), "v{version}")
    assert history.current is not None and str(history.current.version) == "0.2.0rc1"
    assert history.last_final is not None and history.last_final.name == "v0.1.0"
    assert [tag.name for tag in history.tags] == ["v0.2.0rc1", "v0.1.0"]
    assert [commit.sha for commit in history.commits_since_final] == [*after_rc[::-1], before_rc]
    assert history.since_current == set(after_rc)


def test_read_history_runs_one_git_command_per_question(
    project: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(30):
        project.commit(f"fix: {n}")
        if n % 10 == 0:
            project.tag(f"v0.{n + 2}.0")
    project.tag("v0.40.0rc1")
    project.commit("fix: after the rc")
    repo = GitRepository(project.path)
    calls: list[tuple[str, ...]] = []
    original = GitRepository._run

    def counting(self: GitRepository, *args: str, **kwargs: Any) -> tuple[int, str, str]:
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GitRepository, "_run", counting)
    history = read_history(repo, "v{version}")
    # no per-commit calls; reachability is asked only of the tags down to the last final one,
    # each with a bounded `merge-base --is-ancestor` walk; the log itself is streamed
    assert [call[0] for call in calls] == [
        "symbolic-ref",
        "rev-parse",
        "for-each-ref",
        "merge-base",
        "merge-base",
        "rev-list",
    ]
    assert history.last_final is not None
    assert calls[4][-2] == history.last_final.sha
    assert len(history.commits_since_final) == 10


def test_history_on_a_maintenance_branch_skips_higher_unreachable_tags(project: GitRepo) -> None:
    project.tag("v1.0.0", "final")
    project.commit("feat: two")
    project.tag("v2.0.0rc1", "rc")
    project.commit("fix: three")
    project.tag("v2.0.0", "final")
    project.git("checkout", "--quiet", "-b", "maint-1.x", "v1.0.0")
    rc = project.commit("fix: backport")
    project.tag("v1.0.1rc1")
    head = project.commit("fix: another backport")
    repo = GitRepository(project.path)

    history = read_history(repo, "v{version}")

    assert [tag.name for tag in history.tags] == ["v1.0.1rc1", "v1.0.0"]
    assert history.current is not None and history.current.sha == rc
    assert history.last_final is not None and history.last_final.name == "v1.0.0"
    assert [commit.sha for commit in history.commits_since_final] == [head, rc]
    assert history.since_current == {head}
    assert repo.release_tags("v{version}") == list(history.tags)


def test_history_with_only_prereleases_reads_every_tag(project: GitRepo) -> None:
    project.tag("v0.1.0a1")
    project.commit("feat: two")
    project.tag("v0.1.0b1")
    project.checkout("side", create=True)
    project.commit("feat: side")
    project.tag("v0.2.0rc1")
    project.checkout("main")
    head = project.commit("fix: three")
    history = read_history(GitRepository(project.path), "v{version}")
    assert [tag.name for tag in history.tags] == ["v0.1.0b1", "v0.1.0a1"]
    assert history.last_final is None
    assert len(history.commits_since_final) == 3
    assert history.since_current == {head}


# --- writing: commit, tag, push -------------------------------------------------------------


def test_commit_paths_commits_exactly_those_paths(project: GitRepo) -> None:
    project.write("example_lib/__init__.py", '__version__ = "0.2.0"\n')
    project.write("CHANGELOG.md", "# Changelog\n")  # new, untracked
    project.write("unrelated.txt", "staged by someone\n")
    project.git("add", "unrelated.txt")
    repo = GitRepository(project.path)
    sha = repo.commit_paths(
        [project.path / "example_lib/__init__.py", Path("CHANGELOG.md")], "chore(release): 0.2.0"
    )
    assert sha == project.head()
    assert project.git("show", "--name-only", "--format=", "HEAD").splitlines() == [
        "CHANGELOG.md",
        "example_lib/__init__.py",
    ]
    assert repo.head_message() == "chore(release): 0.2.0\n"
    assert repo.dirty_paths() == ["unrelated.txt"]


def test_commit_paths_refuses_outside_paths_and_no_paths(project: GitRepo, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("x", encoding="utf-8")
    before = project.snapshot()
    with pytest.raises(GitError, match="outside the repository"):
        GitRepository(project.path).commit_paths([outside], "chore: nope")
    assert project.snapshot() == before
    project.write("staged.txt", "x\n")
    project.git("add", "staged.txt")
    before = project.snapshot()
    with pytest.raises(GitError, match="no paths to commit"):
        GitRepository(project.path).commit_paths([], "chore: nothing")
    assert project.snapshot() == before


def test_create_tag_is_annotated_and_refuses_a_duplicate(project: GitRepo) -> None:
    repo = GitRepository(project.path)
    repo.create_tag("v0.1.0", "Release 0.1.0\n\nnotes\n")
    assert project.git("cat-file", "-t", "v0.1.0") == "tag"
    assert project.git("tag", "-l", "--format=%(contents)", "v0.1.0") == "Release 0.1.0\n\nnotes"
    assert repo.tag_points_at_head("v0.1.0")
    project.commit("fix: later")
    assert not repo.tag_points_at_head("v0.1.0")
    before = project.snapshot()
    with pytest.raises(GitError) as info:
        repo.create_tag("v0.1.0", "again")
    assert "already exists" in info.value.message
    assert info.value.hint is not None and "git tag -d" in info.value.hint
    assert project.snapshot() == before


def test_remote_name_prefers_the_upstream(project: GitRepo, tmp_path: Path) -> None:
    repo = GitRepository(project.path)
    assert repo.remote_name() is None
    bare_remote(project, tmp_path)
    assert repo.remote_name() == "origin"
    subprocess.run(["git", "init", "--quiet", "--bare", str(tmp_path / "fork.git")], check=True)
    project.git("remote", "add", "fork", str(tmp_path / "fork.git"))
    project.git("push", "--quiet", "--set-upstream", "fork", "main")
    assert repo.remote_name() == "fork"


def test_push_branch_and_tag_to_a_bare_remote(project: GitRepo, tmp_path: Path) -> None:
    remote = bare_remote(project, tmp_path)
    repo = GitRepository(project.path)
    project.commit("chore(release): 0.2.0")
    repo.create_tag("v0.2.0", "Release 0.2.0")
    assert repo.remote_has("origin", "main", "v0.2.0") == (False, False)
    repo.push("origin", "main", "v0.2.0")
    assert repo.remote_has("origin", "main", "v0.2.0") == (True, True)
    remote_head = subprocess.run(
        ["git", "rev-parse", "main", "v0.2.0^{commit}"], cwd=remote, capture_output=True, text=True
    ).stdout.split()
    assert remote_head == [project.head(), project.head()]


def test_rejected_push_says_why_and_pushes_nothing(project: GitRepo, tmp_path: Path) -> None:
    remote = bare_remote(project, tmp_path)
    other = clone(remote, tmp_path / "other")
    other.commit("fix: pushed by someone else")
    other.git("push", "--quiet", "origin", "main")
    project.commit("chore(release): 0.2.0")
    repo = GitRepository(project.path)
    repo.create_tag("v0.2.0", "Release 0.2.0")

    with pytest.raises(GitError) as info:
        repo.push("origin", "main", "v0.2.0")

    assert "`git push` of main and v0.2.0 to origin was rejected" in info.value.message
    assert "refs/heads/main [rejected] (fetch first)" in info.value.message
    assert info.value.hint is not None and "git pull --rebase origin main" in info.value.hint
    # --atomic: the tag did not land either
    assert repo.remote_has("origin", "main", "v0.2.0") == (False, False)


def test_push_to_a_protected_branch_names_the_protection(project: GitRepo, tmp_path: Path) -> None:
    remote = bare_remote(project, tmp_path)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'GH006: Protected branch update failed for refs/heads/main.' >&2\nexit 1\n"
    )
    hook.chmod(0o755)
    project.commit("chore(release): 0.2.0")
    repo = GitRepository(project.path)
    repo.create_tag("v0.2.0", "Release 0.2.0")
    with pytest.raises(GitError) as info:
        repo.push("origin", "main", "v0.2.0")
    assert "Protected branch update failed" in info.value.message
    assert info.value.hint is not None and "main is protected on origin" in info.value.hint


def test_remote_has_on_an_unreachable_remote_is_a_git_error(
    project: GitRepo, tmp_path: Path
) -> None:
    project.git("remote", "add", "origin", str(tmp_path / "missing.git"))
    with pytest.raises(GitError) as info:
        GitRepository(project.path).remote_has("origin", "main", "v0.1.0")
    assert "ls-remote" in info.value.message
    assert info.value.hint is not None and "git remote -v" in info.value.hint
