"""`version --print` imports only what it uses (speed lives in benchmarks/, this guards the cause)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import GitRepo

HEAVY = ("git", "tomlkit", "twine", "build", "requests", "jinja2", "starlette", "packaging.tags")
PROBE = """
import sys
from releasekit.cli import main
try:
    main(["-C", sys.argv[1], "version", "--print"])
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = sorted(name for name in sys.argv[2:] if name in sys.modules)
print("imported:", " ".join(heavy))
"""


def test_version_print_imports_no_heavy_module(project: GitRepo) -> None:
    project.tag("v0.1.0")
    project.commit("feat: x")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(project.path), *HEAVY],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0.2.0", "imported: "]
