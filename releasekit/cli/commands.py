"""Command registration: each command module adds itself to the root group here."""

from __future__ import annotations

import click


def register(root: click.Group) -> None:
    """Attach every command and group to `root`.

    The server group imports no server dependency at import time, so `releasekit` works
    without the `[server]` extra; `server run` explains how to install it.
    """
    from releasekit.cli.release_cmds import COMMANDS
    from releasekit.server.cli import server

    for command in COMMANDS:
        root.add_command(command)
    root.add_command(server)
