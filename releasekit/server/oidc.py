"""Trusted publishing: an internal OIDC issuer's ID token in, a short-lived scoped API token out.

The settings file named by `trusted_publishing` (TOML) holds the issuer and the publisher rules:

    issuer = "https://token.actions.example.com"   # the `iss` every token must carry
    jwks = "https://token.actions.example.com/.well-known/jwks"   # or a local file path
    audience = "releasekit"                        # what `/_/oidc/audience` answers
    token_minutes = 15                             # lifetime of a minted token (1-60)

    [[publisher]]
    projects = ["aegis-core"]
    repository = "acme/aegis-core"                 # claim `repository`
    workflow = "release.yml"                       # file name in claim `job_workflow_ref`
    ref = "refs/tags/v*"                           # claim `ref` (glob; optional)
    environment = "release"                        # claim `environment` (optional)
    owner = "ci"                                   # the user minted tokens act for

A minted token is an ordinary API token (`tokens.py`) scoped to the rule's projects and to the
`update` action, expiring after `token_minutes`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from releasekit.errors import ConfigError
from releasekit.server.idtoken import (
    Expectations,
    TokenInvalid,
    find_key,
    unverified_header,
    verify,
)
from releasekit.server.tokens import (
    NewToken,
    create_token,
    load_tokens,
    normalize_projects,
    save_tokens,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MAX_JWKS_BYTES = 64 * 1024
JWKS_TIMEOUT = 5.0
JWKS_TTL = 300.0  # keys are re-read this often, and at most every JWKS_RETRY on an unknown kid
JWKS_RETRY = 10.0
JWKS_FAILURE_HOLD = 5.0
MINTED = "trusted publishing: "  # the description prefix that marks a minted token


class KeysUnavailable(Exception):
    """The issuer's keys could not be fetched or read."""


@dataclass(frozen=True)
class PublisherRule:
    """Who may publish what: claims to match, and the token to mint for a match."""

    projects: tuple[str, ...]
    repository: str
    workflow: str
    owner: str
    ref: str | None = None
    environment: str | None = None

    def matches(self, claims: dict[str, Any]) -> bool:
        """True when the token's repository, workflow, ref and environment fit this rule."""
        if claims.get("repository") != self.repository:
            return False
        workflow_ref = str(claims.get("job_workflow_ref", ""))
        path = workflow_ref.split("@", 1)[0]
        if path != f"{self.repository}/.github/workflows/{self.workflow}":
            return False
        if self.ref is not None and not fnmatch.fnmatchcase(str(claims.get("ref", "")), self.ref):
            return False
        return self.environment is None or claims.get("environment") == self.environment


@dataclass(frozen=True)
class TrustedPublishing:
    """The parsed settings file."""

    issuer: str
    jwks: str
    audience: str
    token_minutes: int
    rules: tuple[PublisherRule, ...]


