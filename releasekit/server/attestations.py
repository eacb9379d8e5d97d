"""PEP 740 attestations: checked on upload, kept in the state directory, served as provenance.

What is checked (nothing here can reach Sigstore, so nothing here claims a Sigstore verification):
- the shape PEP 740 defines: `version` 1, `verification_material.certificate` (base64 DER
  X.509), at least one transparency entry (kept, not verified), `envelope.statement` and
  `envelope.signature` (base64);
- the statement is an in-toto v1 Statement whose single subject names the uploaded file and
  carries its sha256 (the digest binding: an attestation for other bytes is refused);
- the DSSE signature over the statement verifies with the certificate's own public key.
NOT checked: the certificate chain to Fulcio's root, the transparency log inclusion, or the
signer identity in the certificate. Clients that need those verify the provenance themselves.

State: `provenance/<filename>.json` = {"sha256": ..., "provenance": {...}}, and
`provenance/index.json` = {filename: sha256}, read by the pages to link files to provenance.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from releasekit.server.storage import Storage

MAX_ATTESTATIONS = 8
MAX_FIELD_BYTES = 256 * 1024
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
DSSE_PAYLOAD_TYPE = "application/vnd.in-toto+json"
INDEX_NAME = "provenance/index.json"


class AttestationRefused(Exception):
    """An attestation that is malformed or does not bind the uploaded file; `detail` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise AttestationRefused(f"{what} is missing or not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise AttestationRefused(f"{what} is not valid base64") from None


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AttestationRefused(f"{what} is missing or not a JSON object")
    return value


def parse_field(raw: str) -> list[dict[str, Any]]:
    """The `attestations` form field: a JSON list of 1..MAX_ATTESTATIONS objects."""
    if len(raw.encode()) > MAX_FIELD_BYTES:
        raise AttestationRefused(f"the attestations field is larger than {MAX_FIELD_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError:
        raise AttestationRefused("the attestations field is not JSON") from None
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_ATTESTATIONS:
        raise AttestationRefused(
            f"the attestations field must be a JSON list of 1 to {MAX_ATTESTATIONS} objects"
        )
    return [_object(item, "an attestation") for item in data]


def _pae(payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what the signature signs."""
    kind = DSSE_PAYLOAD_TYPE.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def check_attestation(attestation: dict[str, Any], filename: str, sha256: str) -> None:
    """Refuse (AttestationRefused) unless the attestation has PEP 740's shape and binds the file."""
    if attestation.get("version") != 1:
        raise AttestationRefused("the attestation's version is not 1")
    material = _object(attestation.get("verification_material"), "verification_material")
    der = _b64(material.get("certificate"), "verification_material.certificate")
    entries = material.get("transparency_entries")
    if (
        not isinstance(entries, list)
        or not entries
        or not all(isinstance(e, dict) for e in entries)
    ):
        raise AttestationRefused("transparency_entries must be a non-empty list of objects")
    envelope = _object(attestation.get("envelope"), "envelope")
    statement_bytes = _b64(envelope.get("statement"), "envelope.statement")
    signature = _b64(envelope.get("signature"), "envelope.signature")
    try:
        statement = json.loads(statement_bytes)
    except (ValueError, UnicodeDecodeError):
        raise AttestationRefused("the envelope's statement is not JSON") from None
    statement = _object(statement, "the statement")
    if statement.get("_type") != STATEMENT_TYPE:
        raise AttestationRefused(f"the statement is not an in-toto v1 Statement ({STATEMENT_TYPE})")
    if not isinstance(statement.get("predicateType"), str):
        raise AttestationRefused("the statement has no predicateType")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise AttestationRefused("the statement must have exactly one subject")
    subject = _object(subjects[0], "the statement's subject")
    if subject.get("name") != filename:
        raise AttestationRefused(
            f"the attestation is for {subject.get('name')!r}, not for the uploaded {filename!r}"
        )
    digest = _object(subject.get("digest"), "the subject's digest").get("sha256")
    if digest != sha256:
        raise AttestationRefused(
            "the attestation's subject digest does not match the uploaded file's sha256"
        )
    _check_signature(der, signature, statement_bytes)


def _check_signature(der: bytes, signature: bytes, statement: bytes) -> None:
    # Imported here: cryptography costs each worker ~15 MiB of RSS, and only an upload
    # carrying attestations needs it.
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        certificate = x509.load_der_x509_certificate(der)
        key = certificate.public_key()
    except ValueError:
        raise AttestationRefused("the certificate is not a DER X.509 certificate") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise AttestationRefused("the certificate's key is not an ECDSA key (Sigstore signs so)")
    digest = hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
    try:
        key.verify(signature, _pae(statement), ec.ECDSA(digest))
    except InvalidSignature:
        raise AttestationRefused(
            "the envelope's signature does not verify with the certificate's key"
        ) from None


@dataclass(frozen=True)
class Publisher:
    """Who uploaded, for the provenance object (PEP 740 `publisher`)."""

    data: dict[str, Any]


def provenance_object(attestations: list[dict[str, Any]], publisher: Publisher) -> dict[str, Any]:
    """PEP 740 provenance: one bundle with the uploader and the attestations as sent."""
    return {
        "version": 1,
        "attestation_bundles": [{"publisher": publisher.data, "attestations": attestations}],
    }


class ProvenanceStore:
    """The provenance state files and the in-memory index the pages read (filename -> sha256)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        # A damaged index reads as empty: a cache of the per-file records, rebuilt as files
        # are attested again.
        self.index: dict[str, str] = self._stored_index()

    def reload(self) -> None:
        """Re-read the index another process may have written (a promotion, another worker)."""
        with self._lock:
            self.index = self._stored_index()

    def _stored_index(self) -> dict[str, str]:
        raw = self.storage.read_state(INDEX_NAME)
        try:
            loaded = json.loads(raw) if raw is not None else {}
        except ValueError:
            loaded = {}
        return {str(k): str(v) for k, v in dict(loaded).items()}

    def add(self, filename: str, sha256: str, provenance: dict[str, Any]) -> None:
        """Store a file's provenance (the record first, then the index that points at it)."""
        body = json.dumps({"sha256": sha256, "provenance": provenance}).encode()
        # The index is merged into what is stored, under the store's lock: another process
        # (a promotion, another worker) may have added entries this one has not seen.
        with self._lock, self.storage.lock(INDEX_NAME):
            self.storage.write_state(f"provenance/{filename}.json", body)
            index = {**self._stored_index(), filename: sha256}
            self.storage.write_state(INDEX_NAME, json.dumps(index).encode())
            self.index = index

    def remove(self, filenames: Iterable[str]) -> None:
        """Forget removed files' provenance."""
        with self._lock, self.storage.lock(INDEX_NAME):
            index = self._stored_index()
            for filename in filenames:
                index.pop(filename, None)
                self.storage.delete_state(f"provenance/{filename}.json")
            self.storage.write_state(INDEX_NAME, json.dumps(index).encode())
            self.index = index

    def get(self, filename: str, sha256: str) -> dict[str, Any] | None:
        """The provenance of exactly these bytes, or None (never another upload's)."""
        raw = self.storage.read_state(f"provenance/{filename}.json")
        if raw is None:
            return None
        data = json.loads(raw)
        if data.get("sha256") != sha256:
            return None
        provenance: dict[str, Any] = data["provenance"]
        return provenance
