"""Trusted publishing end to end: the real `uv publish --trusted-publishing always` against a TLS
index (uv always asks `https://<host>/_/oidc/...`), a local issuer and a GitHub-style token stub.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from releasekit.server.tokens import load_tokens
from tests.adversarial.attestation_helpers import attest
from tests.adversarial.oidc_issuer import (
    REQUEST_TOKEN,
    Issuer,
    serving_issuer,
    tls_files,
    write_settings,
)
from tests.adversarial.server_process import wait_until
from tests.server.conftest import make_wheel

BIN = Path(sys.executable).parent
_LISTENING = re.compile(r"Uvicorn running on https://127\.0\.0\.1:(\d+)")


def _trust(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with serving_issuer() as running:
        yield running


@pytest.fixture
def tls_index(tmp_path: Path, issuer: Issuer) -> Iterator[tuple[str, Path, Path]]:
    """A TLS index (uvicorn, as `server run` starts it) with trusted publishing configured."""
    packages = tmp_path / "packages"
    packages.mkdir()
    ca, cert, key = tls_files(tmp_path)
    settings = write_settings(tmp_path / "trusted.toml", issuer)
    env = {
        **os.environ,
        "RELEASEKIT_SERVER_PACKAGES_DIR": str(packages),
        "RELEASEKIT_SERVER_AUTHENTICATE": "update",
        "RELEASEKIT_SERVER_TRUSTED_PUBLISHING": str(settings),
    }
    log = tmp_path / "server.log"
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "releasekit.server.process:app_from_env",
        "--host", "127.0.0.1", "--port", "0", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        found: list[str] = []

        def listening() -> bool:
            match = _LISTENING.search(log.read_text(errors="replace"))
            assert process.poll() is None, log.read_text()
            if match:
                found.append(match.group(1))
            return bool(match)

        wait_until(listening, 30, "the TLS index listening")
        yield f"https://127.0.0.1:{found[0]}", packages, ca
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_uv_publish_with_trusted_publishing(
    tls_index: tuple[str, Path, Path], issuer: Issuer, tmp_path: Path
) -> None:
    url, packages, cert = tls_index
    wheel = make_wheel(tmp_path, "demo", "1.0")
    attestation = attest(wheel)  # uv publish groups it with its dist and sends it (PEP 740)
    env = {
        **os.environ,
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "SSL_CERT_FILE": str(cert),
        "GITHUB_ACTIONS": "true",
        "ACTIONS_ID_TOKEN_REQUEST_URL": issuer.token_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
    }
    command = [str(BIN / "uv"), "publish", "--trusted-publishing", "always"]
    result = subprocess.run(
        [*command, "--publish-url", f"{url}/legacy/", str(wheel), str(attestation)],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (packages / wheel.name).read_bytes() == wheel.read_bytes()
    assert "/token" in issuer.requests and "/jwks" in issuer.requests
    # uv burns the minted token once the upload is done (/_/oidc/burn-token).
    assert load_tokens(packages / ".releasekit" / "tokens.json") == {}
    page = httpx2.get(f"{url}/simple/demo/", verify=_trust(cert)).text
    assert wheel.name in page
    provenance = httpx2.get(
        f"{url}/integrity/demo/1.0/{wheel.name}/provenance", verify=_trust(cert)
    ).json()
    assert "attestation_bundles" in provenance, (provenance, result.stderr)
    assert provenance["attestation_bundles"][0]["publisher"] == {
        "kind": "GitHub",
        "repository": "acme/demo",
        "workflow": "release.yml",
        "ref": "refs/heads/main",
    }


def test_a_token_for_another_project_is_not_minted(
    tls_index: tuple[str, Path, Path], issuer: Issuer, tmp_path: Path
) -> None:
    url, packages, cert = tls_index
    other = issuer.sign(issuer.claims(repository="acme/other"))
    answer = httpx2.post(f"{url}/_/oidc/mint-token", json={"token": other}, verify=_trust(cert))
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert "no trusted publisher matches repository 'acme/other'" in answer.json()["detail"]
    assert not (packages / ".releasekit" / "tokens.json").exists()
    good = httpx2.post(
        f"{url}/_/oidc/mint-token",
        json={"token": issuer.sign(issuer.claims())},
        verify=_trust(cert),
    )
    assert good.status_code == 200, good.text
    minted = good.json()["token"]
    (token,) = load_tokens(packages / ".releasekit" / "tokens.json").values()
    assert token.projects == ("demo",) and token.expires is not None
    assert json.loads(httpx2.get(f"{url}/_/oidc/audience", verify=_trust(cert)).text) == {
        "audience": "releasekit-test"
    }
    wheel = make_wheel(tmp_path, "intruder", "1.0")
    refused = httpx2.post(
        f"{url}/legacy/",
        data={":action": "file_upload", "protocol_version": "1"},
        files={"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")},
        auth=("__token__", minted),
        verify=_trust(cert),
    )
    assert refused.status_code == 403
    assert not (packages / wheel.name).exists()
