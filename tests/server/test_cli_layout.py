"""Where the server's commands live, and one spelling of the packages directory on each."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import releasekit.server
from releasekit.cli.server_cmds import server
from releasekit.errors import IndexServerError
from tests.server.conftest import Dists, snapshot

WHEEL = "alpha-1.0-py3-none-any.whl"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_server_package_never_imports_click() -> None:
    root = Path(releasekit.server.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in sorted(root.rglob("*.py"))
        if any(name == "click" or name.startswith("click.") for name in _imports(path))
    ]
    assert offenders == []


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(_commands(command, f"{prefix}{name} "))
        else:
            found[prefix + name] = command
    return found


def test_every_admin_command_takes_dash_d() -> None:
    # `user ...` works on the htpasswd file (-P), not on a packages directory.
    admin = {name: c for name, c in _commands(server).items() if not name.startswith("user ")}
    assert {"run", "reindex", "yank", "unyank", "remove", "status", "migrate", "token list"} <= set(
        admin
    )
    for name, command in admin.items():
        options = {opt for param in command.params for opt in param.opts}
        assert {"-D", "--packages-dir"} <= options, name


@pytest.fixture
def filled(packages: Path, dists: Dists) -> Path:
    for file in dists.directory.iterdir():
        shutil.copy(file, packages)
    return packages


def test_reindex_takes_dash_d_and_still_the_old_positional(filled: Path) -> None:
    for args in (["-D", str(filled)], [str(filled)], [str(filled), "-D", str(filled)]):
        result = CliRunner().invoke(server, ["reindex", *args])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("indexed ")
    assert "[PACKAGES_DIR]" not in CliRunner().invoke(server, ["reindex", "--help"]).output


def test_two_different_packages_directories_are_refused(filled: Path, tmp_path: Path) -> None:
    before = snapshot(filled)
    other = tmp_path / "other"
    for command in ("reindex", "run"):
        result = CliRunner().invoke(server, [command, str(filled), "-D", str(other)])
        assert result.exit_code == 2
        assert "two packages directories given" in result.output and "pass one" in result.output
    assert snapshot(filled) == before and not other.exists()


def test_migrate_copies_from_dash_d_and_wants_one_source(filled: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    for args in ([], ["--from", str(filled), "-D", str(filled)]):
        result = CliRunner().invoke(server, ["migrate", "--to", str(target), *args])
        assert result.exit_code == 2 and "name the store to copy once" in result.output
        assert not target.exists()
    result = CliRunner().invoke(server, ["migrate", "-D", str(filled), "--to", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / WHEEL).read_bytes() == (filled / WHEEL).read_bytes()


def test_yank_with_dash_d(filled: Path) -> None:
    result = CliRunner().invoke(server, ["yank", "alpha", "1.0", "-D", str(filled)])
    assert result.exit_code == 0, result.output
    assert f"yanked {WHEEL}" in result.stdout


def test_token_revoke_takes_the_id_as_list_prints_it(tmp_path: Path) -> None:
    runner = CliRunner()
    directory = ["-D", str(tmp_path / "pk")]
    ids = []
    for _ in range(2):
        created = runner.invoke(server, ["token", "create", "--owner", "ci", *directory])
        assert created.exit_code == 0, created.output
        ids.append(created.stdout.strip().split("_")[1])
    listed = runner.invoke(server, ["token", "list", *directory]).stdout.splitlines()
    printed = [line.split("\t")[0] for line in listed]
    assert sorted(printed) == sorted(ids)
    # Exactly as printed, and with the `rk_` people copy from the token's start.
    for ident in (printed[0], f"rk_{printed[1]}"):
        result = runner.invoke(server, ["token", "revoke", ident, *directory])
        assert result.exit_code == 0, result.output
        assert "Revoked token" in result.stdout
    assert runner.invoke(server, ["token", "list", *directory]).stdout == ""


def test_revoking_an_unknown_id_changes_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    directory = ["-D", str(tmp_path / "pk")]
    assert runner.invoke(server, ["token", "create", "--owner", "ci", *directory]).exit_code == 0
    before = snapshot(tmp_path / "pk")
    result = runner.invoke(server, ["token", "revoke", "rk_000000000000", *directory])
    assert result.exit_code == 1 and isinstance(result.exception, IndexServerError)
    assert "no token with id '000000000000'" in result.exception.message
    assert result.exception.hint and "token list" in result.exception.hint
    assert snapshot(tmp_path / "pk") == before
