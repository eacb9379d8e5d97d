"""Fixtures of the hostile-input suite: the index fixtures of tests/server, re-used as they are."""

from __future__ import annotations

from tests.server.conftest import (  # noqa: F401  (pytest finds fixtures by name)
    client,
    dists,
    make_client,
    open_settings,
    packages,
    users,
)
