"""pip: the user pip.conf (`[global]` index-url or extra-index-url) and ~/.netrc credentials.

pip.conf never receives a secret: pip reads credentials from netrc or keyring, so the password
goes to ~/.netrc (mode 0600) only when one is given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from releasekit.clients.ini import ini_get, ini_set, parse_ini
from releasekit.clients.model import (
    Credentials,
    FileChange,
    IndexUrls,
    SetupOptions,
    ToolPlan,
    config_home,
    display_path,
    home_dir,
    read_text,
    redact,
)
from releasekit.errors import ConfigError

DEPENDENCY_CONFUSION = (
    "extra mode: pip merges --extra-index-url with PyPI and installs the highest version found "
    "on either, so anyone who publishes one of your private names on PyPI with a higher version "
    "gets installed (dependency confusion). Prefer --mode primary (the private index serves "
    "everything, public packages included), uv (an index listed first is searched first: a name "
    "found there is never taken from PyPI), or poetry sources with priority explicit."
)


def pip_config_path(env: Mapping[str, str]) -> Path:
    """The user config file pip reads: ~/.config/pip/pip.conf, or a legacy ~/.pip/pip.conf."""
    legacy = home_dir(env) / ".pip" / "pip.conf"
    current = config_home(env) / "pip" / "pip.conf"
    # pip reads both (the XDG one last, so it wins); keep using a legacy file people already have.
    return legacy if legacy.exists() and not current.exists() else current


def plan_pip(
    options: SetupOptions, urls: IndexUrls, credentials: Credentials | None, env: Mapping[str, str]
) -> ToolPlan:
    """pip.conf pointing at the index (and ~/.netrc when credentials are given)."""
    path = pip_config_path(env)
    display = display_path(path, env)
    before = read_text(path)
    parser = parse_ini(before or "", display)
    text = before or ""
    warnings: list[str] = []
    notes: list[str] = []
    if options.mode == "primary":
        current = ini_get(parser, "global", "index-url")
        if current != urls.simple:
            if current:
                warnings.append(f"{display}: replacing index-url {redact(current)}")
            text = ini_set(text, "global", "index-url", [urls.simple])
        notes.append(
            f"pip installs only from {urls.simple} now: public dependencies must be on that "
            "index too (an offline bundle or a PyPI proxy behind it)"
        )
    else:
        extras = (ini_get(parser, "global", "extra-index-url") or "").split()
        if urls.simple not in extras:
            text = ini_set(text, "global", "extra-index-url", [*extras, urls.simple])
        warnings.append(DEPENDENCY_CONFUSION)
    if options.ca_cert is not None and ini_get(parser, "global", "cert") != str(options.ca_cert):
        # pip verifies the index's certificate against this bundle instead of certifi's.
        text = ini_set(text, "global", "cert", [str(options.ca_cert)])
    if urls.is_plain_http:
        netloc = urls.simple.split("/")[2]
        hosts = (ini_get(parser, "global", "trusted-host") or "").split()
        if netloc not in hosts:
            text = ini_set(text, "global", "trusted-host", [*hosts, netloc])
        warnings.append("plain http: passwords and packages travel unencrypted; use https")
    for section in parser.sections():
        for key in ("index-url", "extra-index-url"):
            if section != "global" and ini_get(parser, section, key):
                warnings.append(
                    f"[{section}] {key} in {display} overrides [global] for that command"
                )
    overriding = ["PIP_CONFIG_FILE", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"]
    if options.ca_cert is not None:  # requests itself prefers the last two over pip's cert
        overriding += ["PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]
    for variable in overriding:
        if env.get(variable):
            warnings.append(f"{variable} is set and overrides {display}")
    changes = [FileChange(path, display, before, text)] if text != (before or "") else []
    if credentials is not None:
        netrc = plan_netrc(urls.host, credentials, env)
        changes += [netrc] if netrc else []
        notes.append(f"pip and uv read the credentials for {urls.host} from ~/.netrc")
    else:
        notes.append(
            f"pip.conf holds no secrets: put credentials for {urls.host} in ~/.netrc (mode 600: "
            f"'machine {urls.host} login USER password ...'; or rerun with --username and "
            "--password-env) or in keyring (keyring set URL USER, pip --keyring-provider import)"
        )
    return ToolPlan("pip", tuple(changes), (), tuple(notes), tuple(warnings))


_TOKEN = re.compile(r"#[^\n]*|\S+")
_ENTRY_START = {"machine", "default", "macdef"}


def plan_netrc(host: str, credentials: Credentials, env: Mapping[str, str]) -> FileChange | None:
    """A ~/.netrc with `machine host` set to the credentials; None when it already is."""
    for value in (credentials.username, credentials.password):
        if not value or re.search(r"[\s\"'#\\]", value):
            raise ConfigError(
                "the username or password contains a character netrc cannot hold",
                hint="store the credentials in keyring instead (keyring set URL USER)",
            )
    path = home_dir(env) / ".netrc"
    before = read_text(path) or ""
    entry = f"machine {host}\n  login {credentials.username}\n  password {credentials.password}"
    tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(before)]
    tokens = [token for token in tokens if not token[0].startswith("#")]
    for index, (word, start, _) in enumerate(tokens):
        if word == "machine" and index + 1 < len(tokens) and tokens[index + 1][0] == host:
            last = index + 2
            while last < len(tokens) and tokens[last][0] not in _ENTRY_START:
                last += 1
            fields = dict(
                zip(
                    _words(tokens[index + 2 : last : 2]),
                    _words(tokens[index + 3 : last : 2]),
                    strict=False,
                )
            )
            if (
                fields.get("login") == credentials.username
                and fields.get("password") == credentials.password
            ):
                return None
            after = before[:start] + entry + before[tokens[last - 1][2] :]
            break
    else:
        gap = (
            ""
            if not before or before.endswith("\n\n")
            else ("\n" if before.endswith("\n") else "\n\n")
        )
        after = before + gap + entry + "\n"
    return FileChange(path, display_path(path, env), before or None, after, mode=0o600)


def _words(tokens: list[tuple[str, int, int]]) -> list[str]:
    return [word for word, _, _ in tokens]
