"""Hostile attestations on upload: each is a 400 problem+json and nothing is stored."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.adversarial.attestation_helpers import make_attestation
from tests.server.conftest import make_wheel, snapshot, upload_form, wait_for


def _with(attestation: dict[str, Any], *path: str, value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(attestation))
    target = copy
    for key in path[:-1]:
        target = target[key]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copy


_DROP = object()


def _statement(**overrides: Any) -> str:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "x", "digest": {"sha256": "0" * 64}}],
        "predicateType": "p",
    }
    statement.update(overrides)
    return base64.b64encode(json.dumps(statement).encode()).decode()


def cases(name: str, digest: str) -> dict[str, tuple[str, str]]:
    """case -> (the attestations field, words expected in the refusal)."""
    good = make_attestation(name, digest)
    statement = json.loads(base64.b64decode(good["envelope"]["statement"]))
    other = make_attestation(name, "f" * 64)

    def raw(value: Any) -> str:
        return json.dumps(value)

    return {
        "not JSON": ("[{", "not JSON"),
        "not a list": (raw(good), "must be a JSON list"),
        "empty list": ("[]", "must be a JSON list"),
        "too many": (raw([good] * 9), "must be a JSON list of 1 to 8"),
        "huge": (raw([_with(good, "pad", value="x" * 300_000)]), "larger than"),
        "version 2": (raw([_with(good, "version", value=2)]), "version is not 1"),
        "no certificate": (
            raw([_with(good, "verification_material", "certificate", value=_DROP)]),
            "certificate is missing",
        ),
        "certificate not base64": (
            raw([_with(good, "verification_material", "certificate", value="%%%")]),
            "not valid base64",
        ),
        "certificate not DER": (
            raw([_with(good, "verification_material", "certificate", value="AAAA")]),
            "not a DER X.509 certificate",
        ),
        "no transparency entries": (
            raw([_with(good, "verification_material", "transparency_entries", value=[])]),
            "transparency_entries",
        ),
        "statement not JSON": (
            raw([_with(good, "envelope", "statement", value="bm90IGpzb24=")]),
            "statement is not JSON",
        ),
        "not in-toto": (
            raw([_with(good, "envelope", "statement", value=_statement(_type="x"))]),
            "not an in-toto v1 Statement",
        ),
        "two subjects": (
            raw([_with(good, "envelope", "statement", value=_statement(subject=[{}, {}]))]),
            "exactly one subject",
        ),
        "another file's name": (
            raw([make_attestation("other-1.0-py3-none-any.whl", digest)]),
            "is for 'other-1.0-py3-none-any.whl'",
        ),
        "wrong digest": (raw([other]), "subject digest does not match"),
        "statement swapped under a valid signature": (
            raw([_with(other, "envelope", "statement", value=good["envelope"]["statement"])]),
            "signature does not verify",
        ),
        "signed by another key": (
            raw([make_attestation(name, digest, signer=_other_key())]),
            "signature does not verify",
        ),
        "good then bad": (raw([good, other]), "subject digest does not match"),
    } | {"digest field missing": (raw([_drop_digest(good, statement)]), "digest")}


def _other_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _drop_digest(good: dict[str, Any], statement: dict[str, Any]) -> dict[str, Any]:
    statement = {**statement, "subject": [{"name": statement["subject"][0]["name"]}]}
    encoded = base64.b64encode(json.dumps(statement).encode()).decode()
    return _with(good, "envelope", "statement", value=encoded)


NAMES = sorted(cases("x", "0" * 64))


@pytest.mark.parametrize("case", NAMES)
def test_refused_attestations_store_nothing(
    make_client: Callable[..., TestClient], packages: Path, tmp_path: Path, case: str
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    field, words = cases(wheel.name, digest)[case]
    client = make_client()
    before = snapshot(packages)
    data, files = upload_form(wheel, attestations=field)
    answer = client.post("/legacy/", data=data, files=files)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"]
    assert not (packages / wheel.name).exists()
    assert not (packages / ".releasekit" / "provenance").exists()
    assert {k: v for k, v in snapshot(packages).items() if "provenance" in k} == {
        k: v for k, v in before.items() if "provenance" in k
    }


def test_an_accepted_attestation_is_bound_to_the_bytes(
    make_client: Callable[..., TestClient], packages: Path, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    client = make_client()
    field = json.dumps([make_attestation(wheel.name, digest)])
    data, files = upload_form(wheel, attestations=field)
    assert client.post("/legacy/", data=data, files=files).status_code == 200
    link = f"/integrity/demo/1.0/{wheel.name}/provenance"
    assert client.get(link).status_code == 200
    for guess in (
        f"/integrity/demo/9.9/{wheel.name}/provenance",
        "/integrity/demo/1.0/..%2f..%2fetc%2fpasswd/provenance",
    ):
        assert client.get(guess).status_code == 404
    # Bytes replaced by hand under the same name never show the old bytes' provenance.
    (tmp_path / "other").mkdir()
    other = make_wheel(tmp_path / "other", "demo", "1.0", payload=b"other bytes")
    other.replace(packages / wheel.name)  # a new file under the old name, as `mv` does
    page = "/simple/demo/"
    accept = {"accept": "application/vnd.pypi.simple.v1+json"}
    wait_for(
        lambda: client.get(page, headers=accept).json()["files"][0]["hashes"]["sha256"] != digest
    )
    assert client.get(page, headers=accept).json()["files"][0]["provenance"] is None
    answer = client.get(link)
    assert answer.status_code == 404 and answer.json()["code"] == "no-provenance"
