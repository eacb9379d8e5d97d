"""What the deployment profiles rely on: X-Accel-Redirect, the auth subrequest, /packages/,
the metrics token, bounded route labels, file modes, and the safe auth default."""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from releasekit.cli import cli
from releasekit.errors import ConfigError
from releasekit.server.settings import check_upload_safety, load_settings
from tests.server.conftest import Dists, Users, snapshot, upload_form, wait_for

ACCEL = "/_releasekit_files/"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def stored_client(
    make_client: Callable[..., TestClient], dists: Dists, packages: Path, **settings: object
) -> TestClient:
    for name in ("alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz"):
        shutil.copy(dists.path(name), packages / name)
    client = make_client(**settings)
    wait_for(lambda: client.get("/ready").json()["indexing"]["done"] == 2)
    return client


def test_accel_redirect_hands_the_file_to_nginx_after_auth_and_counting(
    make_client: Callable[..., TestClient], dists: Dists, packages: Path, users: Users
) -> None:
    client = stored_client(
        make_client,
        dists,
        packages,
        accel_redirect="_releasekit_files",
        authenticate="update,download,list",
        passwords=users.passwords,
    )
    wheel = "alpha-1.0-py3-none-any.whl"
    refused = client.get(f"/packages/{wheel}")
    assert refused.status_code == 401 and "x-accel-redirect" not in refused.headers
    reader = basic(*users.credentials["reader"])
    response = client.get(f"/packages/{wheel}", headers=reader)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["x-accel-redirect"] == ACCEL + wheel
    assert response.headers["content-type"] == "application/octet-stream"
    metadata = client.get(f"/packages/{wheel}.metadata", headers=reader)
    # A sidecar is a small state blob: answered from memory, not through nginx.
    assert metadata.status_code == 200 and metadata.content.startswith(b"Metadata-Version")
    assert "x-accel-redirect" not in metadata.headers
    ranged = client.get(f"/packages/{wheel}", headers={**reader, "Range": "bytes=0-3"})
    assert ranged.headers["x-accel-redirect"] == ACCEL + wheel
    assert client.head(f"/packages/{wheel}", headers=reader).status_code == 200
    body = client.get("/metrics", headers=reader).text
    # One whole-file GET: the HEAD, the range read and the metadata are no downloads.
    assert 'releasekit_downloads_total{project="alpha",version="1.0"} 1.0' in body


@pytest.mark.parametrize("value", ["../etc", "/a b/", "/x/../y/", "/%2e%2e/"])
def test_accel_redirect_location_must_be_a_plain_path(packages: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="internal location"):
        load_settings({"packages_dir": packages, "accel_redirect": value}, env={})


def test_auth_subrequest_answers_for_simple_pages_only(
    make_client: Callable[..., TestClient], users: Users
) -> None:
    client = make_client(authenticate="update,download,list", passwords=users.passwords)
    reader = basic(*users.credentials["reader"])
    for uri in ("/simple/", "/simple/alpha/", "/simple/alpha/?format=x"):
        assert client.get("/-/auth", headers={"X-Original-URI": uri}).status_code == 401
        allowed = client.get("/-/auth", headers={"X-Original-URI": uri, **reader})
        assert allowed.status_code == 204, uri
    wrong = client.get("/-/auth", headers={"X-Original-URI": "/simple/", **basic("ci", "nope")})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic")
    # Hostile: no URI, other paths, traversal, non-normalized names: refused, never 2xx or 5xx.
    hostile: tuple[str | None, ...] = (None, "/packages/x.whl", "/simple/../metrics", "")
    for bad in (*hostile, "/simple/Alpha/", "/metrics", "/simple/a/b/", "//simple/"):
        headers = dict(reader)
        if bad is not None:
            headers["X-Original-URI"] = bad
        assert client.get("/-/auth", headers=headers).status_code == 403, bad
    open_index = make_client(authenticate="update", passwords=users.passwords)
    assert open_index.get("/-/auth", headers={"X-Original-URI": "/simple/"}).status_code == 204


