"""A stand-in OIDC issuer for the tests: keys made here, a JWKS and a GitHub-style token endpoint
served on 127.0.0.1 (OS-assigned port), and helpers that sign (or forge) ID tokens.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "https://token.actions.example.test"
AUDIENCE = "releasekit-test"
REPOSITORY = "acme/demo"
WORKFLOW_REF = f"{REPOSITORY}/.github/workflows/release.yml@refs/heads/main"
REQUEST_TOKEN = "runner-request-token"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class Issuer:
    """Keys and a signer; `jwks_url`/`token_url` are set once the stub serves them."""

    rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    jwks_url: str = ""
    token_url: str = ""
    jwks_broken: bool = False  # the JWKS endpoint answers 500 while set
    jwks_body: bytes | None = None  # served instead of the real key set while set
    requests: list[str] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        rsa_numbers = self.rsa_key.public_key().public_numbers()
        ec_numbers = self.ec_key.public_key().public_numbers()
        return {
            "keys": [
                {"kty": "RSA", "kid": "rsa1", "alg": "RS256", "use": "sig",
                 "n": _int(rsa_numbers.n), "e": _int(rsa_numbers.e)},
                {"kty": "EC", "kid": "ec1", "crv": "P-256", "alg": "ES256", "use": "sig",
                 "x": b64(ec_numbers.x.to_bytes(32, "big")),
                 "y": b64(ec_numbers.y.to_bytes(32, "big"))},
            ]
        }  # fmt: skip

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Claims GitHub would put in a token for acme/demo's release.yml on main."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"repo:{REPOSITORY}:ref:refs/heads/main",
            "repository": REPOSITORY,
            "repository_owner": "acme",
            "job_workflow_ref": WORKFLOW_REF,
            "workflow_ref": WORKFLOW_REF,
            "ref": "refs/heads/main",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(
        self, claims: dict[str, Any], *, alg: str = "RS256", kid: str | None = None, **header: Any
    ) -> str:
        """A compact JWS over `claims`; `alg` "none"/"HS256" make the classic forgeries."""
        head = {"alg": alg, "typ": "JWT", "kid": kid or ("ec1" if alg == "ES256" else "rsa1")}
        head.update(header)
        signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
        data = signing_input.encode()
        if alg == "RS256":
            signature = self.rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256":
            r, s = decode_dss_signature(self.ec_key.sign(data, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        elif alg == "HS256":  # keyed with the public key, as an alg-confusion attacker would
            public = self.rsa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            mac = hmac.HMAC(public, hashes.SHA256())
            mac.update(data)
            signature = mac.finalize()
        else:
            signature = b""
        return f"{signing_input}.{b64(signature)}"


def _handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            issuer.requests.append(url.path)
            if url.path == "/jwks":
                if issuer.jwks_broken:
                    self._send(500, {"error": "down"})
                elif issuer.jwks_body is not None:
                    self.send_response(200)
                    self.send_header("content-length", str(len(issuer.jwks_body)))
                    self.end_headers()
                    self.wfile.write(issuer.jwks_body)
                else:
                    self._send(200, issuer.jwks())
            elif url.path == "/token":
                if self.headers.get("authorization", "").lower() != f"bearer {REQUEST_TOKEN}":
                    self._send(401, {"error": "bad request token"})
                    return
                audience = parse_qs(url.query).get("audience", [""])[0]
                self._send(200, {"value": issuer.sign(issuer.claims(aud=audience))})
            else:
                self._send(404, {"error": "not found"})

    return Handler


@contextmanager
def serving_issuer() -> Iterator[Issuer]:
    """An Issuer whose JWKS and token endpoints answer on 127.0.0.1 until the block ends."""
    issuer = Issuer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(issuer))
    port = server.server_address[1]
    issuer.jwks_url = f"http://127.0.0.1:{port}/jwks"
    issuer.token_url = f"http://127.0.0.1:{port}/token?api-version=2.0"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def write_settings(path: Path, issuer: Issuer, **rule: Any) -> Path:
    """The trusted publishing TOML: this issuer, and one rule for acme/demo (overridable)."""
    values = {
        "projects": ["demo"],
        "repository": REPOSITORY,
        "workflow": "release.yml",
        "ref": "refs/heads/*",
        "owner": "ci",
    }
    values.update(rule)
    lines = [
        f'issuer = "{ISSUER}"',
        f'jwks = "{issuer.jwks_url}"',
        f'audience = "{AUDIENCE}"',
        "token_minutes = 5",
        "",
        "[[publisher]]",
        *(f"{k} = {json.dumps(v)}" for k, v in values.items()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey]
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA, and a certificate for 127.0.0.1 it signed with its key: (ca, cert, key)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        _certificate("releasekit test CA", ca_key, ("releasekit test CA", ca_key))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        _certificate("127.0.0.1", key, ("releasekit test CA", ca_key))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
