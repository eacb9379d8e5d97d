"""Ed25519 signatures over a bundle's SHA256SUMS (the `cryptography` package).

The signature file holds the base64 of the 64-byte signature; keys are PEM (PKCS#8 private,
SubjectPublicKeyInfo public), so `openssl pkey` can read them too. Private keys are written 0600.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from releasekit.atomic import SECRET, SERVED, stage, write_atomic
from releasekit.bundle.manifest import SIGNATURE, SUMS
from releasekit.errors import BundleError


def generate_key(private_path: Path) -> Path:
    """Write a new private key (0600) and its public key beside it (`<name>.pub`)."""
    if private_path.exists():
        raise BundleError(
            f"{private_path} already exists", hint="choose another path; keys are never overwritten"
        )
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_path = private_path.with_name(private_path.name + ".pub")
    private_path.parent.mkdir(parents=True, exist_ok=True)
    stage(private_path, private, mode=SECRET).commit_new()  # whole or absent, never replaced
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(public_path, public, mode=SERVED)
    return public_path


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(
            f"cannot read the signing key {path}: {exc}",
            hint="create one with `releasekit bundle keygen KEY`",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path} is not an Ed25519 private key", hint="use `bundle keygen`")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    """Read a PEM public key (or take the public half of a private key file)."""
    try:
        data = path.read_bytes()
        if b"PRIVATE KEY" in data:
            return _load_private(path).public_key()
        key = serialization.load_pem_public_key(data)
    except (OSError, ValueError) as exc:
        raise BundleError(
            f"cannot read the public key {path}: {exc}",
            hint="pass the `.pub` file written by `releasekit bundle keygen`",
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path} is not an Ed25519 public key", hint="use `bundle keygen`")
    return key


def sign_bundle(directory: Path, private_path: Path) -> Path:
    """Sign the bundle's SHA256SUMS; writes SHA256SUMS.sig and returns its path."""
    sums = directory / SUMS
    if not sums.is_file():
        raise BundleError(
            f"{sums} does not exist: the bundle is not complete",
            hint="run `releasekit bundle fetch` until it finishes, then sign",
        )
    signature = _load_private(private_path).sign(sums.read_bytes())
    write_atomic(directory / SIGNATURE, base64.b64encode(signature) + b"\n", mode=SERVED)
    return directory / SIGNATURE


def check_signature(directory: Path, public: Ed25519PublicKey) -> None:
    """Raise BundleError naming SHA256SUMS.sig unless it is a valid signature by `public`."""
    path = directory / SIGNATURE
    if not path.is_file():
        raise BundleError(
            f"{path} is missing: the bundle is not signed",
            hint="sign it with `releasekit bundle sign BUNDLE --key KEY`, or verify without --key",
        )
    try:
        signature = base64.b64decode(path.read_bytes().strip(), validate=True)
        public.verify(signature, (directory / SUMS).read_bytes())
    except (InvalidSignature, binascii.Error, ValueError):
        raise BundleError(
            f"{path} is not a valid signature of {SUMS} by this key",
            hint="the bundle was changed after signing, or signed with another key: "
            "do not import it; check which public key its maker published",
        ) from None
