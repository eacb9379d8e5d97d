"""Which optional extra provides a module, so a missing one is an error that names the install.

releasekit installs with its release engine only; `releasekit[server]` adds the index. A command
that needs a module of an extra that is not installed is refused with the pip command to run,
instead of a ModuleNotFoundError traceback. Modules not listed here are required dependencies:
a missing one is a packaging bug and stays a traceback (the clean-install check catches it).
"""

from __future__ import annotations

from releasekit.errors import MissingExtraError

# Top-level import name -> extra. Every requirement of an extra in pyproject.toml has its
# import names here (tests/test_extras.py checks both directions).
EXTRA_OF_MODULE = {
    "starlette": "server",
    "uvicorn": "server",
    "httptools": "server",
    "uvloop": "server",
    "multipart": "server",
    "python_multipart": "server",
    "bcrypt": "server",
    "prometheus_client": "server",
    "httpx2": "server",
}


def missing_extra(exc: ModuleNotFoundError, command: str) -> MissingExtraError | None:
    """The error to show when `exc` is a module of an extra; None for any other module."""
    module = (exc.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    return MissingExtraError(
        f"`{command}` needs the {extra} extra ({module} is not installed):"
        f" pip install 'releasekit[{extra}]'"
    )
