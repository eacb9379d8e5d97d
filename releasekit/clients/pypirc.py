"""twine: a `[NAME]` section in ~/.pypirc (repository and username), listed in index-servers.

No password is written: twine takes it from TWINE_PASSWORD or keyring.
"""

from __future__ import annotations

from collections.abc import Mapping

from releasekit.clients.ini import ini_get, ini_set, parse_ini
from releasekit.clients.model import (
    Credentials,
    FileChange,
    IndexUrls,
    SetupOptions,
    ToolPlan,
    display_path,
    home_dir,
    read_text,
)


def plan_pypirc(
    options: SetupOptions, urls: IndexUrls, credentials: Credentials | None, env: Mapping[str, str]
) -> ToolPlan:
    """The ~/.pypirc section twine uploads with (`twine upload -r NAME`)."""
    name = options.name
    path = home_dir(env) / ".pypirc"
    display = display_path(path, env)
    before = read_text(path)
    parser = parse_ini(before or "", display)
    text = before or ""
    servers = (ini_get(parser, "distutils", "index-servers") or "").split()
    if name not in servers:
        text = ini_set(text, "distutils", "index-servers", [*servers, name])
    if ini_get(parser, name, "repository") != urls.upload:
        text = ini_set(text, name, "repository", [urls.upload])
    username = credentials.username if credentials else options.username
    if username and ini_get(parser, name, "username") != username:
        text = ini_set(text, name, "username", [username])
    if options.ca_cert is not None and ini_get(parser, name, "ca_cert") != str(options.ca_cert):
        text = ini_set(text, name, "ca_cert", [str(options.ca_cert)])
    warnings = []
    if ini_get(parser, name, "password"):
        warnings.append(
            f"[{name}] in {display} holds a plain-text password; remove it and use "
            "TWINE_PASSWORD or keyring"
        )
    source = f'"${credentials.source}"' if credentials else "..."
    user = username or "USER"
    notes = (
        f"upload with: twine upload -r {name} dist/*; .pypirc holds no password: twine reads "
        f"it from TWINE_PASSWORD (export TWINE_PASSWORD={source}) or keyring "
        f"(keyring set {urls.upload} {user})",
    )
    changes = (FileChange(path, display, before, text),) if text != (before or "") else ()
    return ToolPlan("pypirc", changes, (), notes, tuple(warnings))
