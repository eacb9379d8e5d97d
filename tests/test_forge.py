"""`releasekit forge release` against a local GitHub API stub that records every request."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from releasekit.errors import ReleaseError
from releasekit.forge import remote_url, resolve_repository
from tests.conftest import GitRepo
from tests.test_publish import refused_port
from tests.test_release_cli import rk

TOKEN = "ghs_Sup3rSecretT0ken"
SLUG = "acme/example-lib"


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: dict[str, Any] | None


@dataclass
class GitHubStub:
    """Enough of the releases API: get by tag, list, create, update; failures on demand."""

    url: str
    prefix: str = ""
    token: str = TOKEN
    requests: list[Recorded] = field(default_factory=list)
    releases: dict[int, dict[str, Any]] = field(default_factory=dict)
    fail_writes: tuple[int, dict[str, Any]] | None = None

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method in ("POST", "PATCH")]

    def add(self, **release: Any) -> int:
        number = len(self.releases) + 1
        self.releases[number] = {"id": number, "draft": False, "prerelease": False, **release}
        return number

    def handle(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        self.requests.append(Recorded(method, path, auth, body))
        if auth != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials"}
        if not path.startswith(f"{self.prefix}/repos/{SLUG}/releases"):
            return 404, {"message": "Not Found"}
        rest = path.removeprefix(f"{self.prefix}/repos/{SLUG}/releases")
        if method in ("POST", "PATCH") and self.fail_writes is not None:
            return self.fail_writes
        if method == "GET" and rest.startswith("/tags/"):
            tag = rest.removeprefix("/tags/")
            for release in self.releases.values():
                if release["tag_name"] == tag and not release["draft"]:
                    return 200, release
            return 404, {"message": "Not Found"}
        if method == "GET" and rest.startswith("?"):
            return 200, sorted(self.releases.values(), key=lambda r: -r["id"])
        if method == "POST" and rest == "":
            number = self.add(**body)
            self.releases[number]["html_url"] = f"https://github.example/{SLUG}/releases/{number}"
            return 201, self.releases[number]
        if method == "PATCH" and rest.lstrip("/").isdigit():
            self.releases[int(rest.lstrip("/"))].update(body)
            return 200, self.releases[int(rest.lstrip("/"))]
        return 404, {"message": "Not Found"}


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    """The stub on 127.0.0.1 with an OS-assigned port, served from a thread."""
    stub = GitHubStub(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = stub.handle(
                self.command, self.path, self.headers.get("Authorization"), body
            )
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def released_project(project: GitRepo) -> GitRepo:
    """example-lib released as v0.1.0 (CHANGELOG.md and an annotated tag)."""
    project.commit("feat: add the greeting")
    assert rk(project, "release").exit_code == 0
    return project


def forge(repo: GitRepo, github: GitHubStub, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url + github.prefix)
    result = rk(repo, "forge", "release", *args)
    assert TOKEN not in result.output
    return result


def test_creates_the_release_with_the_changelog_section(
    released_project: GitRepo, github: GitHubStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = forge(released_project, github, monkeypatch, "0.1.0", "--repository", SLUG)

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"created release v0.1.0 in {SLUG}: https://github.example/{SLUG}/releases/1\n"
    )
    [write] = github.writes()
    assert (write.method, write.path) == ("POST", f"/repos/{SLUG}/releases")
    assert write.authorization == f"Bearer {TOKEN}"
    assert write.body is not None
    assert {k: write.body[k] for k in ("tag_name", "name", "draft", "prerelease")} == {
        "tag_name": "v0.1.0",
        "name": "v0.1.0",
        "draft": False,
        "prerelease": False,
    }
    assert write.body["body"].startswith("### Features\n")
    assert "add the greeting" in write.body["body"]
    assert "## 0.1.0" not in write.body["body"]  # the title says it already


def test_an_existing_release_is_updated_not_duplicated(
    released_project: GitRepo, github: GitHubStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", SLUG)
    assert forge(released_project, github, monkeypatch, "0.1.0").exit_code == 0
    github.releases[1]["body"] = "edited by hand"

    result = forge(released_project, github, monkeypatch, "v0.1.0")  # the tag works too

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"updated release v0.1.0 in {SLUG}: ")
    assert [(w.method, w.path) for w in github.writes()] == [
        ("POST", f"/repos/{SLUG}/releases"),
        ("PATCH", f"/repos/{SLUG}/releases/1"),
    ]
    assert len(github.releases) == 1
    assert "add the greeting" in github.releases[1]["body"]


def test_a_draft_for_the_tag_is_found_in_the_listing_and_updated(
    released_project: GitRepo, github: GitHubStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.add(tag_name="v0.1.0", name="draft", body="", draft=True)

    result = forge(released_project, github, monkeypatch, "0.1.0", "--repository", SLUG)

    assert result.exit_code == 0, result.output
    assert [(w.method, w.path) for w in github.writes()] == [("PATCH", f"/repos/{SLUG}/releases/1")]
    assert github.releases[1]["draft"] is False and len(github.releases) == 1


def test_prereleases_are_marked_and_draft_is_passed(
    released_project: GitRepo, github: GitHubStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    released_project.commit("feat: another")
    assert rk(released_project, "release", "--prerelease-type", "rc").exit_code == 0

    result = forge(released_project, github, monkeypatch, "0.2.0rc1", "-R", SLUG, "--draft")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("created draft release v0.2.0rc1")
    body = github.writes()[0].body
    assert body is not None
    assert (body["tag_name"], body["prerelease"], body["draft"]) == ("v0.2.0rc1", True, True)
    assert "another" in body["body"]
    # Forcing it off is possible (a channel that users install as final).
    forge(released_project, github, monkeypatch, "0.2.0rc1", "-R", SLUG, "--prerelease", "no")
    assert github.releases[1]["prerelease"] is False


def test_enterprise_api_url_and_repository_from_the_git_remote(
    released_project: GitRepo, github: GitHubStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.prefix = "/api/v3"
    released_project.git("remote", "add", "origin", f"git@github.acme.internal:{SLUG}.git")
    monkeypatch.setenv("GITHUB_API_URL", "https://api.github.com")  # the flag wins

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    result = rk(released_project, "forge", "release", "0.1.0", "--api-url", github.url + "/api/v3")

    assert result.exit_code == 0, result.output
    assert {r.path.split("?")[0] for r in github.requests} == {
        f"/api/v3/repos/{SLUG}/releases/tags/v0.1.0",
        f"/api/v3/repos/{SLUG}/releases",
    }


def test_wrong_token_is_a_clear_error_and_never_shown(
    released_project: GitRepo, github: GitHubStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.token = "another-token"

    result = forge(released_project, github, monkeypatch, "0.1.0", "--repository", SLUG)

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: GitHub rejected the token (401 Bad credentials)",
        "  hint: GITHUB_TOKEN is expired or wrong: pass secrets.GITHUB_TOKEN or a valid token",
    ]
    assert github.writes() == [] and github.releases == {}


@pytest.mark.parametrize(
    ("status", "answer", "message", "hint"),
    [
        (
            403,
            {"message": "Resource not accessible by integration"},
            "GitHub refused to POST the release of v0.1.0 in",
            "permissions: contents: write",
        ),
        (
            422,
            # A server that echoes the token must not get it printed.
            {"message": "Validation Failed", "errors": [{"field": "tag_name", "code": TOKEN}]},
            "(422 Validation Failed: tag_name ***)",
            "push the tag first (git push origin v0.1.0)",
        ),
    ],
)
def test_refused_writes_say_what_to_do(
    released_project: GitRepo,
    github: GitHubStub,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    answer: dict[str, Any],
    message: str,
    hint: str,
) -> None:
    github.fail_writes = (status, answer)

    result = forge(released_project, github, monkeypatch, "0.1.0", "--repository", SLUG)

    assert result.exit_code == 1
    assert message in result.stderr and hint in result.stderr
    assert github.releases == {}


def test_unknown_repository_is_a_404_with_a_hint(
    released_project: GitRepo, github: GitHubStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = forge(released_project, github, monkeypatch, "0.1.0", "--repository", "acme/nope")

    assert result.exit_code == 1
    assert f"error: repository acme/nope at {github.url} was not found (404)" in result.stderr
    assert "--api-url" in result.stderr


def test_missing_token_or_unknown_version_makes_no_request(
    released_project: GitRepo, github: GitHubStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    result = rk(released_project, "forge", "release", "0.1.0", "--repository", SLUG)
    assert result.exit_code == 1
    assert "error: GITHUB_TOKEN is not set" in result.stderr
    assert "contents: write" in result.stderr

    result = forge(released_project, github, monkeypatch, "9.9.9", "--repository", SLUG)
    assert result.exit_code == 1
    assert "error: no release 9.9.9 in CHANGELOG.md" in result.stderr
    assert github.requests == []


def test_unreachable_api(released_project: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}"
        result = rk(released_project, "forge", "release", "0.1.0", "-R", SLUG, "--api-url", url)
    assert result.exit_code == 1
    assert f"error: cannot reach the GitHub API at {url}: ConnectionError" in result.stderr
    assert TOKEN not in result.output


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("git@github.com:acme/widgets.git", "acme/widgets"),
        ("https://github.com/acme/widgets", "acme/widgets"),
        ("https://x-access-token:abc@github.com/acme/widgets.git/", "acme/widgets"),
        ("ssh://git@ghe.internal:2222/acme/widgets.git", "acme/widgets"),
    ],
)
def test_repository_from_remote_urls(remote: str, expected: str) -> None:
    assert resolve_repository(None, {}, remote) == expected
    assert resolve_repository(None, {"GITHUB_REPOSITORY": "o/r"}, remote) == "o/r"
    assert resolve_repository("x/y", {"GITHUB_REPOSITORY": "o/r"}, remote) == "x/y"


def test_repository_that_cannot_be_told_is_refused() -> None:
    with pytest.raises(ReleaseError, match="cannot tell which GitHub repository"):
        resolve_repository(None, {}, None)
    with pytest.raises(ReleaseError, match="is not OWNER/REPO"):
        resolve_repository("just-a-name", {}, None)


def test_remote_url_is_read_from_git(project: GitRepo, tmp_path: Path) -> None:
    assert remote_url(project.path) is None  # a repository without a remote
    assert remote_url(tmp_path / "nowhere") is None  # not a repository at all
    project.git("remote", "add", "upstream", "git@github.com:acme/upstream.git")
    assert remote_url(project.path) is None  # neither the branch's remote nor origin
    project.git("remote", "add", "origin", "https://github.com/acme/widgets.git")
    assert remote_url(project.path) == "https://github.com/acme/widgets.git"
    project.git("config", "branch.main.remote", "upstream")
    assert remote_url(project.path) == "git@github.com:acme/upstream.git"
