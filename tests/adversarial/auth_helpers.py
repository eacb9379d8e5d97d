"""Shared pieces of the login tests: users of every role, tokens, and an in-process index.

Kept out of conftest.py on purpose (that file belongs to the upload half of the suite).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
from starlette.testclient import TestClient

from releasekit.server.app import authenticator_from, create_app
from releasekit.server.localstore import LocalStorage
from releasekit.server.settings import Settings, load_settings
from releasekit.server.tokens import create_token

ROLES = {"root": "admin", "ci": "upload", "reader": "read"}
COST = 4  # the lowest bcrypt cost: the matrix checks hundreds of passwords


def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header for HTTP Basic."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


class Clock:
    """A monotonic clock the test moves by hand (throttle blocks, cache lifetimes)."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Accounts:
    """An htpasswd file with one user per role, and the tokens made for them."""

    passwords: Path
    tokens_file: Path
    tokens: dict[str, str]  # name -> token value

    def header(self, who: str) -> dict[str, str]:
        """Credentials of a named principal (see `make_accounts`)."""
        if who in self.tokens:
            return basic("__token__", self.tokens[who])
        return basic(who, f"{who}-secret")


def make_accounts(directory: Path) -> Accounts:
    """root (admin), ci (upload), reader (read), and tokens: ci-any (update, every project),
    ci-alpha (update, alpha only), reader-token (list+download), expired (update, past)."""
    passwords = directory / "htpasswd"
    lines = [
        f"{name}:{bcrypt.hashpw(f'{name}-secret'.encode(), bcrypt.gensalt(COST)).decode()}"
        for name in ROLES
    ]
    passwords.write_text("\n".join(lines) + "\n", encoding="utf-8")
    passwords.with_name("htpasswd.roles.toml").write_text(
        "[roles]\n" + "".join(f'{n} = "{r}"\n' for n, r in ROLES.items()), encoding="utf-8"
    )
    tokens_file = directory / "tokens.json"
    past = datetime.now(UTC) - timedelta(days=2)
    specs: dict[str, dict[str, Any]] = {
        "ci-any": {"owner": "ci", "actions": ("update", "list", "download")},
        "ci-alpha": {"owner": "ci", "projects": ("alpha",), "actions": ("update",)},
        "reader-token": {"owner": "reader", "actions": ("list", "download")},
        "root-token": {"owner": "root", "actions": ("admin", "update", "list", "download")},
        "expired": {"owner": "ci", "actions": ("update", "list", "download")},
    }
    tokens = {}
    for name, spec in specs.items():
        made = create_token(tokens_file, now=past if name == "expired" else None, **spec)
        tokens[name] = made.value
    # An expiry in the past cannot be created through the API: write it into the file.
    text = tokens_file.read_text(encoding="utf-8")
    expired_id = tokens["expired"].split("_")[1]
    marker = f'"id": "{expired_id}"'
    head, tail = text.split(marker, 1)
    tail = tail.replace('"expires": null', f'"expires": "{past:%Y-%m-%dT%H:%M:%SZ}"', 1)
    tokens_file.write_text(head + marker + tail, encoding="utf-8")
    return Accounts(passwords, tokens_file, tokens)


def index_settings(packages: Path, accounts: Accounts, **values: Any) -> Settings:
    """Settings of an index over `packages` that knows `accounts`."""
    base: dict[str, Any] = {
        "packages_dir": packages,
        "passwords": accounts.passwords,
        "tokens_file": accounts.tokens_file,
        "poll_interval": 0.05,
    }
    return load_settings({**base, **values}, env={})


@contextmanager
def in_process(
    settings: Settings, clock: Clock | None = None, address: str = "192.0.2.10"
) -> Iterator[TestClient]:
    """The app over `settings` in process (lifespan run), requests coming from `address`."""
    overrides = {} if clock is None else {"clock": clock}
    app = create_app(
        LocalStorage(settings.packages_dir), settings, authenticator_from(settings, **overrides)
    )
    with TestClient(app, client=(address, 40000)) as client:
        yield client


def from_address(client: TestClient, address: str) -> TestClient:
    """Another client of the same running app, whose requests come from `address`."""
    other = TestClient(client.app, client=(address, 40000))
    other.portal = client.portal  # share the running event loop and lifespan
    return other