def test_find_links_page_lists_files_with_hashes_under_list_rules(
    make_client: Callable[..., TestClient], dists: Dists, packages: Path, users: Users
) -> None:
    client = stored_client(
        make_client,
        dists,
        packages,
        authenticate="update,download,list",
        passwords=users.passwords,
    )
    assert client.get("/packages/").status_code == 401
    reader = basic(*users.credentials["reader"])
    moved = client.get("/packages", headers=reader, follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"] == "/packages/"
    page = client.get("/packages/", headers=reader)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="alpha-1.0-py3-none-any.whl#sha256=' in page.text
    assert 'href="alpha-1.0.tar.gz#sha256=' in page.text
    assert ".releasekit" not in page.text


def test_metrics_token_reads_metrics_when_listing_is_closed(
    make_client: Callable[..., TestClient], users: Users
) -> None:
    client = make_client(
        authenticate="update,download,list", passwords=users.passwords, metrics_token="s3cr3t-tok"
    )
    assert client.get("/metrics").status_code == 401
    for wrong in ("Bearer s3cr3t-to", "Bearer s3cr3t-tokk", "Basic s3cr3t-tok", "s3cr3t-tok"):
        assert client.get("/metrics", headers={"Authorization": wrong}).status_code == 401
    body = client.get("/metrics", headers={"Authorization": "Bearer s3cr3t-tok"}).text
    assert "releasekit_files_stored 0.0" in body and "process_resident_memory_bytes" in body


def test_made_up_paths_share_one_route_label(client: TestClient) -> None:
    for number in range(20):
        assert client.get(f"/made-up-{number}").status_code == 404
    body = client.get("/metrics").text
    assert 'route="other"' in body and "made-up" not in body


def test_files_and_pages_are_world_readable_secrets_are_not(
    make_client: Callable[..., TestClient], dists: Dists, packages: Path, users: Users
) -> None:
    client = make_client(authenticate="update", passwords=users.passwords)
    wheel = dists.path("alpha-1.0-py3-none-any.whl")
    data, files = upload_form(wheel, name="alpha", version="1.0")
    ci = basic(*users.credentials["ci"])
    assert client.post("/", data=data, files=files, headers=ci).status_code == 200
    client.get("/simple/alpha/")
    wait_for(lambda: (packages / ".releasekit" / "catalogue.json").exists())
    for path in packages.rglob("*"):
        if "locks" in path.relative_to(packages).parts:
            continue  # upload lock files: never served, private to the index
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))
    tokens = packages / "tokens.json"
    created = CliRunner().invoke(
        cli,
        ["server", "token", "create", "--owner", "ci", "--tokens-file", str(tokens)],
    )
    assert created.exit_code == 0, created.output
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600  # a secret stays private


def test_password_file_with_anonymous_uploads_is_refused(packages: Path, users: Users) -> None:
    settings = load_settings(
        {"packages_dir": packages, "passwords": users.passwords, "authenticate": "download,list"},
        env={},
    )
    with pytest.raises(ConfigError) as caught:
        check_upload_safety(settings)
    assert "anyone could upload" in str(caught.value)
    assert "--role read" in (caught.value.hint or "")
    before = snapshot(packages)
    command = [sys.executable, "-m", "releasekit", "server", "run", str(packages / "new")]
    command += ["-P", str(users.passwords), "-a", "download,list", "-p", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "--role read" in result.stderr, result.stderr
    assert "--allow-anonymous-uploads" in result.stderr
    assert snapshot(packages) == before and not (packages / "new").exists()  # nothing made
    allowed = load_settings(
        {
            "packages_dir": packages,
            "passwords": users.passwords,
            "authenticate": "download,list",
            "allow_anonymous_uploads": True,
        },
        env={},
    )
    check_upload_safety(allowed)  # said explicitly: allowed
    for authenticate in ("update", "update,download,list", "."):
        fine = load_settings({"packages_dir": packages, "authenticate": authenticate}, env={})
        check_upload_safety(fine)


def test_metrics_token_file_is_read_once_and_checked(packages: Path, tmp_path: Path) -> None:
    token = tmp_path / "metrics-token"
    token.write_text("a" * 24 + "\n")
    settings = load_settings({"packages_dir": packages, "metrics_token_file": token}, env={})
    assert settings.metrics_token == "a" * 24
    token.write_text("short\n")
    with pytest.raises(ConfigError, match="shorter than 16"):
        load_settings({"packages_dir": packages, "metrics_token_file": token}, env={})
    with pytest.raises(ConfigError, match="cannot read the metrics token"):
        load_settings({"packages_dir": packages, "metrics_token_file": tmp_path / "no"}, env={})


def test_health_names_the_instance_that_answers(make_client: Callable[..., TestClient]) -> None:
    plain = make_client().get("/health")
    assert plain.status_code == 200 and "x-releasekit-instance" not in plain.headers
    tagged = make_client(instance_id="abc123").get("/health")
    assert tagged.headers["x-releasekit-instance"] == "abc123"


def test_a_file_stored_by_another_worker_is_served_before_the_next_poll(
    make_client: Callable[..., TestClient], dists: Dists, packages: Path
) -> None:
    client = make_client(poll_interval=600)  # the poller will not look again during the test
    wheel = "alpha-1.0-py3-none-any.whl"
    assert client.get(f"/packages/{wheel}").status_code == 404
    shutil.copy(dists.path(wheel), packages / wheel)  # what another worker's upload does
    response = client.get(f"/packages/{wheel}")
    assert response.status_code == 200 and response.content == dists.path(wheel).read_bytes()
    assert client.get("/packages/made-up-1.0.tar.gz").status_code == 404
