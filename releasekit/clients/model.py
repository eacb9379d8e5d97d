"""The values of `client setup`: options, index URLs, credentials, file changes and commands.

A setup is planned first (`SetupPlan`: every file change as before/after text and every command
as an argv) and applied afterwards, so `--dry-run` is the plan printed instead of applied.
Secrets live in `Credentials.password` and `Command.stdin` only, both hidden from `repr`, and
every text meant for a person goes through `redact` first.
"""

from __future__ import annotations

import difflib
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from releasekit.credentials import index_endpoints
from releasekit.errors import ConfigError, IndexServerError
from releasekit.server.indexes import check_name

Tool = Literal["pip", "poetry", "uv", "pypirc"]
Mode = Literal["primary", "extra"]
ALL_TOOLS: tuple[Tool, ...] = ("pip", "poetry", "uv", "pypirc")
TOKEN_USERNAME = "__token__"  # noqa: S105 -- the username API tokens go with, not a secret


@dataclass(frozen=True)
class IndexUrls:
    """Where clients read packages (`simple`) and where twine/poetry upload them (`upload`)."""

    simple: str
    upload: str

    @property
    def host(self) -> str:
        """The host name alone: what netrc and pip's `trusted-host` match on."""
        return urllib.parse.urlsplit(self.simple).hostname or ""

    @property
    def is_plain_http(self) -> bool:
        return self.simple.startswith("http://")


def index_urls(url: str, index: str | None = None) -> IndexUrls:
    """The simple and upload URLs of an index given by its base, `/simple/` or `/legacy/` URL.

    With `index` (a named index on a releasekit server), `url` is the server's base URL, with
    or without a trailing `simple/` or `legacy/`, and the URLs are `<base>/<index>/simple/` and
    `<base>/<index>/legacy/`. This is the one place client URLs are derived.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"index URL {url!r} is not an http(s) URL",
            hint="pass e.g. --index-url https://pypi.internal.example/simple/",
        )
    if parts.username or parts.password:
        # A URL with credentials ends up in config files, shell history and logs.
        raise ConfigError(
            "the index URL must not carry credentials",
            hint="pass the URL without user:password@ and use --username with --password-env",
        )
    bare = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    if index is not None:
        return _named_index_urls(bare, index)
    upload, simple = index_endpoints(bare)
    return IndexUrls(simple=simple, upload=upload)


def _named_index_urls(base: str, index: str) -> IndexUrls:
    # The server's own rule (indexes.py), so setup never writes a URL the server cannot serve;
    # `root` is the default index, also served at <base>/root/.
    try:
        check_name(index, allow_root=True)
    except IndexServerError as exc:
        raise ConfigError(
            f"{index!r} is not an index name ({exc.message})", hint=exc.hint
        ) from None
    base = base if base.endswith("/") else base + "/"
    for suffix in ("simple/", "legacy/"):
        base = base.removesuffix(suffix)
    return IndexUrls(simple=f"{base}{index}/simple/", upload=f"{base}{index}/legacy/")


@dataclass(frozen=True)
class Credentials:
    """A username and its password or API token, read from an environment variable."""

    username: str
    password: str = field(repr=False)
    source: str  # the environment variable the secret came from, for messages

    @property
    def is_token(self) -> bool:
        return self.username == TOKEN_USERNAME


@dataclass(frozen=True)
class SetupOptions:
    """What `client setup` was asked to do."""

    index_url: str
    name: str = "private-pypi"
    index: str | None = None  # a named index on the server (`<base>/<index>/simple/`)
    username: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    tools: tuple[Tool, ...] = ALL_TOOLS
    mode: Mode = "primary"
    project: Path | None = None
    ca_cert: Path | None = None  # a CA bundle (PEM) for an index with a self-signed certificate


def check_ca_cert(path: Path) -> Path:
    """The absolute path of a readable PEM CA bundle, or a ConfigError saying what to pass."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the CA certificate {path}: {exc.strerror}",
            hint="pass the certificate that signed the index's TLS certificate (PEM), e.g. "
            "the cert.pem that scripts/setup-private-pypi.sh --tls made",
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(
            f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            hint="convert it with: openssl x509 -in CERT -out cert.pem -outform PEM",
        )
    return path.resolve()


