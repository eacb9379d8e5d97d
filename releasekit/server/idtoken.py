"""Verify an OIDC ID token (a compact JWS) against a JWKS, with `cryptography` alone.

Only RS256 and ES256 are accepted, and the key must be of the algorithm's type: `none`, HS256
(the "public key used as an HMAC secret" confusion) and anything else are refused before any
key is looked at. PyJWT is not used: the part we need is ~100 lines, and an explicit allow-list
here is easier to audit than a library's algorithm registry.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

MAX_TOKEN_BYTES = 16 * 1024  # GitHub's tokens are ~1.5 KB; anything this big is hostile
LEEWAY_SECONDS = 60  # clock skew allowed between the issuer and us
ALGORITHMS = ("RS256", "ES256")


class TokenInvalid(Exception):
    """The token is malformed, badly signed, or its claims do not hold; `detail` says which."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Expectations:
    """What the claims must say: the issuer, our audience, and the time now (epoch seconds)."""

    issuer: str
    audience: str
    now: float
    leeway: float = LEEWAY_SECONDS


def _b64(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("the token is not base64url") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise TokenInvalid(f"the token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenInvalid(f"the token's {what} is not a JSON object")
    return value


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, after the size and shape checks (nothing is trusted yet)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenInvalid(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise TokenInvalid("the token is not a signed JWT (header.payload.signature)")
    header = _json_object(_b64(parts[0]), "header")
    if header.get("alg") not in ALGORITHMS:
        raise TokenInvalid(
            f"the token's algorithm {header.get('alg')!r} is not accepted "
            f"(only {', '.join(ALGORITHMS)})"
        )
    return header


def _public_key(jwk: Mapping[str, Any], alg: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    # cryptography is imported where a token is checked: it costs each worker ~15 MiB of RSS.
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        if alg == "RS256" and jwk.get("kty") == "RSA":
            e = int.from_bytes(_b64(str(jwk["e"])), "big")
            n = int.from_bytes(_b64(str(jwk["n"])), "big")
            if n.bit_length() < 2048:
                raise TokenInvalid("the issuer's RSA key is shorter than 2048 bits")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if alg == "ES256" and jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            x = int.from_bytes(_b64(str(jwk["x"])), "big")
            y = int.from_bytes(_b64(str(jwk["y"])), "big")
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (KeyError, ValueError):
        raise TokenInvalid("the issuer's key for this token is malformed") from None
    raise TokenInvalid(f"the issuer's key {jwk.get('kid')!r} is not a key for {alg}")


def find_key(jwks: Mapping[str, Any], header: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JWK the header names by `kid` (or the only key, when the header names none)."""
    keys = [k for k in jwks.get("keys", ()) if isinstance(k, dict)]
    kid = header.get("kid")
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((k for k in keys if k.get("kid") == kid), None)


def verify(token: str, jwk: Mapping[str, Any], expect: Expectations) -> dict[str, Any]:
    """The claims of a token signed by `jwk` whose iss/aud/exp/nbf/iat hold; else TokenInvalid."""
    header = unverified_header(token)
    alg = str(header["alg"])
    key = _public_key(jwk, alg)
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    head, body, sig = token.split(".")
    signed, signature = f"{head}.{body}".encode("ascii"), _b64(sig)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            if len(signature) != 64:  # JWS ES256 is raw r || s, 32 bytes each
                raise TokenInvalid("the token's ES256 signature has the wrong length")
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise TokenInvalid("the token's signature does not verify") from None
    claims = _json_object(_b64(body), "payload")
    check_claims(claims, expect)
    return claims


def _number(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenInvalid(f"the token's {name!r} claim is missing or not a number")
    return float(value)


def check_claims(claims: Mapping[str, Any], expect: Expectations) -> None:
    """Issuer, audience and the time window (with `leeway` seconds of skew either way)."""
    if claims.get("iss") != expect.issuer:
        raise TokenInvalid(f"the token was issued by {claims.get('iss')!r}, not {expect.issuer!r}")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if expect.audience not in audiences:
        raise TokenInvalid(f"the token's audience {audience!r} is not {expect.audience!r}")
    exp = _number(claims, "exp", required=True)
    if exp is not None and exp <= expect.now - expect.leeway:
        raise TokenInvalid("the token has expired")
    nbf = _number(claims, "nbf", required=False)
    if nbf is not None and nbf > expect.now + expect.leeway:
        raise TokenInvalid("the token is not valid yet (nbf is in the future)")
    iat = _number(claims, "iat", required=True)
    if iat is not None and iat > expect.now + expect.leeway:
        raise TokenInvalid("the token was issued in the future (iat)")
