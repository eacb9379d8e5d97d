"""Publishing to the real bundled index (a `releasekit server run` subprocess) with real twine."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import bcrypt
import keyring
import keyring.backend
import keyring.errors
import pytest

from releasekit.build import Distributions, build_distributions
from releasekit.config import Config, Repository
from releasekit.errors import PublishError
from releasekit.publish import (
    Target,
    existing_files,
    publish,
    resolve_target,
    upload,
    verify,
)
from tests.test_build import tiny_project

USER = "alice-publisher"
PASSWORD = "Zq8-s3cret%41-Pw"
SECRETS = (USER, PASSWORD)


_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@contextmanager
def refused_port() -> Iterator[int]:
    """A port bound but not listening: connections are refused and no other process takes it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port: int = holder.getsockname()[1]
        yield port


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Index:
    """A running `releasekit server run` on 127.0.0.1."""

    url: str
    packages: Path
    process: subprocess.Popen[bytes]

    def stored(self) -> dict[str, str]:
        """Distribution files in the packages directory, with their sha256."""
        return {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(self.packages.iterdir())
            if path.is_file() and path.name.endswith((".whl", ".tar.gz"))
        }


@pytest.fixture
def start_index(tmp_path: Path) -> Iterator[Callable[..., Index]]:
    """Start real index servers (user USER / PASSWORD may upload); all stopped at teardown."""
    started: list[Index] = []
    htpasswd = tmp_path / "htpasswd"
    entry = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"{USER}:{entry}\n")

    def start(
        *, authenticate: str = "update", overwrite: bool = False, extra: tuple[str, ...] = ()
    ) -> Index:
        packages = tmp_path / f"packages{len(started)}"
        packages.mkdir()
        command = [sys.executable, "-m", "releasekit", "server", "run", str(packages)]
        command += ["-p", "0", "-i", "127.0.0.1", "-P", str(htpasswd), "-a", authenticate]
        command += ["-o"] if overwrite else []
        command += extra
        log_path = tmp_path / f"index{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        index = Index("", packages, process)
        started.append(index)
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"index exited: {log_path.read_text()}")
            if not index.url:  # the port the OS assigned, from the server's log
                listening = _LISTENING.search(log_path.read_text(errors="replace"))
                index.url = f"http://127.0.0.1:{listening.group(1)}/" if listening else ""
            try:
                if not index.url:
                    raise OSError("not listening yet")
                with urllib.request.urlopen(f"{index.url}health", timeout=1) as response:
                    if response.status == 200:
                        return index
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("index did not become healthy within 30 s")
                time.sleep(0.05)

    yield start
    for index in started:
        index.process.terminate()
        try:
            index.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            index.process.kill()
            index.process.wait()


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Distributions]:
    """tiny-lib 1.0.0 built twice with different contents ("v1", "other"), and 1.1.0."""
    base = tmp_path_factory.mktemp("builds")
    made = {}
    for key, version, payload in (
        ("v1", "1.0.0", ""),
        ("other", "1.0.0", "X = 1\n"),
        ("v11", "1.1.0", ""),
    ):
        root = tiny_project(base / key, version, payload=payload)
        made[key] = build_distributions(
            root, version, outdir=base / key / "dist", isolation=False, progress=lambda _: None
        )
    return made


def config_for(url: str, username: str | None = None) -> Config:
    repository = Repository(name="private", url=url, username=username)
    return Config(
        root=Path(),
        repositories=MappingProxyType({"private": repository}),
        default_repository="private",
    )


def sha256s(dists: Distributions) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in dists.files}


def assert_no_secrets(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text)


ENV = {"RELEASEKIT_USERNAME": USER, "RELEASEKIT_PASSWORD": PASSWORD}


