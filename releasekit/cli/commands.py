"""Command registration: each command module adds itself to the root group here."""

from __future__ import annotations

import click


def register(root: click.Group) -> None:
    """Attach every command and group to `root`."""
    from releasekit.cli.release_cmds import COMMANDS

    for command in COMMANDS:
        root.add_command(command)
