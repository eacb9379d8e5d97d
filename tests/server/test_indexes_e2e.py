"""Named indexes end to end: real `releasekit server run` processes on 127.0.0.1 (port 0), real
twine, `uv publish`, pip and uv against `/staging/`, indexes created while the server runs
(one worker and two), and a named index on S3 (moto in server mode)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from releasekit.server.indexes import REGISTRY_NAME, IndexConfig, create_index, set_acl
from releasekit.server.localstore import LocalStorage
from tests.server.conftest import Users, launch_server, make_wheel, stop_server, wait_for
from tests.server.moto_s3 import MotoS3
from tests.server.test_e2e import BIN, JSON, run
from tests.test_publish import free_port

pytestmark = pytest.mark.e2e


def releasekit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as an admin runs it beside the server."""
    return subprocess.run(
        [sys.executable, "-m", "releasekit", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def upload(url: str, path: Path, auth: tuple[str, str] | None = None) -> httpx2.Response:
    return httpx2.post(
        url,
        data={":action": "file_upload", "protocol_version": "1"},
        files={"content": (path.name, path.read_bytes(), "application/octet-stream")},
        auth=auth,
    )


def files(url: str) -> list[str]:
    """The files a project page lists; none while it is a 404 (not seen by this worker yet)."""
    response = httpx2.get(url, headers={"accept": JSON})
    if response.status_code == 404:
        return []
    return sorted(f["filename"] for f in response.json()["files"])


def listed(url: str, auth: tuple[str, str] | None = None) -> list[str]:
    response = httpx2.get(url, headers={"accept": JSON}, auth=auth)
    assert response.status_code == 200, response.text
    return sorted(f["filename"] for f in response.json()["files"])


@pytest.fixture
def served(tmp_path: Path, users: Users) -> Iterator[tuple[str, Path]]:
    """prod (reader reads; ci reads and uploads) and staging (inherits prod; ci reads and
    uploads); every action needs credentials (-a update,download,list)."""
    packages = tmp_path / "packages"
    root = LocalStorage(packages)
    root.prepare()
    create_index(root, IndexConfig("prod"))
    create_index(root, IndexConfig("staging", bases=("prod",)))
    set_acl(root, "prod", "reader", frozenset({"read"}))
    set_acl(root, "prod", "ci", frozenset({"read", "upload"}))
    set_acl(root, "staging", "ci", frozenset({"read", "upload"}))
    process, url = launch_server(
        packages, tmp_path / "server.log", "-P", str(users.passwords), "-a", "update,download,list"
    )
    yield url, packages
    stop_server(process)


def test_publish_to_staging_and_install_through_it(
    served: tuple[str, Path], users: Users, tmp_path: Path
) -> None:
    url, _ = served
    ci = users.credentials["ci"]
    built = tmp_path / "built"
    built.mkdir()
    for version in ("1.0", "1.1"):
        wheel = make_wheel(built, "lib-core", version)
        assert upload(f"{url}/prod/legacy/", wheel, ci).status_code == 200
    app = make_wheel(built, "app-one", "1.0", requires=("lib-core>=1.1",))
    tool = make_wheel(built, "app-tool", "0.1")
    twine = run(
        BIN / "twine", "upload", "--non-interactive", "--disable-progress-bar",
        "--repository-url", f"{url}/staging/legacy/", "-u", ci[0], "-p", ci[1], app,
    )  # fmt: skip
    assert twine.returncode == 0, twine.stdout + twine.stderr
    uv_env = {"UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    published = run(
        BIN / "uv", "publish", "--publish-url", f"{url}/staging/legacy/",
        "--username", ci[0], "--password", ci[1], tool, env=uv_env,
    )  # fmt: skip
    assert published.returncode == 0, published.stdout + published.stderr
    # Uploads land in staging only; staging's root page lists its bases' names too.
    assert listed(f"{url}/staging/simple/app-one/", ci) == [app.name]
    assert httpx2.get(f"{url}/simple/app-one/", auth=ci).status_code == 404
    names = httpx2.get(f"{url}/staging/simple/", headers={"accept": JSON}, auth=ci).json()
    assert [p["name"] for p in names["projects"]] == ["app-one", "app-tool", "lib-core"]

    # pip and uv install app-one from staging; lib-core comes from prod through staging's URLs.
    simple = f"http://{ci[0]}:{ci[1]}@{url.removeprefix('http://')}/staging/simple/"
    target = tmp_path / "pip-target"
    pip = run(
        sys.executable, "-m", "pip", "install", "--index-url", simple, "--target", target,
        "app-one",
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (target / "lib_core" / "__init__.py").read_text().startswith('__version__ = "1.1"')
    venv = tmp_path / "uv-env"
    assert run(BIN / "uv", "venv", "--quiet", venv, env=uv_env).returncode == 0
    uv = run(
        BIN / "uv", "pip", "install", "--python", venv / "bin" / "python",
        "--index-url", simple, "app-one", env=uv_env,
    )  # fmt: skip
    assert uv.returncode == 0, uv.stdout + uv.stderr
    check = run(venv / "bin" / "python", "-c", "import lib_core; print(lib_core.__version__)")
    assert check.stdout.strip() == "1.1"

    # The same bytes as prod serves, through staging's own URL.
    page = httpx2.get(f"{url}/staging/simple/lib-core/", headers={"accept": JSON}, auth=ci)
    urls = [f["url"] for f in page.json()["files"]]
    assert urls == [f"../../packages/lib_core-{v}-py3-none-any.whl" for v in ("1.0", "1.1")]
    body = httpx2.get(f"{url}/staging/packages/lib_core-1.1-py3-none-any.whl", auth=ci).content
    prod = (built / "lib_core-1.1-py3-none-any.whl").read_bytes()
    assert hashlib.sha256(body).digest() == hashlib.sha256(prod).digest()


def test_a_name_in_staging_never_falls_through_to_prod(
    served: tuple[str, Path], users: Users, tmp_path: Path
) -> None:
    url, _ = served
    ci = users.credentials["ci"]
    for version, index in (("1.0", "prod"), ("1.1", "prod"), ("2.0.dev1", "staging")):
        wheel = make_wheel(tmp_path, "lib-core", version)
        assert upload(f"{url}/{index}/legacy/", wheel, ci).status_code == 200
    assert listed(f"{url}/staging/simple/lib-core/", ci) == ["lib_core-2.0.dev1-py3-none-any.whl"]
    shadowed = httpx2.get(f"{url}/staging/packages/lib_core-1.0-py3-none-any.whl", auth=ci)
    assert shadowed.status_code == 404
    assert listed(f"{url}/prod/simple/lib-core/", ci) == [
        "lib_core-1.0-py3-none-any.whl",
        "lib_core-1.1-py3-none-any.whl",
    ]


def test_a_reader_of_prod_cannot_read_staging(
    served: tuple[str, Path], users: Users, tmp_path: Path
) -> None:
    url, packages = served
    wheel = make_wheel(tmp_path, "lib-core", "1.0")
    assert upload(f"{url}/prod/legacy/", wheel, users.credentials["ci"]).status_code == 200
    reader = users.credentials["reader"]
    assert listed(f"{url}/prod/simple/lib-core/", reader) == [wheel.name]
    for path in ("simple/", "simple/lib-core/", f"packages/{wheel.name}"):
        refused = httpx2.get(f"{url}/staging/{path}", auth=reader)
        assert refused.status_code == 403, path
        assert "may not" in refused.json()["detail"] and "'staging'" in refused.json()["detail"]
        anonymous = httpx2.get(f"{url}/staging/{path}")
        assert anonymous.status_code == 401, path
        assert anonymous.headers["www-authenticate"].startswith("Basic")
    before = sorted(p.name for p in (packages / ".indexes" / "staging").iterdir())
    assert upload(f"{url}/staging/legacy/", wheel, reader).status_code == 403
    assert sorted(p.name for p in (packages / ".indexes" / "staging").iterdir()) == before


@pytest.mark.parametrize("workers", ["1", "2"])
def test_indexes_made_while_running_are_served_within_a_poll(tmp_path: Path, workers: str) -> None:
    packages = tmp_path / "packages"
    packages.mkdir()
    log = tmp_path / "server.log"
    # uvicorn's workers share a socket bound before they start: it needs a port number.
    port = ["-p", str(free_port())] if workers != "1" else []
    process, url = launch_server(packages, log, "-a", ".", "--workers", workers, *port)
    try:
        assert httpx2.get(f"{url}/qa/simple/").status_code == 404
        created = releasekit("server", "index", "create", "qa", "-D", str(packages))
        assert created.returncode == 0, created.stderr
        # Each worker polls the registry and says so; then every one of them serves qa.
        wait_for(lambda: log.read_text().count("serving index qa at /qa/simple/") == int(workers))
        assert all(httpx2.get(f"{url}/qa/simple/").status_code == 200 for _ in "1234")
        wheel = make_wheel(tmp_path, "alpha", "1.0")
        assert upload(f"{url}/qa/legacy/", wheel).status_code == 200
        # Stored through one worker, listed by every one within a poll.
        wait_for(lambda: all(files(f"{url}/qa/simple/alpha/") == [wheel.name] for _ in "1234"))
        assert httpx2.get(f"{url}/simple/alpha/").status_code == 404

        # A registry broken by hand: the last good one stays in force, and the log says so.
        registry = packages / ".releasekit" / REGISTRY_NAME
        good = registry.read_bytes()
        registry.write_bytes(b'{"version": 1, "indexes": [{"name": "../etc"}]}')
        wait_for(
            lambda: log.read_text().count("is invalid, keeping the last good one") == int(workers)
        )
        assert all(listed(f"{url}/qa/simple/alpha/") == [wheel.name] for _ in "1234")
        registry.write_bytes(good)

        removed = releasekit(
            "server", "index", "remove", "qa", "--delete-files", "-D", str(packages)
        )
        assert removed.returncode == 0, removed.stderr
        wait_for(lambda: log.read_text().count("index qa was removed") == int(workers))
        gone = httpx2.get(f"{url}/qa/simple/").json()
        assert gone["detail"] == "there is no index 'qa'; known indexes: root"
    finally:
        stop_server(process)


def test_a_named_index_on_s3(tmp_path: Path, moto_s3: MotoS3) -> None:
    storage = f"s3://{moto_s3.create_bucket()}/pkgs"
    env = moto_s3.env()
    process, url = launch_server(
        tmp_path / "local", tmp_path / "server.log", "-a", ".", "--storage", storage, env=env
    )
    try:
        created = releasekit("server", "index", "create", "staging", "--storage", storage, env=env)
        assert created.returncode == 0, created.stderr
        wait_for(lambda: httpx2.get(f"{url}/staging/simple/").status_code == 200)
        wheel = make_wheel(tmp_path, "alpha", "1.0", payload=b"# s3\n")
        assert upload(f"{url}/staging/legacy/", wheel).status_code == 200
        assert listed(f"{url}/staging/simple/alpha/") == [wheel.name]
        got = httpx2.get(f"{url}/staging/packages/{wheel.name}")
        assert got.content == wheel.read_bytes()
        ranged = httpx2.get(f"{url}/staging/packages/{wheel.name}", headers={"range": "bytes=0-3"})
        assert (ranged.status_code, ranged.content) == (206, b"PK\x03\x04")
        assert httpx2.get(f"{url}/simple/alpha/").status_code == 404
        listing = releasekit("server", "index", "list", "--storage", storage, env=env)
        assert "staging\tbases=-\tacl=-" in listing.stdout
    finally:
        stop_server(process)
