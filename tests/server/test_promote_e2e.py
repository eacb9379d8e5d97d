"""`releasekit promote` end to end: the real CLI on the stores and over HTTP, real twine uploads,
real pip installs with --require-hashes from the promoted index."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from releasekit.server.tokens import ACTIONS, create_token
from tests.adversarial.attestation_helpers import attest
from tests.server.conftest import (
    Users,
    launch_server,
    make_sdist,
    make_wheel,
    snapshot,
    stop_server,
)
from tests.server.test_e2e import run

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
JSON = "application/vnd.pypi.simple.v1+json"
# A token that may promote: its own `promote` scope once branch `indexes` (index-scoped tokens)
# has landed; until then the stand-in in acl.py maps promoting onto `update`.
PROMOTE_SCOPE = ["promote"] if "promote" in ACTIONS else ["update"]
WHEEL = "alpha-1.0-py3-none-any.whl"
SDIST = "alpha-1.0.tar.gz"


def releasekit(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "releasekit", *args, env=env)


def _dists(tmp_path: Path) -> list[Path]:
    directory = tmp_path / "dists"
    directory.mkdir(exist_ok=True)
    return [make_wheel(directory, "alpha", "1.0"), make_sdist(directory, "alpha", "1.0")]


def _create_indexes(packages: Path) -> None:
    for name in ("staging", "prod"):
        made = releasekit("server", "index", "create", name, "-D", packages)
        assert made.returncode == 0, made.stderr


def test_the_command_on_the_stores(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    _create_indexes(packages)
    for dist in _dists(tmp_path):
        (packages / ".indexes/staging" / dist.name).write_bytes(dist.read_bytes())
    command = ("promote", "alpha", "1.0", "--from", "staging", "--to", "prod", "-D", packages)

    first = releasekit(*command)

    assert first.returncode == 0, first.stderr
    rows = [line.split("  ") for line in first.stdout.splitlines()]
    assert [(name, action) for _, name, action in rows] == [(WHEEL, "copied"), (SDIST, "copied")]
    for sha256, name, _ in rows:
        assert sha256 == _sha256(packages / ".indexes/prod" / name)
    assert f"[1/2] copied {WHEEL}" in first.stderr
    assert "2 copied, 0 already there" in first.stderr
    again = releasekit(*command, "--json")
    assert again.returncode == 0, again.stderr
    assert [f["action"] for f in json.loads(again.stdout)["files"]] == ["present", "present"]

    (packages / ".indexes/prod" / SDIST).write_bytes(b"other bytes")
    (packages / ".indexes/prod" / WHEEL).unlink()
    before = snapshot(packages)
    refused = releasekit(*command)
    assert refused.returncode == 1
    assert f"error: the target index has other bytes under the same name: {SDIST}" in (
        refused.stderr
    )
    assert "hint: files are immutable" in refused.stderr
    assert snapshot(packages) == before
    mixed = releasekit(*command, "--url", "http://127.0.0.1:9/")
    assert mixed.returncode == 1
    assert "--url talks to a running index" in mixed.stderr


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _twine(url: str, user: tuple[str, str], *files: str | Path) -> None:
    sent = run(
        BIN / "twine", "upload", "--non-interactive", "--disable-progress-bar",
        "--repository-url", url, "-u", user[0], "-p", user[1], *files,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr


def _served_hashes(simple: str, auth: tuple[str, str] | None = None) -> dict[str, str]:
    page = httpx2.get(f"{simple}alpha/", headers={"accept": JSON}, auth=auth)
    assert page.status_code == 200, page.text
    return {f["filename"]: f["hashes"]["sha256"] for f in page.json()["files"]}


def _install_with_hashes(simple: str, hashes: dict[str, str], tmp_path: Path) -> None:
    """pip download and pip install alpha==1.0 from `simple`, pinned to `hashes`."""
    pins = " ".join(f"--hash=sha256:{h}" for h in sorted(hashes.values()))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"alpha==1.0 {pins}\n", encoding="utf-8")
    pip = (sys.executable, "-m", "pip")
    common = ("--index-url", simple, "--require-hashes", "--no-deps", "-r", requirements)
    downloaded = run(*pip, "download", "-d", tmp_path / "downloaded", *common)
    assert downloaded.returncode == 0, downloaded.stdout + downloaded.stderr
    installed = run(*pip, "install", "--target", tmp_path / "site", *common)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (tmp_path / "site/alpha/__init__.py").read_text().startswith('__version__ = "1.0"')


def _promoter(packages: Path) -> str:
    tokens = packages / ".releasekit/tokens.json"
    tokens.parent.mkdir(parents=True, exist_ok=True)
    return create_token(tokens, owner="ci", projects=["alpha"], actions=PROMOTE_SCOPE).value


def test_twine_to_the_default_index_promote_over_http_then_pip_with_its_hashes(
    tmp_path: Path, users: Users
) -> None:
    """Runs today: the default index is the staging side; prod is served as its own directory."""
    packages = tmp_path / "packages"
    _create_indexes(packages)
    token = _promoter(packages)
    auth = ("-P", str(users.passwords), "-a", "update")
    process, url = launch_server(packages, tmp_path / "staging.log", *auth)
    try:
        wheel, sdist = _dists(tmp_path)
        _twine(f"{url}/legacy/", users.credentials["ci"], "--attestations", wheel, attest(wheel))
        _twine(f"{url}/legacy/", users.credentials["ci"], sdist)
        staging_hashes = _served_hashes(f"{url}/simple/")
        provenance = httpx2.get(f"{url}/integrity/alpha/1.0/{WHEEL}/provenance").json()
        promote = ("promote", "alpha", "1.0", "--from", "root", "--to", "prod", "--url", url)
        denied = releasekit(
            *promote, env={"RELEASEKIT_PROMOTE_TOKEN": "rk_000000000000_" + "a" * 32}
        )
        assert denied.returncode == 1
        assert "the index refused the promotion (401)" in denied.stderr
        assert not (packages / ".indexes/prod" / WHEEL).exists()
        done = releasekit(*promote, env={"RELEASEKIT_PROMOTE_TOKEN": token})
        assert done.returncode == 0, done.stderr
        assert f"[1/2] copied {WHEEL}" in done.stderr
        assert {line.split("  ")[1]: line.split("  ")[0] for line in done.stdout.splitlines()} == (
            staging_hashes
        )
    finally:
        stop_server(process)
    process, prod_url = launch_server(packages / ".indexes/prod", tmp_path / "prod.log", "-a", ".")
    try:
        assert _served_hashes(f"{prod_url}/simple/") == staging_hashes
        page = httpx2.get(f"{prod_url}/simple/alpha/", headers={"accept": JSON}).json()
        links = {f["filename"]: f["provenance"] for f in page["files"]}
        assert links == {WHEEL: f"../../integrity/alpha/1.0/{WHEEL}/provenance", SDIST: None}
        kept = httpx2.get(f"{prod_url}/integrity/alpha/1.0/{WHEEL}/provenance").json()
        assert kept == provenance  # the publisher and attestations as first uploaded
        _install_with_hashes(f"{prod_url}/simple/", staging_hashes, tmp_path)
    finally:
        stop_server(process)


def test_twine_and_uv_to_staging_promote_to_prod_pip_and_uv_from_prod(
    tmp_path: Path, users: Users
) -> None:
    """Issue 14's story: twine and `uv publish` upload to staging, `promote` (over HTTP, with a
    promote-scoped token) moves the release to prod, pip and uv install it from prod with
    --require-hashes pinned to staging's hashes; a read-only user of prod cannot read staging."""
    packages = tmp_path / "packages"
    _create_indexes(packages)
    grants = (
        ("prod", "reader", "read"),
        ("prod", "ci", "promote"),
        ("staging", "ci", "read,upload,promote"),
    )
    for index, principal, actions in grants:
        granted = releasekit("server", "index", "acl", index, principal, actions, "-D", packages)
        assert granted.returncode == 0, granted.stderr
    token = _promoter(packages)
    process, url = launch_server(
        packages, tmp_path / "server.log", "-P", str(users.passwords), "-a", "update,download,list"
    )
    try:
        wheel, sdist = _dists(tmp_path)
        _twine(f"{url}/staging/legacy/", users.credentials["ci"], wheel)
        ci = users.credentials["ci"]
        published = run(
            BIN / "uv", "publish", "--publish-url", f"{url}/staging/legacy/",
            "--username", ci[0], "--password", ci[1], sdist,
            env={"UV_CACHE_DIR": str(tmp_path / "uv-cache")},
        )  # fmt: skip
        assert published.returncode == 0, published.stdout + published.stderr
        staging_hashes = _served_hashes(f"{url}/staging/simple/", ci)
        assert staging_hashes == {WHEEL: _sha256(wheel), SDIST: _sha256(sdist)}
        done = releasekit(
            "promote", "alpha", "1.0", "--from", "staging", "--to", "prod", "--url", url,
            env={"RELEASEKIT_PROMOTE_TOKEN": token},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        again = releasekit(
            "promote", "alpha", "1.0", "--from", "staging", "--to", "prod", "--url", url,
            env={"RELEASEKIT_PROMOTE_TOKEN": token},
        )  # fmt: skip
        assert again.returncode == 0 and again.stdout.count("present") == 2, again.stdout
        reader = users.credentials["reader"]
        assert _served_hashes(f"{url}/prod/simple/", reader) == staging_hashes
        for path in ("simple/", "simple/alpha/", f"packages/{WHEEL}"):
            assert httpx2.get(f"{url}/staging/{path}", auth=reader).status_code == 403
        prod = f"http://{reader[0]}:{reader[1]}@{url.removeprefix('http://')}/prod/simple/"
        _install_with_hashes(prod, staging_hashes, tmp_path)
        _uv_install_with_hashes(prod, staging_hashes, tmp_path)
    finally:
        stop_server(process)


def _uv_install_with_hashes(simple: str, hashes: dict[str, str], tmp_path: Path) -> None:
    pins = " ".join(f"--hash=sha256:{h}" for h in sorted(hashes.values()))
    requirements = tmp_path / "uv-requirements.txt"
    requirements.write_text(f"alpha==1.0 {pins}\n", encoding="utf-8")
    env = {"UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    venv = tmp_path / "uv-env"
    assert run(BIN / "uv", "venv", "--quiet", venv, env=env).returncode == 0
    installed = run(
        BIN / "uv", "pip", "install", "--python", venv / "bin" / "python", "--index-url", simple,
        "--require-hashes", "--no-deps", "-r", requirements, env=env,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    version = run(venv / "bin" / "python", "-c", "import alpha; print(alpha.__version__)")
    assert version.stdout.strip() == "1.0"
