"""What users install must work: the clean-install check, and every import declared.

The check (scripts/clean_install_check.py) installs the built wheel into fresh virtualenvs, so
an import that only the development environment satisfies fails it. The scan below also catches
an import that works only because another dependency happens to pull its package in.
"""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
# Imported inside `try: ... except ImportError` with a fallback, so not required.
OPTIONAL_IMPORTS = {"keyring"}


@pytest.mark.e2e
def test_the_built_wheel_works_in_a_clean_virtualenv() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "clean_install_check.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean-install check passed" in result.stdout


def _third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names} - {
        "releasekit",
        "__future__",
    }


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime: set[str] = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    # The server's extras: `server`, and `s3` for the object-storage backend (s3.py only).
    extras = project["optional-dependencies"]
    server: set[str] = {
        canonicalize_name(Requirement(r).name) for name in ("server", "s3") for r in extras[name]
    }
    return runtime, runtime | server


@pytest.mark.parametrize(
    "module",
    sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "releasekit").rglob("*.py")),
)
def test_every_import_is_a_declared_dependency(module: str) -> None:
    """releasekit/server/ may use the server extra; everything else only the runtime deps."""
    runtime, with_server = _declared()
    allowed = with_server if module.startswith("releasekit/server/") else runtime
    distributions = importlib.metadata.packages_distributions()
    undeclared = []
    for name in sorted(_third_party_imports(ROOT / module) - OPTIONAL_IMPORTS):
        provided_by = {canonicalize_name(d) for d in distributions.get(name, [name])}
        if not provided_by & allowed:
            undeclared.append(f"{name} (from {', '.join(sorted(provided_by))})")
    assert not undeclared, f"{module} imports undeclared packages: {undeclared}"
