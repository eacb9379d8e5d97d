"""PEP 740 attestations made in the tests: an ECDSA key, a certificate for it, a DSSE signature
over an in-toto Statement naming the file and its sha256 (no Sigstore: nothing here can reach it).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PREDICATE = "https://docs.pypi.org/attestations/publish/v1"


def _certificate(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sigstore-intermediate")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(minutes=10))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def make_attestation(
    filename: str,
    sha256: str,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    signer: ec.EllipticCurvePrivateKey | None = None,
) -> dict[str, Any]:
    """An attestation for `filename` with digest `sha256`; `signer` (another key) forges it."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": filename, "digest": {"sha256": sha256}}],
            "predicateType": PREDICATE,
            "predicate": None,
        }
    ).encode()
    kind = b"application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(statement), statement)
    signature = (signer or key).sign(pae, ec.ECDSA(hashes.SHA256()))
    return {
        "version": 1,
        "verification_material": {
            "certificate": base64.b64encode(_certificate(key)).decode(),
            "transparency_entries": [{"logIndex": "1", "kindVersion": {"kind": "dsse"}}],
        },
        "envelope": {
            "statement": base64.b64encode(statement).decode(),
            "signature": base64.b64encode(signature).decode(),
        },
    }


def attest(path: Path) -> Path:
    """Write `<dist>.publish.attestation` next to a distribution, as CI actions do."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    target = path.with_name(path.name + ".publish.attestation")
    target.write_text(json.dumps(make_attestation(path.name, digest)), encoding="utf-8")
    return target
