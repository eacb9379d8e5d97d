"""A command whose extra is missing says, in one `error:` line, which extra to install.

The real thing (a virtualenv without the extra) is exercised by scripts/clean_install_check.py;
here the extra's modules are hidden from a subprocess so the refusal is fast to test.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from releasekit.extras import EXTRA_OF_MODULE

ROOT = Path(__file__).resolve().parent.parent
INSTALL_LINE = "pip install 'releasekit[server]'"


def _without(modules: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI with `modules` unimportable, as in an environment without the extra."""
    code = (
        "import sys\n"
        f"for name in {modules!r}: sys.modules[name] = None\n"
        "from releasekit.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _server_extra() -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [Requirement(text) for text in pyproject["project"]["optional-dependencies"]["server"]]


def test_every_module_of_the_server_extra_is_mapped_and_nothing_else() -> None:
    distributions = importlib.metadata.packages_distributions()
    wanted = {req.name.lower().replace("_", "-") for req in _server_extra()}
    mapped = {
        dist.lower().replace("_", "-")
        for module in EXTRA_OF_MODULE
        for dist in distributions.get(module, [])
    }
    assert mapped == wanted
    assert set(EXTRA_OF_MODULE.values()) == {"server"}


def test_a_server_command_without_the_extra_names_the_install_and_changes_nothing(
    tmp_path: Path,
) -> None:
    passwords = tmp_path / "htpasswd"
    result = _without(
        sorted(EXTRA_OF_MODULE),
        "server",
        "user",
        "add",
        "-P",
        str(passwords),
        "alice",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: `releasekit server` needs the server extra")
    assert lines[0].endswith(INSTALL_LINE)
    assert list(tmp_path.iterdir()) == []


def test_help_lists_the_server_group_as_unavailable(tmp_path: Path) -> None:
    result = _without(sorted(EXTRA_OF_MODULE), "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    server_line = next(line for line in result.stdout.splitlines() if "server" in line)
    assert INSTALL_LINE in server_line


def test_a_module_missing_at_run_time_is_refused_the_same_way(tmp_path: Path) -> None:
    # The server group imports, but `run` needs starlette to build the app.
    result = _without(
        ["starlette"], "server", "run", str(tmp_path / "pkgs"), "-p", "0", cwd=tmp_path
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: `releasekit server` needs the server extra (starlette is not installed): {INSTALL_LINE}"
    ], result.stderr
    assert "Traceback" not in result.stderr