def read_credentials(options: SetupOptions, env: Mapping[str, str]) -> Credentials | None:
    """The credentials named by the options, with the secret read from its variable."""
    variable = options.password_env or options.token_env
    if variable is None:
        return None
    secret = env.get(variable)
    if not secret:
        raise ConfigError(
            f"environment variable {variable} is not set or empty",
            hint=f"export {variable}=... (the secret is read from it and never printed)",
        )
    if options.token_env is not None:
        return Credentials(options.username or TOKEN_USERNAME, secret, variable)
    if not options.username:
        raise ConfigError("--password-env needs --username", hint="pass --username USER")
    return Credentials(options.username, secret, variable)


@dataclass(frozen=True)
class FileChange:
    """A whole-file change; `before` is None for a new file, `mode` is enforced when set."""

    path: Path
    display: str
    before: str | None
    after: str
    mode: int | None = None

    def diff(self, secrets: Sequence[str] = ()) -> str:
        """A unified diff of the change, with every secret masked."""
        lines = difflib.unified_diff(
            (self.before or "").splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile="/dev/null" if self.before is None else self.display,
            tofile=self.display,
        )
        text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        return redact(text, secrets)


@dataclass(frozen=True)
class Command:
    """A command to run; `stdin` (a secret, if any) is fed to it and never shown."""

    argv: tuple[str, ...]
    stdin: str | None = field(default=None, repr=False)

    def display(self, secrets: Sequence[str] = ()) -> str:
        shown = " ".join(_shell_word(arg) for arg in self.argv)
        return redact(shown + (" < (secret on stdin)" if self.stdin else ""), secrets)


@dataclass(frozen=True)
class ToolPlan:
    """Everything setting up one client takes: file changes, commands, notes and warnings."""

    tool: Tool
    changes: tuple[FileChange, ...] = ()
    commands: tuple[Command, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    manual: tuple[str, ...] = ()  # steps left to the user (e.g. the client is not installed)


@dataclass(frozen=True)
class SetupPlan:
    """The whole setup; `secrets` are the values every rendering must mask."""

    urls: IndexUrls
    tools: tuple[ToolPlan, ...]
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def changes(self) -> tuple[FileChange, ...]:
        return tuple(change for tool in self.tools for change in tool.changes)

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(command for tool in self.tools for command in tool.commands)


_NETRC_SECRET = re.compile(r"\b(password|account)(\s+)(?![=:])\S+")
_INI_SECRET = re.compile(r"(?im)^(\s*password\s*[=:]).*$")
_URL_SECRET = re.compile(r"(://[^/\s:@]*):[^@/\s]+@")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` with the given secrets and any password field or URL password replaced by ***."""
    for secret in secrets:
        if secret:
            for form in {secret, urllib.parse.quote(secret, safe="")}:
                text = text.replace(form, "***")
    text = _INI_SECRET.sub(r"\1 ***", text)
    text = _NETRC_SECRET.sub(r"\1\2***", text)
    return _URL_SECRET.sub(r"\1:***@", text)


def home_dir(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def config_home(env: Mapping[str, str]) -> Path:
    """$XDG_CONFIG_HOME, else ~/.config: where pip, uv and poetry keep user config on Linux."""
    xdg = env.get("XDG_CONFIG_HOME")
    return Path(xdg) if xdg and Path(xdg).is_absolute() else home_dir(env) / ".config"


def display_path(path: Path, env: Mapping[str, str]) -> str:
    """`path` with the home directory shown as `~`."""
    try:
        return "~/" + path.relative_to(home_dir(env)).as_posix()
    except ValueError:
        return str(path)


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.__class__.__name__}", hint="fix or move the file"
        ) from None


def _shell_word(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./~-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"
