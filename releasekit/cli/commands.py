"""Command registration: each command module adds itself to the root group here."""

from __future__ import annotations

from typing import Any

# Groups imported on first use: `releasekit version --print` stays fast, and `releasekit`
# works without the `[server]` extra (`server run` explains how to install it).
LAZY_GROUPS = {
    "server": "releasekit.cli.server_cmds:server",
    "client": "releasekit.cli.client_cmds:client_group",
    "forge": "releasekit.cli.forge_cmds:forge_group",
    "init": "releasekit.cli.init_cmd:init_cmd",
    "bundle": "releasekit.cli.bundle_cmds:bundle_group",
    "promote": "releasekit.cli.promote_cmd:promote_cmd",
}


def register(root: Any) -> None:
    """Attach the release commands to `root` and declare the lazily imported groups."""
    from releasekit.cli.release_cmds import COMMANDS

    for command in COMMANDS:
        root.add_command(command)
    root.lazy.update(LAZY_GROUPS)
