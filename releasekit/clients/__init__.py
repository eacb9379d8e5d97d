"""Point pip, poetry, uv and twine at a private index (`client setup`), and test it (`client check`).

model.py    options, index URLs, credentials, FileChange / Command / SetupPlan, redact
ini.py      line-preserving edits of pip.conf and .pypirc
pip.py      user pip.conf and ~/.netrc        uv.py      uv.toml or [tool.uv.index]
poetry.py   poetry config commands, source    pypirc.py  ~/.pypirc for twine
setup.py    plan_client_setup / apply_client_setup
check.py    check_index
"""

from __future__ import annotations

from releasekit.clients.check import ClientCheck, IndexReport, check_index
from releasekit.clients.model import (
    ALL_TOOLS,
    Command,
    Credentials,
    FileChange,
    IndexUrls,
    SetupOptions,
    SetupPlan,
    ToolPlan,
    index_urls,
    read_credentials,
    redact,
)
from releasekit.clients.poetry import poetry_source_block
from releasekit.clients.setup import AppliedSetup, apply_client_setup, plan_client_setup

__all__ = [
    "ALL_TOOLS",
    "AppliedSetup",
    "ClientCheck",
    "Command",
    "Credentials",
    "FileChange",
    "IndexReport",
    "IndexUrls",
    "SetupOptions",
    "SetupPlan",
    "ToolPlan",
    "apply_client_setup",
    "check_index",
    "index_urls",
    "plan_client_setup",
    "poetry_source_block",
    "read_credentials",
    "redact",
]
