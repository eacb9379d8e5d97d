"""Versions (PEP 440 out, PEP 440 or semver in) and the bump rules of design §3.  (pure)"""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    """How much a set of changes moves the version."""

    NONE = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3