def load_trusted_publishing(path: Path) -> TrustedPublishing:
    """Read and validate the settings file; errors name the key and say how to fix it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the trusted publishing file {path}: {exc}") from None
    try:
        rules = tuple(_rule(item) for item in data.get("publisher", []))
        minutes = int(data.get("token_minutes", 15))
        config = TrustedPublishing(
            issuer=str(data["issuer"]),
            jwks=str(data["jwks"]),
            audience=str(data.get("audience", "releasekit")),
            token_minutes=minutes,
            rules=rules,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path}: invalid trusted publishing settings ({exc})",
            hint="set issuer and jwks, and give each [[publisher]] projects, repository, "
            "workflow and owner",
        ) from None
    if not 1 <= minutes <= 60:
        raise ConfigError(f"{path}: token_minutes must be between 1 and 60, not {minutes}")
    return config


def _rule(item: dict[str, Any]) -> PublisherRule:
    ref, environment = item.get("ref"), item.get("environment")
    return PublisherRule(
        projects=normalize_projects(item["projects"]),
        repository=str(item["repository"]),
        workflow=str(item["workflow"]),
        owner=str(item["owner"]),
        ref=None if ref is None else str(ref),
        environment=None if environment is None else str(environment),
    )


class KeySet:
    """The issuer's JWKS, from a URL (cached, re-read on an unknown kid) or a file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._keys: dict[str, Any] | None = None
        self._fetched = 0.0
        self._failed: tuple[float, KeysUnavailable] | None = None
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            if self.source.startswith(("http://", "https://")):
                with urllib.request.urlopen(self.source, timeout=JWKS_TIMEOUT) as response:  # noqa: S310
                    raw = response.read(MAX_JWKS_BYTES + 1)
            else:
                with Path(self.source).open("rb") as handle:
                    raw = handle.read(MAX_JWKS_BYTES + 1)
            if len(raw) > MAX_JWKS_BYTES:
                raise KeysUnavailable(f"the issuer's key set is larger than {MAX_JWKS_BYTES} bytes")
            data = json.loads(raw)
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the connection open otherwise
            raise KeysUnavailable(f"{self.source} answered HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise KeysUnavailable(
                f"cannot read the issuer's keys from {self.source}: {exc}"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise KeysUnavailable(f"{self.source} is not a JWKS document (no `keys` list)")
        return data

    def key_for(self, header: dict[str, Any]) -> dict[str, Any] | None:
        """The key the header names; a fresh copy is fetched when it is unknown or stale.

        A failed fetch is not retried for JWKS_FAILURE_HOLD seconds (a flood of tokens must not
        become a flood of requests to the issuer); the last good keys stay in use meanwhile.
        """
        with self._lock:
            now = time.monotonic()
            stale = self._keys is None or now - self._fetched > JWKS_TTL
            if not stale and self._keys is not None:
                key = find_key(self._keys, header)
                if key is not None or now - self._fetched < JWKS_RETRY:
                    return dict(key) if key is not None else None
            if self._failed is None or now - self._failed[0] >= JWKS_FAILURE_HOLD:
                try:
                    self._keys, self._fetched, self._failed = self._read(), now, None
                except KeysUnavailable as exc:
                    self._failed = (now, exc)
            if self._keys is None:
                raise self._failed[1] if self._failed else KeysUnavailable("no keys read yet")
            key = find_key(self._keys, header)
            return dict(key) if key is not None else None


class PublisherDenied(Exception):
    """A valid token that no publisher rule allows."""


class TrustedPublisher:
    """Verify a token, find its rule, mint the API token. One per app; thread-safe."""

    def __init__(self, config: TrustedPublishing, tokens_file: Path) -> None:
        self.config = config
        self.keys = KeySet(config.jwks)
        self.tokens_file = tokens_file
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def tokens_lock(self) -> Iterator[None]:
        """Hold while reading, changing and rewriting the tokens file: threads of this process,
        and other workers (`workers > 1`) through an flock on `<tokens file>.lock`."""
        with self._thread_lock:
            if fcntl is None:  # not POSIX: one process only
                yield
                return
            lock = self.tokens_file.with_name(self.tokens_file.name + ".lock")
            lock.parent.mkdir(parents=True, exist_ok=True)
            with lock.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def claims(self, token: str, now: float | None = None) -> dict[str, Any]:
        """The verified claims; TokenInvalid or KeysUnavailable otherwise."""
        header = unverified_header(token)
        jwk = self.keys.key_for(header)
        if jwk is None:
            raise TokenInvalid(f"the issuer has no key {header.get('kid')!r}")
        expect = Expectations(self.config.issuer, self.config.audience, now or time.time())
        return verify(token, jwk, expect)

    def mint(self, claims: dict[str, Any]) -> tuple[PublisherRule, NewToken]:
        """An `update` token for the first matching rule's projects; PublisherDenied if none."""
        rule = next((r for r in self.config.rules if r.matches(claims)), None)
        if rule is None:
            raise PublisherDenied(
                f"no trusted publisher matches repository {claims.get('repository')!r}, "
                f"workflow {claims.get('job_workflow_ref')!r}, ref {claims.get('ref')!r}"
            )
        now = datetime.now(UTC)
        with self.tokens_lock():
            self._prune(now)
            new = create_token(
                self.tokens_file,
                owner=rule.owner,
                projects=rule.projects,
                actions=("update",),
                expires=now + timedelta(minutes=self.config.token_minutes),
                description=f"{MINTED}{claims.get('job_workflow_ref', '')}"[:200],
                now=now,
            )
        return rule, new

    def _prune(self, now: datetime) -> None:
        """Drop expired minted tokens, so the tokens file does not grow with every CI run."""
        tokens = load_tokens(self.tokens_file)
        live = {
            ident: token
            for ident, token in tokens.items()
            if not token.description.startswith(MINTED)
            or token.expires is None
            or token.expires > now
        }
        if len(live) != len(tokens):
            save_tokens(self.tokens_file, live)
