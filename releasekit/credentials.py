"""Where to publish and as whom: a Target from the config, `~/.pypirc`, the environment and keyring.

A repository is a NAME from `[tool.releasekit.repositories]`, else a NAME from `~/.pypirc`, else
an http(s) URL. Credentials are looked up field by field, first found wins:
`RELEASEKIT_USERNAME`/`RELEASEKIT_PASSWORD`, `TWINE_USERNAME`/`TWINE_PASSWORD`, the `~/.pypirc`
section, the configured username, the URL's user info, keyring. Secrets never reach a message.
"""

from __future__ import annotations

import configparser
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from releasekit.config import Config
from releasekit.errors import PublishError

TOKEN_USERNAME = "__token__"  # noqa: S105 -- the username of API tokens, not a secret
# PyPI's upload host is not where its simple API lives.
_KNOWN_SIMPLE = {
    "https://upload.pypi.org/legacy/": "https://pypi.org/simple/",
    "https://test.pypi.org/legacy/": "https://test.pypi.org/simple/",
}


@dataclass(frozen=True)
class Target:
    """One index to publish to: where uploads go, where to read back, and the credentials."""

    name: str | None
    upload_url: str
    simple_url: str
    username: str | None
    password: str | None = field(repr=False)

    def __repr__(self) -> str:
        password = "<set>" if self.password else None
        return (
            f"Target(name={self.name!r}, upload_url={self.upload_url!r}, "
            f"simple_url={self.simple_url!r}, username={self.username!r}, password={password})"
        )

    __str__ = __repr__

    @property
    def label(self) -> str:
        """How messages name this index: its repository name and upload URL."""
        return f"{self.name} ({self.upload_url})" if self.name else self.upload_url

    def scrub(self, text: str) -> str:
        """`text` with the username and password (also URL-encoded) replaced by `***`."""
        for secret in (self.password, self.username if self.username != TOKEN_USERNAME else None):
            # A one- or two-letter username would mangle every message; a password never is.
            if secret and (secret == self.password or len(secret) >= 3):
                for form in {secret, urllib.parse.quote(secret, safe="")}:
                    text = text.replace(form, "***")
        return text


def resolve_target(
    config: Config, repository: str | None, env: Mapping[str, str] | None = None
) -> Target:
    """The index named by `repository` (a config or ~/.pypirc name, or a URL), with credentials."""
    environ = os.environ if env is None else env
    pypirc = _read_pypirc(environ)
    name, url, config_username = _locate(config, repository, pypirc, environ)
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise PublishError(
            f"repository URL {_strip_userinfo(url)!r} is not an http(s) URL",
            hint="use e.g. https://pypi.internal.example/ or a name from [tool.releasekit.repositories]",
        )
    url_username = urllib.parse.unquote(parsed.username) if parsed.username else None
    url_password = urllib.parse.unquote(parsed.password) if parsed.password else None
    upload_url, simple_url = index_endpoints(_strip_userinfo(url))
    section = _pypirc_section(pypirc, name, upload_url)
    username = _first(
        environ.get("RELEASEKIT_USERNAME"),
        environ.get("TWINE_USERNAME"),
        section.get("username"),
        config_username,
        url_username,
    )
    password = _first(
        environ.get("RELEASEKIT_PASSWORD"),
        environ.get("TWINE_PASSWORD"),
        section.get("password"),
        url_password,
    )
    if password is None:
        username, password = _from_keyring(upload_url, username)
    if password is not None and username is None:
        username = TOKEN_USERNAME
    return Target(name, upload_url, simple_url, username, password)


def _locate(
    config: Config,
    repository: str | None,
    pypirc: configparser.RawConfigParser,
    environ: Mapping[str, str],
) -> tuple[str | None, str, str | None]:
    """(name, url, configured username) of the repository asked for, or the default one."""
    if repository is None:
        repository = config.default_repository
    if repository is None:
        url = _first(environ.get("RELEASEKIT_REPOSITORY_URL"), environ.get("TWINE_REPOSITORY_URL"))
        if url is not None:
            return None, url, None
        repository = _first(environ.get("TWINE_REPOSITORY"))
    if repository is None:
        raise PublishError(
            "no repository to publish to",
            hint="pass --repository NAME|URL, set default_repository in [tool.releasekit], "
            "or set RELEASEKIT_REPOSITORY_URL",
        )
    if repository in config.repositories:
        entry = config.repositories[repository]
        return repository, entry.url, entry.username
    if pypirc.has_section(repository) and repository != "distutils":
        url = pypirc.get(repository, "repository", fallback=None)
        if not url:
            raise PublishError(
                f"section [{repository}] of ~/.pypirc has no repository URL",
                hint=f"add repository = https://... under [{repository}]",
            )
        return repository, url, None
    if "://" in repository:
        return None, repository, None
    known = sorted({*config.repositories, *(s for s in pypirc.sections() if s != "distutils")})
    raise PublishError(
        f"unknown repository {repository!r}",
        hint=f"known repositories: {', '.join(known)}"
        if known
        else "add [tool.releasekit.repositories.NAME] url = ..., or pass a URL",
    )


def index_endpoints(url: str) -> tuple[str, str]:
    """(upload URL, simple API URL) for a base, `/legacy/` or `/simple/` URL."""
    base = url if url.endswith("/") else url + "/"
    if base in _KNOWN_SIMPLE:
        return base, _KNOWN_SIMPLE[base]
    if base.endswith("/simple/"):
        return base.removesuffix("simple/"), base
    return base, base.removesuffix("legacy/") + "simple/"


def _strip_userinfo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _read_pypirc(environ: Mapping[str, str]) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()  # raw: passwords may contain '%'
    home = environ.get("HOME")
    path = (Path(home) if home else Path.home()) / ".pypirc"
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        # configparser errors quote the offending line, which may hold a password.
        raise PublishError(
            f"{path} is malformed", hint="see https://packaging.python.org/specifications/pypirc/"
        ) from None
    return parser


def _pypirc_section(
    pypirc: configparser.RawConfigParser, name: str | None, upload_url: str
) -> dict[str, str]:
    """The ~/.pypirc section of `name`, else the one whose repository is this upload URL."""
    if name and pypirc.has_section(name) and name != "distutils":
        return dict(pypirc.items(name))
    for section in pypirc.sections():
        url = pypirc.get(section, "repository", fallback="")
        if url and index_endpoints(_strip_userinfo(url))[0] == upload_url:
            return dict(pypirc.items(section))
    return {}


def _from_keyring(upload_url: str, username: str | None) -> tuple[str | None, str | None]:
    try:
        import keyring
        import keyring.errors
    except ImportError:  # keyring is optional in twine on some platforms
        return username, None
    try:
        if username is not None:
            return username, keyring.get_password(upload_url, username)
        credential = keyring.get_credential(upload_url, None)
    except keyring.errors.KeyringError:
        return username, None
    if credential is None:
        return username, None
    return credential.username or None, credential.password or None


def _first(*values: str | None) -> str | None:
    return next((value for value in values if value), None)