@pytest.mark.e2e
def test_publish_uploads_and_verifies(
    start_index: Callable[..., Index],
    builds: dict[str, Distributions],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    index = start_index()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    lines: list[str] = []
    dists = builds["v1"]

    uploaded = publish(
        config_for(index.url), dists, repository=None, force=False, progress=lines.append
    )

    assert sorted(uploaded) == sorted(p.name for p in dists.files)
    assert index.stored() == sha256s(dists)
    target = resolve_target(config_for(index.url), None)
    assert existing_files(target, "Tiny_Lib", "1.0.0") == sha256s(dists)
    assert existing_files(target, "tiny-lib", "1.1.0") == {}
    assert existing_files(target, "unknown-project", "1.0.0") == {}
    assert lines[0] == f"checking private ({index.url}) for tiny-lib 1.0.0"
    assert lines[-1].startswith("verified ")
    output = capfd.readouterr()
    assert "Uploading tiny_lib-1.0.0-py3-none-any.whl" in output.out
    assert_no_secrets(*lines, output.out, output.err)
    assert PASSWORD not in repr(target)


@pytest.mark.e2e
def test_refuses_a_version_the_index_holds_with_other_files(
    start_index: Callable[..., Index], builds: dict[str, Distributions]
) -> None:
    index = start_index()
    publish(
        config_for(index.url),
        builds["v1"],
        repository="private",
        force=False,
        progress=print,
        env=ENV,
    )
    before = index.stored()

    with pytest.raises(PublishError) as caught:
        publish(
            config_for(index.url),
            builds["other"],
            repository="private",
            force=False,
            progress=print,
            env=ENV,
        )

    assert caught.value.message == (
        f"tiny-lib 1.0.0 is already on private ({index.url}) with other files: "
        "tiny_lib-1.0.0-py3-none-any.whl, tiny_lib-1.0.0.tar.gz"
    )
    assert caught.value.hint is not None and "--force" in caught.value.hint
    assert index.stored() == before == sha256s(builds["v1"])


@pytest.mark.e2e
def test_republishing_the_same_files_uploads_nothing(
    start_index: Callable[..., Index], builds: dict[str, Distributions]
) -> None:
    index = start_index()
    config = config_for(index.url)
    publish(config, builds["v1"], repository=None, force=False, progress=print, env=ENV)
    lines: list[str] = []
    assert (
        publish(config, builds["v1"], repository=None, force=False, progress=lines.append, env=ENV)
        == []
    )
    assert "skipping tiny_lib-1.0.0.tar.gz: already on the index with the same sha256" in lines
    # A new version next to it is no conflict.
    assert (
        len(publish(config, builds["v11"], repository=None, force=False, progress=print, env=ENV))
        == 2
    )
    assert len(index.stored()) == 4


@pytest.mark.e2e
def test_force_replaces_files_when_the_index_allows_it(
    start_index: Callable[..., Index], builds: dict[str, Distributions]
) -> None:
    index = start_index(overwrite=True)
    config = config_for(index.url)
    publish(config, builds["v1"], repository=None, force=False, progress=print, env=ENV)

    uploaded = publish(
        config, builds["other"], repository=None, force=True, progress=print, env=ENV
    )

    assert sorted(uploaded) == sorted(sha256s(builds["other"]))
    assert index.stored() == sha256s(builds["other"])


@pytest.mark.e2e
def test_force_refused_by_an_index_without_overwrite(
    start_index: Callable[..., Index],
    builds: dict[str, Distributions],
    capfd: pytest.CaptureFixture[str],
) -> None:
    index = start_index()
    config = config_for(index.url)
    publish(config, builds["v1"], repository=None, force=False, progress=print, env=ENV)

    with pytest.raises(PublishError) as caught:
        publish(config, builds["other"], repository=None, force=True, progress=print, env=ENV)

    assert caught.value.message.startswith(f"private ({index.url}) rejected the upload (409: ")
    assert caught.value.hint is not None and "--overwrite" in caught.value.hint
    assert index.stored() == sha256s(builds["v1"])
    output = capfd.readouterr()
    assert_no_secrets(caught.value, output.out, output.err)


@pytest.mark.e2e
def test_credentials_from_pypirc(
    start_index: Callable[..., Index],
    builds: dict[str, Distributions],
    isolated_home: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    index = start_index()
    (isolated_home / ".pypirc").write_text(
        "[distutils]\nindex-servers =\n    internal\n\n"
        f"[internal]\nrepository = {index.url}legacy/\nusername = {USER}\npassword = {PASSWORD}\n"
    )
    no_config = Config(root=Path())
    lines: list[str] = []

    uploaded = publish(
        no_config, builds["v1"], repository="internal", force=False, progress=lines.append
    )

    assert len(uploaded) == 2
    assert index.stored() == sha256s(builds["v1"])
    target = resolve_target(no_config, "internal")
    assert (target.name, target.upload_url, target.simple_url) == (
        "internal",
        f"{index.url}legacy/",
        f"{index.url}simple/",
    )
    # The same section serves a configured repository pointing at the same index.
    assert resolve_target(config_for(f"{index.url}legacy"), "private").password == PASSWORD
    output = capfd.readouterr()
    assert_no_secrets(*lines, output.out, output.err)


@pytest.mark.e2e
def test_wrong_password_is_a_clear_error(
    start_index: Callable[..., Index],
    builds: dict[str, Distributions],
    capfd: pytest.CaptureFixture[str],
) -> None:
    index = start_index()
    wrong = "wrong-Pw-0b5cure"
    env = {"RELEASEKIT_USERNAME": USER, "RELEASEKIT_PASSWORD": wrong}
    lines: list[str] = []

    with pytest.raises(PublishError) as caught:
        publish(
            config_for(index.url),
            builds["v1"],
            repository=None,
            force=False,
            progress=lines.append,
            env=env,
        )

    assert caught.value.message.startswith(f"private ({index.url}) rejected the upload (401")
    assert caught.value.hint is not None and "RELEASEKIT_PASSWORD" in caught.value.hint
    assert index.stored() == {}
    output = capfd.readouterr()
    for text in (caught.value, *lines, output.out, output.err):
        assert wrong not in str(text)
        assert USER not in str(text)


@pytest.mark.e2e
def test_listing_that_needs_credentials_says_which_to_set(
    start_index: Callable[..., Index], builds: dict[str, Distributions]
) -> None:
    index = start_index(authenticate="update,download,list")
    with pytest.raises(PublishError) as caught:
        publish(
            config_for(index.url),
            builds["v1"],
            repository=None,
            force=False,
            progress=print,
            env={},
        )
    assert caught.value.message.startswith(f"private ({index.url}) refused to list tiny-lib (401")
    assert caught.value.hint is not None and "RELEASEKIT_USERNAME" in caught.value.hint
    # With credentials the protected index is listed and read back.
    assert (
        len(
            publish(
                config_for(index.url),
                builds["v1"],
                repository=None,
                force=False,
                progress=print,
                env=ENV,
            )
        )
        == 2
    )


def test_index_down_is_a_publish_error_with_a_hint(builds: dict[str, Distributions]) -> None:
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(PublishError) as caught:
            publish(
                config_for(url), builds["v1"], repository=None, force=False, progress=print, env=ENV
            )
        assert (
            caught.value.message == f"cannot reach the index at private ({url}): connection refused"
        )
        assert caught.value.hint is not None and "pypi-server-start" in caught.value.hint
        # The upload step on its own (twine's path) maps the same way.
        target = resolve_target(config_for(url), None, ENV)
        with pytest.raises(PublishError, match="cannot reach the index"):
            upload(target, builds["v1"], progress=print)


@pytest.mark.e2e
def test_rerun_after_a_partial_upload_uploads_only_the_rest(
    start_index: Callable[..., Index], builds: dict[str, Distributions]
) -> None:
    index = start_index()
    dists = builds["v1"]
    target = resolve_target(config_for(index.url), None, ENV)
    upload(target, dists, progress=print, files=[dists.wheel])  # the connection "dropped" here
    assert list(index.stored()) == [dists.wheel.name]

    uploaded = publish(
        config_for(index.url), dists, repository=None, force=False, progress=print, env=ENV
    )

    assert uploaded == [dists.sdist.name]
    assert index.stored() == sha256s(dists)


@pytest.mark.e2e
def test_verify_catches_files_missing_or_different_on_the_index(
    start_index: Callable[..., Index], builds: dict[str, Distributions]
) -> None:
    index = start_index()
    target = resolve_target(config_for(index.url), None, ENV)
    with pytest.raises(
        PublishError, match=r"does not list tiny_lib-1\.0\.0\.tar\.gz after the upload"
    ):
        verify(target, builds["v1"])
    upload(target, builds["v1"], progress=print)
    verify(target, builds["v1"])
    with pytest.raises(
        PublishError, match=r"lists tiny_lib-1\.0\.0\.tar\.gz with sha256 [0-9a-f]{64}, but"
    ):
        verify(target, builds["other"])


@dataclass
class StubIndex:
    """A stdlib HTTP server: a PEP 503 HTML-only index page, and uploads answered by a redirect."""

    url: str
    requests: list[tuple[str, str, str]] = field(default_factory=list)


@pytest.fixture
def stub_index(builds: dict[str, Distributions]) -> Iterator[StubIndex]:
    dists = builds["v1"]
    links = "".join(
        f'<a href="../../files/{p.name}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">{p.name}</a>'
        for p in (*dists.files, *builds["v11"].files)
    )
    page = f"<!DOCTYPE html><html><body>{links}</body></html>".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stub.requests.append(("GET", self.path, self.headers.get("Accept", "")))
            found = self.path == "/simple/tiny-lib/"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page) if found else 0))
            self.end_headers()
            self.wfile.write(page if found else b"")

        def do_POST(self) -> None:
            stub.requests.append(("POST", self.path, ""))
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(301)
            self.send_header("Location", f"{stub.url}elsewhere/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub = StubIndex(f"http://127.0.0.1:{server.server_address[1]}/")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()
    thread.join()


def test_html_only_index_is_read(stub_index: StubIndex, builds: dict[str, Distributions]) -> None:
    target = resolve_target(config_for(stub_index.url), None, {})
    assert existing_files(target, "tiny-lib", "1.0.0") == sha256s(builds["v1"])
    assert stub_index.requests[0][2].startswith("application/vnd.pypi.simple.v1+json")


def test_redirected_upload_is_refused_with_a_hint(
    stub_index: StubIndex, builds: dict[str, Distributions]
) -> None:
    target = resolve_target(config_for(stub_index.url), None, ENV)
    with pytest.raises(PublishError) as caught:
        upload(target, builds["v1"], progress=print)
    assert caught.value.message.startswith(f"the upload to {stub_index.url} was redirected")
    assert caught.value.hint is not None and "final upload URL" in caught.value.hint
    assert [r[0] for r in stub_index.requests] == ["POST"]
    assert_no_secrets(caught.value)


# resolve_target: no server needed.


@pytest.mark.parametrize(
    ("url", "upload_url", "simple_url"),
    [
        ("https://pypi.example/", "https://pypi.example/", "https://pypi.example/simple/"),
        ("https://pypi.example", "https://pypi.example/", "https://pypi.example/simple/"),
        ("https://h.example/legacy/", "https://h.example/legacy/", "https://h.example/simple/"),
        (
            "https://h.example/pypi/legacy",
            "https://h.example/pypi/legacy/",
            "https://h.example/pypi/simple/",
        ),
        ("https://h.example/simple/", "https://h.example/", "https://h.example/simple/"),
        (
            "https://upload.pypi.org/legacy/",
            "https://upload.pypi.org/legacy/",
            "https://pypi.org/simple/",
        ),
    ],
)
def test_upload_and_simple_urls(url: str, upload_url: str, simple_url: str) -> None:
    target = resolve_target(Config(root=Path()), url, {})
    assert (target.upload_url, target.simple_url) == (upload_url, simple_url)
    assert target.name is None


def test_credentials_first_found_wins(isolated_home: Path) -> None:
    (isolated_home / ".pypirc").write_text(
        "[private]\nrepository = https://h.example/\nusername = from-pypirc\npassword = pypirc-pw\n"
    )
    config = config_for("https://h.example/", username="from-config")
    both = {
        "RELEASEKIT_USERNAME": "rk-user",
        "RELEASEKIT_PASSWORD": "rk-pw",
        "TWINE_USERNAME": "twine-user",
        "TWINE_PASSWORD": "twine-pw",
    }
    assert _creds(resolve_target(config, None, both)) == ("rk-user", "rk-pw")
    twine_only = {k: v for k, v in both.items() if k.startswith("TWINE")}
    assert _creds(resolve_target(config, None, twine_only)) == ("twine-user", "twine-pw")
    assert _creds(resolve_target(config, None, {})) == ("from-pypirc", "pypirc-pw")
    (isolated_home / ".pypirc").unlink()
    assert _creds(resolve_target(config, None, {"TWINE_PASSWORD": "tok"})) == ("from-config", "tok")
    plain = config_for("https://h.example/")
    assert _creds(resolve_target(plain, None, {"TWINE_PASSWORD": "pypi-tok"})) == (
        "__token__",
        "pypi-tok",
    )
    assert _creds(resolve_target(plain, None, {})) == (None, None)  # null keyring: nothing


def _creds(target: Target) -> tuple[str | None, str | None]:
    return target.username, target.password


def test_repository_from_environment_and_url_user_info() -> None:
    empty = Config(root=Path())
    target = resolve_target(empty, None, {"RELEASEKIT_REPOSITORY_URL": "https://a.example/"})
    assert target.upload_url == "https://a.example/"
    target = resolve_target(empty, None, {"TWINE_REPOSITORY_URL": "https://b.example/legacy/"})
    assert target.simple_url == "https://b.example/simple/"
    target = resolve_target(empty, "https://bob:pa%40ss@c.example/simple/", {})
    assert (target.upload_url, target.username, target.password) == (
        "https://c.example/",
        "bob",
        "pa@ss",
    )


def test_target_never_shows_its_password() -> None:
    target = Target("private", "https://h.example/", "https://h.example/simple/", USER, PASSWORD)
    assert PASSWORD not in repr(target) and PASSWORD not in str(target)
    assert "password=<set>" in repr(target)
    assert target.scrub(f"x {PASSWORD} y {USER} z Zq8-s3cret%2541-Pw") == "x *** y *** z ***"


def test_no_repository_and_unknown_names_are_refused(isolated_home: Path) -> None:
    with pytest.raises(PublishError, match="no repository to publish to") as caught:
        resolve_target(Config(root=Path()), None, {})
    assert caught.value.hint is not None and "--repository" in caught.value.hint
    (isolated_home / ".pypirc").write_text(
        "[distutils]\nindex-servers = corp\n[corp]\nrepository = https://corp.example/\n"
    )
    with pytest.raises(PublishError, match="unknown repository 'privat'") as caught:
        resolve_target(config_for("https://h.example/"), "privat", {})
    assert caught.value.hint == "known repositories: corp, private"
    with pytest.raises(PublishError, match="is not an http"):
        resolve_target(Config(root=Path()), "ftp://files.example/", {})


def test_malformed_pypirc_is_refused_without_echoing_it(isolated_home: Path) -> None:
    (isolated_home / ".pypirc").write_text(f"password = {PASSWORD}\n[private\n")
    with pytest.raises(PublishError, match=r"\.pypirc is malformed") as caught:
        resolve_target(Config(root=Path()), "private", {})
    assert_no_secrets(caught.value)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring holding one password, as a desktop keyring would."""

    priority = 1
    entry = ("https://h.example/legacy/", "kr-user", "kr-pw")

    def get_password(self, service: str, username: str) -> str | None:
        return self.entry[2] if (service, username) == self.entry[:2] else None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("read-only")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.PasswordDeleteError("read-only")


def test_password_from_keyring() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())  # type: ignore[no-untyped-call]
    try:
        config = config_for("https://h.example/legacy/", username="kr-user")
        assert _creds(resolve_target(config, None, {})) == ("kr-user", "kr-pw")
        assert _creds(resolve_target(config, None, {"TWINE_PASSWORD": "env-pw"})) == (
            "kr-user",
            "env-pw",
        )
        other_user = {"RELEASEKIT_USERNAME": "someone-else"}
        assert _creds(resolve_target(config, None, other_user)) == ("someone-else", None)
    finally:
        keyring.set_keyring(previous)
