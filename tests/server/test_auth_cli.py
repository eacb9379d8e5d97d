"""`releasekit server user|token ...` round trips with click's CliRunner."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import pytest
from click.testing import CliRunner, Result

from releasekit.cli.admin_cmds import token_group, user_group
from releasekit.errors import IndexServerError
from releasekit.server.auth import Authenticator, AuthError
from releasekit.server.htpasswd import roles_path
from tests.server.test_auth import authorize

FAST = ["--bcrypt-cost", "4"]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def run(group: object, args: list[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(group, args, input=stdin)  # type: ignore[arg-type]


def add(passwords: Path, name: str, password: str, *extra: str) -> Result:
    return run(
        user_group,
        ["add", name, "--password-stdin", "-P", str(passwords), *FAST, *extra],
        f"{password}\n",
    )


def refusal(result: Result) -> IndexServerError:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, IndexServerError)
    return result.exception


def snapshot(*paths: Path) -> dict[Path, bytes | None]:
    return {path: path.read_bytes() if path.exists() else None for path in paths}


@pytest.fixture
def passwords(tmp_path: Path) -> Path:
    path = tmp_path / "auth" / "htpasswd"
    assert add(path, "alice", "alice-pw", "--role", "admin").exit_code == 0
    assert add(path, "bob", "bob-pw").exit_code == 0
    return path


# users --------------------------------------------------------------------------------------


def test_user_add_creates_a_private_bcrypt_file_and_list_shows_no_hashes(passwords: Path) -> None:
    assert passwords.stat().st_mode & 0o777 == 0o600
    assert all(
        line.split(":")[1].startswith("$2b$04$") for line in passwords.read_text().splitlines()
    )
    assert roles_path(passwords).read_text().count('alice = "admin"') == 1
    result = run(user_group, ["list", "-P", str(passwords)])
    assert result.exit_code == 0
    assert result.output == "alice\tadmin\nbob\tupload\n"
    authenticator = Authenticator.from_settings(
        passwords=passwords, authenticate=frozenset({"update"}), tokens_file=None
    )
    assert authorize(authenticator, basic("alice", "alice-pw"), "admin").name == "alice"


def test_user_add_prompts_twice(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    result = run(user_group, ["add", "carol", "-P", str(path), *FAST], "pw-1\npw-1\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Password") == 1 and "Repeat for confirmation" in result.output
    assert "pw-1" not in result.output
    assert "Added user carol with role upload" in result.output
    assert not roles_path(path).exists()  # the default role needs no sidecar


def test_user_add_refuses_an_existing_user_unless_update(passwords: Path) -> None:
    before = snapshot(passwords, roles_path(passwords))
    error = refusal(add(passwords, "alice", "other"))
    assert (
        "user 'alice' already exists" in error.message
        and error.hint is not None
        and "--update" in error.hint
    )
    assert snapshot(passwords, roles_path(passwords)) == before
    assert add(passwords, "alice", "new-pw", "--update").exit_code == 0
    assert (
        snapshot(passwords, roles_path(passwords))[roles_path(passwords)]
        == before[roles_path(passwords)]
    )
    entry = next(line for line in passwords.read_text().splitlines() if line.startswith("alice:"))
    assert bcrypt.checkpw(b"new-pw", entry.split(":", 1)[1].encode())
    assert "alice\tadmin" in run(user_group, ["list", "-P", str(passwords)]).output  # role kept


@pytest.mark.parametrize(
    ("name", "password", "expected"),
    [
        ("__token__", "pw", "reserved for API tokens"),
        ("bad:name", "pw", "invalid user name"),
        ("dave", "", "the password is empty"),
        ("dave", "x" * 73, "bcrypt uses at most 72"),
    ],
)
def test_user_add_refusals_change_nothing(
    passwords: Path, name: str, password: str, expected: str
) -> None:
    before = snapshot(passwords, roles_path(passwords))
    error = refusal(add(passwords, name, password, "--role", "read"))
    assert expected in error.message and error.hint
    assert snapshot(passwords, roles_path(passwords)) == before


def test_user_remove_and_set_role(passwords: Path) -> None:
    before = snapshot(passwords, roles_path(passwords))
    error = refusal(run(user_group, ["remove", "zed", "-P", str(passwords)]))
    assert "no user 'zed'" in error.message
    assert snapshot(passwords, roles_path(passwords)) == before
    assert run(user_group, ["set-role", "bob", "read", "-P", str(passwords)]).exit_code == 0
    assert run(user_group, ["remove", "alice", "-P", str(passwords)]).exit_code == 0
    assert "alice" not in passwords.read_text() and "alice" not in roles_path(passwords).read_text()
    assert run(user_group, ["list", "-P", str(passwords)]).output == "bob\tread\n"


def test_user_add_update_migrates_a_refused_sha1_line(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("# kept\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", encoding="utf-8")
    listing = run(user_group, ["list", "-P", str(path)]).output
    assert "bob\tupload  (refused by the server: SHA-1" in listing and "W6ph5" not in listing
    with pytest.raises(IndexServerError):
        Authenticator.from_settings(passwords=path, authenticate=frozenset(), tokens_file=None)
    assert add(path, "bob", "bob-pw", "--update").exit_code == 0
    assert path.read_text().startswith("# kept\nbob:$2b$")
    authenticator = Authenticator.from_settings(
        passwords=path, authenticate=frozenset({"update"}), tokens_file=None
    )
    assert authorize(authenticator, basic("bob", "bob-pw"), "update").name == "bob"


# tokens -------------------------------------------------------------------------------------


def create(args: list[str]) -> Result:
    return run(token_group, ["create", *args])


def test_token_is_shown_once_and_never_stored_or_listed(tmp_path: Path, passwords: Path) -> None:
    packages = tmp_path / "packages"
    result = create(
        [
            "--owner",
            "bob",
            "--project",
            "My_Pkg",
            "--expires",
            "30d",
            "--description",
            "ci",
            "--packages-dir",
            str(packages),
        ]
    )
    assert result.exit_code == 0, result.output
    value = result.stdout.strip()
    assert result.stdout == value + "\n" and value.startswith("rk_")  # stdout is the token alone
    assert "will not be shown again" in result.stderr and value not in result.stderr
    tokens_file = packages / ".releasekit" / "tokens.json"
    assert (
        value.split("_")[2] not in tokens_file.read_text() and value not in tokens_file.read_text()
    )
    assert tokens_file.stat().st_mode & 0o777 == 0o600
    listing = run(token_group, ["list", "--tokens-file", str(tokens_file)]).output
    token_id = value.split("_")[1]
    assert listing.startswith(f"{token_id}\tbob\tmy-pkg\tupdate\t") and listing.rstrip().endswith(
        "\tci"
    )
    assert value.split("_")[2] not in listing
    authenticator = Authenticator.from_settings(
        passwords=passwords, authenticate=frozenset({"update"}), tokens_file=tokens_file
    )
    assert (
        authorize(authenticator, basic("__token__", value), "update", "my-pkg").token_id == token_id
    )


def test_token_files_come_from_the_server_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELEASEKIT_SERVER_PACKAGES_DIR", str(tmp_path / "pk"))
    assert create(["--owner", "ci"]).exit_code == 0
    assert (tmp_path / "pk" / ".releasekit" / "tokens.json").exists()
    monkeypatch.delenv("RELEASEKIT_SERVER_PACKAGES_DIR")
    error = refusal(run(token_group, ["list"]))
    assert error.message == "no tokens file given" and error.hint and "--packages-dir" in error.hint


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--owner", "bob", "--expires", "2020-01-01"], "is not in the future"),
        (["--owner", "bob", "--expires", "tomorrow"], "cannot read the expiry"),
        (["--owner", "bob", "--project", "../evil"], "invalid project name"),
        (["--owner", "zed"], "'zed' is not a user"),
        (["--owner", "bob", "--action", "admin"], "role 'upload', which does not allow admin"),
    ],
)
def test_token_create_refusals_change_nothing(
    tmp_path: Path, passwords: Path, args: list[str], expected: str
) -> None:
    tokens_file = tmp_path / "tokens.json"
    assert create(["--owner", "bob", "--tokens-file", str(tokens_file)]).exit_code == 0
    before = tokens_file.read_bytes()
    error = refusal(create([*args, "--tokens-file", str(tokens_file), "-P", str(passwords)]))
    assert expected in error.message
    assert tokens_file.read_bytes() == before


def test_token_revoke(tmp_path: Path, passwords: Path) -> None:
    tokens_file = tmp_path / "tokens.json"
    value = create(
        [
            "--owner",
            "alice",
            "--action",
            "admin",
            "--tokens-file",
            str(tokens_file),
            "-P",
            str(passwords),
        ]
    ).stdout.strip()
    before = tokens_file.read_bytes()
    error = refusal(run(token_group, ["revoke", "0123456789ab", "--tokens-file", str(tokens_file)]))
    assert "no token with id '0123456789ab'" in error.message
    assert tokens_file.read_bytes() == before
    authenticator = Authenticator.from_settings(
        passwords=passwords, authenticate=frozenset(), tokens_file=tokens_file, reload_interval=0
    )
    assert authorize(authenticator, basic("__token__", value), "admin").kind == "token"
    result = run(token_group, ["revoke", value.split("_")[1], "--tokens-file", str(tokens_file)])
    assert (
        result.exit_code == 0
        and "Revoked token" in result.output
        and "owner alice" in result.output
    )
    assert run(token_group, ["list", "--tokens-file", str(tokens_file)]).output == ""
    with pytest.raises(AuthError) as info:
        authorize(authenticator, basic("__token__", value), "admin")
    assert info.value.status == 401
