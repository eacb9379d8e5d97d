"""Command registration: each command module adds itself to the root group here."""

from __future__ import annotations

import click


def register(root: click.Group) -> None:
    """Attach every command group to `root`; modules are imported here to keep startup cheap."""
