"""Hostile ID tokens at `/_/oidc/mint-token`: each is a 4xx problem, and no token is minted."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from releasekit.errors import ConfigError
from releasekit.server.app import create_app
from releasekit.server.localstore import LocalStorage
from releasekit.server.settings import load_settings
from releasekit.server.tokens import create_token, load_tokens, save_tokens
from tests.adversarial.oidc_issuer import Issuer, b64, serving_issuer, write_settings


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with serving_issuer() as running:
        yield running


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    path = tmp_path / "packages"
    path.mkdir()
    return path


@pytest.fixture
def client(packages: Path, issuer: Issuer, tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(
        {
            "packages_dir": packages,
            "trusted_publishing": write_settings(tmp_path / "trusted.toml", issuer),
            "poll_interval": 0.05,
        },
        env={},
    )
    with TestClient(create_app(LocalStorage(packages), settings)) as running:
        yield running


def _mint(client: TestClient, body: Any) -> Any:
    return client.post("/_/oidc/mint-token", json=body)


def _refused(answer: Any, status: int, words: str, packages: Path) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"]
    assert not (packages / ".releasekit" / "tokens.json").exists(), "nothing minted"


def test_a_good_token_mints_with_either_algorithm(client: TestClient, issuer: Issuer) -> None:
    for alg in ("RS256", "ES256"):
        answer = _mint(client, {"token": issuer.sign(issuer.claims(), alg=alg)})
        assert answer.status_code == 200, answer.text
        assert answer.json()["token"].startswith("rk_")


def _forge(issuer: Issuer) -> dict[str, str]:
    now = int(time.time())
    good = issuer.sign(issuer.claims())
    head, body, sig = good.split(".")
    other = Issuer()  # same claims, someone else's key
    tampered = b64(b'{"iss": "x"}')
    return {
        "a tampered payload": f"{head}.{tampered}.{sig}",
        "another key": other.sign(issuer.claims()),
        "alg none": issuer.sign(issuer.claims(), alg="none"),
        "HS256 keyed with the public key": issuer.sign(issuer.claims(), alg="HS256"),
        "RS256 header on the EC key": issuer.sign(issuer.claims(), alg="RS256", kid="ec1"),
        "an unknown kid": issuer.sign(issuer.claims(), kid="nope"),
        "expired": issuer.sign(issuer.claims(exp=now - 3600, iat=now - 7200, nbf=now - 7200)),
        "not yet valid": issuer.sign(issuer.claims(nbf=now + 3600)),
        "issued in the future": issuer.sign(issuer.claims(iat=now + 3600)),
        "no exp": issuer.sign(issuer.claims(exp=None)),
        "wrong audience": issuer.sign(issuer.claims(aud="pypi")),
        "wrong issuer": issuer.sign(issuer.claims(iss="https://evil.example")),
        "two parts": f"{head}.{body}",
        "not base64": "!!!.???.***",
        "oversized": issuer.sign(issuer.claims(pad="x" * 40_000)),
    }


EXPECTED = {
    "a tampered payload": "signature does not verify",
    "another key": "signature does not verify",
    "alg none": "not a signed JWT",
    "HS256 keyed with the public key": "algorithm 'HS256' is not accepted",
    "RS256 header on the EC key": "is not a key for RS256",
    "an unknown kid": "no key 'nope'",
    "expired": "expired",
    "not yet valid": "not valid yet",
    "issued in the future": "issued in the future",
    "no exp": "'exp' claim is missing",
    "wrong audience": "audience 'pypi'",
    "wrong issuer": "issued by 'https://evil.example'",
    "two parts": "not a signed JWT",
    "not base64": "not",
    "oversized": "larger than",
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_forged_tokens_are_refused(
    client: TestClient, issuer: Issuer, packages: Path, case: str
) -> None:
    answer = _mint(client, {"token": _forge(issuer)[case]})
    status = 413 if case == "oversized" else 401
    _refused(answer, status, EXPECTED[case], packages)


@pytest.mark.parametrize("body", [None, [], {"token": 5}, {"token": ""}, {"jwt": "x"}], ids=repr)
def test_malformed_requests_are_refused(client: TestClient, packages: Path, body: Any) -> None:
    _refused(_mint(client, body), 400, '{"token"', packages)


def test_a_workflow_no_rule_names_gets_nothing(
    client: TestClient, issuer: Issuer, packages: Path
) -> None:
    other_workflow = "acme/demo/.github/workflows/evil.yml@refs/heads/main"
    for claims in (
        issuer.claims(job_workflow_ref=other_workflow),
        issuer.claims(ref="refs/pull/1/merge"),
        issuer.claims(repository="acme/demo-fork"),
    ):
        answer = _mint(client, {"token": issuer.sign(claims)})
        _refused(answer, 403, "no trusted publisher matches", packages)


@pytest.mark.parametrize(
    "body",
    [None, b"not json", b'{"keys": "none"}', b"[]", b'{"keys": []}' + b" " * 70_000],
    ids=["500", "not JSON", "no key list", "a list", "oversized"],
)
def test_the_issuer_keys_unavailable(
    client: TestClient, issuer: Issuer, packages: Path, body: bytes | None
) -> None:
    issuer.jwks_broken = body is None
    issuer.jwks_body = body
    answer = _mint(client, {"token": issuer.sign(issuer.claims())})
    _refused(answer, 401, "issuer's keys are unavailable", packages)


def test_the_issuer_unreachable(packages: Path, issuer: Issuer, tmp_path: Path) -> None:
    with socket.socket() as probe:  # an OS-assigned port that nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings_file = write_settings(tmp_path / "trusted.toml", issuer)
    dead = f"http://127.0.0.1:{port}/jwks"
    settings_file.write_text(settings_file.read_text().replace(issuer.jwks_url, dead))
    settings = load_settings(
        {"packages_dir": packages, "trusted_publishing": settings_file}, env={}
    )
    with TestClient(create_app(LocalStorage(packages), settings)) as client:
        answer = _mint(client, {"token": issuer.sign(issuer.claims())})
        _refused(answer, 401, "issuer's keys are unavailable", packages)


def test_disabled_without_settings(packages: Path) -> None:
    settings = load_settings({"packages_dir": packages}, env={})
    with TestClient(create_app(LocalStorage(packages), settings)) as plain:
        assert plain.get("/_/oidc/audience").status_code == 404
        _refused(_mint(plain, {"token": "x"}), 404, "not enabled", packages)


def test_burn_revokes_only_minted_tokens(
    client: TestClient, issuer: Issuer, packages: Path
) -> None:
    tokens_file = packages / ".releasekit" / "tokens.json"
    admin = create_token(tokens_file, owner="admin", projects=["*"], actions=["admin"])
    minted = _mint(client, {"token": issuer.sign(issuer.claims())}).json()["token"]
    assert len(load_tokens(tokens_file)) == 2
    answer = client.post("/_/oidc/burn-token", json={"token": admin.value})
    assert answer.status_code == 202  # PyPI's answer whatever happened: nothing to learn
    assert admin.token.id in load_tokens(tokens_file)
    assert client.post("/_/oidc/burn-token", json={"token": minted}).status_code == 202
    assert set(load_tokens(tokens_file)) == {admin.token.id}


def test_expired_minted_tokens_are_pruned_at_the_next_mint(
    client: TestClient, issuer: Issuer, packages: Path
) -> None:
    tokens_file = packages / ".releasekit" / "tokens.json"
    past = datetime.now(UTC) - timedelta(days=1)
    kept = create_token(tokens_file, owner="admin", projects=["*"], actions=["update"])
    assert _mint(client, {"token": issuer.sign(issuer.claims())}).status_code == 200
    tokens = {i: replace(t, expires=past) for i, t in load_tokens(tokens_file).items()}
    save_tokens(tokens_file, tokens)
    assert _mint(client, {"token": issuer.sign(issuer.claims())}).status_code == 200
    after = load_tokens(tokens_file)
    assert kept.token.id in after  # an admin's expired token is the admin's to remove
    assert len(after) == 2
    refusal = _mint(client, {"token": issuer.sign(issuer.claims(aud="pypi"))}).json()
    assert refusal["errors"][0]["code"] == "invalid-token"  # PyPI's shape, for twine


def test_a_jwks_file_works_too(packages: Path, issuer: Issuer, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))
    settings_file = write_settings(tmp_path / "trusted.toml", issuer)
    settings_file.write_text(settings_file.read_text().replace(issuer.jwks_url, str(jwks)))
    settings = load_settings(
        {"packages_dir": packages, "trusted_publishing": settings_file}, env={}
    )
    with TestClient(create_app(LocalStorage(packages), settings)) as client:
        assert (
            _mint(client, {"token": issuer.sign(issuer.claims(), alg="ES256")}).status_code == 200
        )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('jwks = "x"\n', "invalid trusted publishing settings"),
        ('issuer = "i"\njwks = "x"\ntoken_minutes = 0\n', "token_minutes must be between 1 and 60"),
        ('issuer = "i"\njwks = "x"\n[[publisher]]\nprojects = ["a"]\n', "give each [[publisher]]"),
        ("issuer = ", "cannot read the trusted publishing file"),
    ],
)
def test_bad_settings_are_refused_at_start(
    packages: Path, tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "trusted.toml"
    path.write_text(text)
    settings = load_settings({"packages_dir": packages, "trusted_publishing": path}, env={})
    with pytest.raises(ConfigError) as refused:
        create_app(LocalStorage(packages), settings)
    assert words in f"{refused.value.message} {refused.value.hint}"


def test_a_failing_issuer_is_not_hammered_and_known_keys_stay_in_use(
    client: TestClient, issuer: Issuer, packages: Path
) -> None:
    assert _mint(client, {"token": issuer.sign(issuer.claims())}).status_code == 200
    issuer.jwks_broken = True
    fetches = issuer.requests.count("/jwks")
    for _ in range(5):  # unknown kids force re-reads, at most one per JWKS_RETRY seconds
        answer = _mint(client, {"token": issuer.sign(issuer.claims(), kid="rotated")})
        assert answer.status_code == 401
    assert issuer.requests.count("/jwks") <= fetches + 1
    assert _mint(client, {"token": issuer.sign(issuer.claims())}).status_code == 200
