"""Authentication: htpasswd parsing, roles, reloads, tokens and every authorize() outcome."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
import pytest

from releasekit.errors import IndexServerError
from releasekit.server import auth
from releasekit.server.auth import Authenticator, AuthError, Principal
from releasekit.server.htpasswd import (
    load_user_table,
    parse_htpasswd,
    roles_path,
    verify_password,
)
from releasekit.server.tokens import (
    create_token,
    load_tokens,
    parse_expiry,
    revoke_token,
)

ALL = frozenset({"list", "download", "update"})


def bcrypt_line(user: str, password: str, prefix: str = "$2y$", rounds: int = 4) -> str:
    """An entry as `htpasswd -B` writes it (Apache uses the $2y$ prefix)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    return f"{user}:{prefix}{hashed[4:]}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def passwords(tmp_path: Path) -> Path:
    """alice (admin), bob (upload, no sidecar entry), rita (read)."""
    path = tmp_path / "htpasswd"
    lines = [
        "# users of the index",
        bcrypt_line("alice", "alice-pw"),
        "",
        bcrypt_line("bob", "bob-pw", prefix="$2b$"),
        bcrypt_line("rita", "rita-pw", prefix="$2a$"),
    ]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    roles_path(path).write_text('[roles]\nalice = "admin"\nrita = "read"\n', encoding="utf-8")
    return path


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    return tmp_path / "packages" / ".releasekit" / "tokens.json"


def make_auth(
    passwords: Path | None,
    tokens_file: Path | None = None,
    authenticate: frozenset[str] = frozenset({"update"}),
    reload_interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> Authenticator:
    return Authenticator.from_settings(
        passwords=passwords,
        authenticate=authenticate,
        tokens_file=tokens_file,
        reload_interval=reload_interval,
        clock=clock,
    )


def authorize(
    authenticator: Authenticator,
    header: str | None,
    action: auth.Action,
    project: str | None = None,
    client: str = "192.0.2.1",
) -> Principal:
    """The server calls authorize() on its event loop; tests run one loop per call."""
    return asyncio.run(authenticator.authorize(header, action, project, client))


def refused(
    authenticator: Authenticator,
    header: str | None,
    action: auth.Action,
    project: str | None = None,
) -> AuthError:
    with pytest.raises(AuthError) as info:
        authorize(authenticator, header, action, project)
    return info.value


# htpasswd parsing ----------------------------------------------------------------------------


def test_bcrypt_entries_with_every_prefix_comments_and_crlf_are_accepted(passwords: Path) -> None:
    table = load_user_table(passwords)
    assert sorted(table.hashes) == ["alice", "bob", "rita"]
    assert (table.role("alice"), table.role("bob"), table.role("rita")) == (
        "admin",
        "upload",
        "read",
    )


def test_apache_htpasswd_B_output_is_accepted(tmp_path: Path) -> None:
    # `htpasswd -B -C 5` writes `user:$2y$05$<53 chars>`; generated here with bcrypt itself.
    path = tmp_path / "htpasswd"
    path.write_text(bcrypt_line("carol", "s3cret", rounds=5) + "\n", encoding="utf-8")
    authenticator = make_auth(path)
    assert authorize(authenticator, basic("carol", "s3cret"), "update") == Principal(
        "carol", "user"
    )


@pytest.mark.parametrize(
    ("entry", "scheme"),
    [
        ("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1"),
        ("$apr1$x1y2z3$3zd5bM9Jq4QqO4bEV8p/A/", "Apache MD5"),
        ("abJnggxhB/yWI", "DES crypt"),
        ("$6$salt$" + "a" * 86, "crypt(3)"),
        ("plain-password", "plaintext"),
        ("$2y$05$tooshort", "malformed bcrypt"),
    ],
)
def test_other_schemes_are_refused_naming_file_line_and_user(
    tmp_path: Path, entry: str, scheme: str
) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"# header\n{bcrypt_line('alice', 'pw')}\nbob:{entry}\n", encoding="utf-8")
    with pytest.raises(IndexServerError) as info:
        make_auth(path)
    assert f"{path}:3" in info.value.message
    assert "'bob'" in info.value.message and scheme in info.value.message
    assert entry not in str(info.value)  # the hash is never echoed
    assert info.value.hint is not None and "htpasswd -B" in info.value.hint
    assert "releasekit server user add bob" in info.value.hint


def test_lines_without_colon_and_duplicate_users_are_refused(tmp_path: Path) -> None:
    with pytest.raises(IndexServerError, match=r"x:2: not a `user:hash` line"):
        parse_htpasswd("\njust-a-name\n", Path("x"))
    line = bcrypt_line("bob", "pw")
    with pytest.raises(IndexServerError, match=r"x:3: user 'bob' appears twice"):
        parse_htpasswd(f"{line}\n\n{line}\n", Path("x"))


def test_missing_password_file_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(IndexServerError, match="does not exist") as info:
        make_auth(tmp_path / "nope")
    assert info.value.hint is not None and "user add" in info.value.hint


def test_unknown_role_in_sidecar_is_refused(passwords: Path) -> None:
    roles_path(passwords).write_text('[roles]\nbob = "owner"\n', encoding="utf-8")
    with pytest.raises(IndexServerError, match="user 'bob' has unknown role 'owner'"):
        make_auth(passwords)
    roles_path(passwords).write_text('bob = "read"\n', encoding="utf-8")
    with pytest.raises(IndexServerError, match=r"expected only a \[roles\] table"):
        make_auth(passwords)


def test_without_sidecar_every_user_uploads(passwords: Path) -> None:
    roles_path(passwords).unlink()
    authenticator = make_auth(passwords)
    assert authorize(authenticator, basic("rita", "rita-pw"), "update").name == "rita"
    assert refused(authenticator, basic("rita", "rita-pw"), "admin").status == 403


# reloads ------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_password_file_is_reloaded_when_it_changes_at_most_once_per_interval(
    passwords: Path,
) -> None:
    clock = FakeClock()
    authenticator = make_auth(passwords, reload_interval=1.0, clock=clock)
    assert authorize(authenticator, basic("bob", "bob-pw"), "update").name == "bob"
    text = passwords.read_text(encoding="utf-8")
    bob_line = next(line for line in text.splitlines() if line.startswith("bob:"))
    passwords.write_text(text.replace(bob_line, bcrypt_line("bob", "new-pw")), encoding="utf-8")
    clock.now += 0.5  # within the interval: no stat, the old table still answers
    assert authorize(authenticator, basic("bob", "bob-pw"), "update").name == "bob"
    clock.now += 0.6
    assert refused(authenticator, basic("bob", "bob-pw"), "update").status == 401
    assert authorize(authenticator, basic("bob", "new-pw"), "update").name == "bob"


def test_roles_sidecar_change_is_picked_up(passwords: Path) -> None:
    authenticator = make_auth(passwords, reload_interval=0)
    assert refused(authenticator, basic("rita", "rita-pw"), "update").status == 403
    # only the sidecar changes (as `user set-role` does): the users are re-read all the same
    roles_path(passwords).write_text('[roles]\nalice = "admin"\n', encoding="utf-8")
    assert authorize(authenticator, basic("rita", "rita-pw"), "update").name == "rita"
    roles_path(passwords).unlink()  # no sidecar: everybody uploads, nobody is admin
    assert refused(authenticator, basic("alice", "alice-pw"), "admin").status == 403


def test_invalid_new_file_keeps_the_old_table_and_logs(
    passwords: Path, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = make_auth(passwords, reload_interval=0)
    passwords.write_text("bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="releasekit.server.auth"):
        assert authorize(authenticator, basic("alice", "alice-pw"), "update").name == "alice"
        assert authorize(authenticator, basic("alice", "alice-pw"), "update").name == "alice"
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1  # logged once per change, not once per request
    assert "keeping the previous version" in messages[0] and "SHA-1" in messages[0]
    assert "W6ph5Mm5Pz8GgiULbPgzG37mj9g" not in messages[0]


# authorize(): users ---------------------------------------------------------------------------


def test_actions_outside_authenticate_are_anonymous(passwords: Path) -> None:
    authenticator = make_auth(passwords)
    assert authorize(authenticator, None, "list") == Principal(None, "anonymous")
    assert authorize(authenticator, basic("bob", "wrong"), "download").kind == "anonymous"


def test_missing_credentials_are_401_with_a_challenge(passwords: Path) -> None:
    error = refused(make_auth(passwords), None, "update")
    assert error.status == 401 and "credentials are required to upload" in error.detail
    assert error.headers == {"WWW-Authenticate": 'Basic realm="releasekit", charset="UTF-8"'}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("bob", "nope"), "wrong password for user 'bob'"),
        (basic("mallory", "bob-pw"), "wrong password for user 'mallory'"),
        ("Basic not*base64", "malformed Basic credentials"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "malformed Basic credentials"),
        ("Digest abc", "unsupported Authorization scheme"),
    ],
)
def test_wrong_or_malformed_credentials_are_401(
    passwords: Path, header: str, expected: str
) -> None:
    error = refused(make_auth(passwords), header, "update")
    assert error.status == 401 and expected in error.detail
    assert "bob-pw" not in error.detail and "nope" not in error.detail


def test_roles_decide_what_a_valid_user_may_do(passwords: Path) -> None:
    authenticator = make_auth(passwords, authenticate=ALL)
    rita, bob, alice = basic("rita", "rita-pw"), basic("bob", "bob-pw"), basic("alice", "alice-pw")
    assert authorize(authenticator, rita, "download", "pkg") == Principal("rita", "user")
    assert authorize(authenticator, rita, "list") == Principal("rita", "user")
    error = refused(authenticator, rita, "update", "pkg")
    assert error.status == 403 and error.headers == {}
    assert "user 'rita' has the role 'read', which cannot upload" in error.detail
    assert "user set-role rita upload" in error.detail
    assert authorize(authenticator, bob, "update", "pkg").name == "bob"
    error = refused(authenticator, bob, "admin", "pkg")
    assert error.status == 403 and "user set-role bob admin" in error.detail
    assert authorize(authenticator, alice, "admin", "pkg") == Principal("alice", "user")


def test_authenticate_download_list_vs_none(passwords: Path) -> None:
    reads = make_auth(passwords, authenticate=frozenset({"download", "list"}))
    assert refused(reads, None, "list").status == 401
    assert refused(reads, None, "download", "pkg").status == 401
    assert authorize(reads, None, "update", "pkg").kind == "anonymous"
    assert authorize(reads, basic("rita", "rita-pw"), "download", "pkg").name == "rita"

    nothing = make_auth(passwords, authenticate=frozenset())  # pypiserver's `-a .`
    for action in ("list", "download", "update"):
        assert authorize(nothing, None, action, "pkg").kind == "anonymous"
    assert refused(nothing, None, "admin", "pkg").status == 401  # admin always needs credentials
    assert refused(nothing, basic("bob", "bob-pw"), "admin", "pkg").status == 403


def test_no_password_file_means_no_uploads(tokens_file: Path) -> None:
    for files in ((None, None), (None, tokens_file)):  # no tokens file, or one with no tokens
        error = refused(make_auth(*files), basic("bob", "bob-pw"), "update", "pkg")
        assert error.status == 403 and "-P/--passwords" in error.detail
    assert refused(make_auth(None, authenticate=frozenset()), None, "admin").status == 403


def test_bcrypt_runs_once_per_verified_password_and_every_time_for_a_wrong_one(
    passwords: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = verify_password

    def counting(password: str, entry: bytes) -> bool:
        calls.append("x")
        return real(password, entry)

    monkeypatch.setattr(auth, "_bcrypt_verify", counting)
    authenticator = make_auth(passwords, authenticate=ALL)
    for _ in range(4):
        authorize(authenticator, basic("bob", "bob-pw"), "download", "pkg")
        refused(authenticator, basic("bob", "wrong"), "download", "pkg")
    # A failure is never cached: a guess costs the guesser a full check every time.
    assert len(calls) == 1 + 4


# authorize(): tokens --------------------------------------------------------------------------


def test_token_in_scope_is_allowed_out_of_scope_is_403(passwords: Path, tokens_file: Path) -> None:
    new = create_token(tokens_file, owner="bob", projects=["My_Pkg"], actions=["update"])
    authenticator = make_auth(passwords, tokens_file, authenticate=ALL)
    header = basic("__token__", new.value)
    assert authorize(authenticator, header, "update", "my-pkg") == Principal(
        "bob", "token", new.token.id
    )
    assert authorize(authenticator, f"Bearer {new.value}", "update", "MY.PKG").kind == "token"
    error = refused(authenticator, header, "update", "other")
    assert error.status == 403
    assert (
        f"token {new.token.id} is scoped to the projects my-pkg; it cannot upload for 'other'"
        in error.detail
    )
    error = refused(authenticator, header, "download", "my-pkg")
    assert (
        error.status == 403 and "scoped to the actions update; it cannot download" in error.detail
    )
    assert new.value not in error.detail


def test_expired_revoked_and_malformed_tokens_are_401(passwords: Path, tokens_file: Path) -> None:
    past = datetime(2020, 5, 1, tzinfo=UTC)
    old = create_token(tokens_file, owner="bob", expires=past, now=past - timedelta(days=1))
    live = create_token(tokens_file, owner="bob")
    authenticator = make_auth(passwords, tokens_file, reload_interval=0)
    error = refused(authenticator, basic("__token__", old.value), "update", "pkg")
    assert error.status == 401 and f"token {old.token.id} expired on 2020-05-01" in error.detail
    assert "create a new one" in error.detail
    assert authorize(authenticator, basic("__token__", live.value), "update").kind == "token"
    revoke_token(tokens_file, live.token.id)
    error = refused(authenticator, basic("__token__", live.value), "update", "pkg")
    assert error.status == 401 and "unknown, revoked or mistyped" in error.detail
    tampered = live.value[:-1] + ("a" if live.value[-1] != "a" else "b")
    for value in ("rk_nonsense", tampered, ""):
        assert refused(authenticator, basic("__token__", value), "update").status == 401


def test_tokens_are_capped_by_their_owner(passwords: Path, tokens_file: Path) -> None:
    by_rita = create_token(tokens_file, owner="rita", actions=["update"])
    by_ghost = create_token(tokens_file, owner="ghost")
    admin = create_token(tokens_file, owner="alice", actions=["admin"])
    authenticator = make_auth(passwords, tokens_file)
    error = refused(authenticator, basic("__token__", by_rita.value), "update", "pkg")
    assert error.status == 403 and f"the owner 'rita' of token {by_rita.token.id}" in error.detail
    error = refused(authenticator, basic("__token__", by_ghost.value), "update", "pkg")
    assert error.status == 401 and "'ghost', who is no longer a user" in error.detail
    assert authorize(authenticator, basic("__token__", admin.value), "admin", "pkg").name == "alice"


def test_tokens_work_without_a_password_file(tokens_file: Path) -> None:
    new = create_token(tokens_file, owner="ci")
    authenticator = make_auth(None, tokens_file)
    assert authorize(authenticator, basic("__token__", new.value), "update", "pkg").name == "ci"
    error = refused(authenticator, basic("bob", "bob-pw"), "update", "pkg")
    assert error.status == 401 and "no password file" in error.detail


def test_token_file_stores_only_a_hash(tokens_file: Path) -> None:
    new = create_token(tokens_file, owner="bob", description="ci upload")
    raw = tokens_file.read_bytes()
    secret = new.value.split("_")[2]
    assert new.value.encode() not in raw and secret.encode() not in raw
    assert tokens_file.stat().st_mode & 0o777 == 0o600
    stored = load_tokens(tokens_file)[new.token.id]
    assert stored.sha256.encode() in raw and stored.description == "ci upload"


def test_invalid_tokens_file_is_refused_at_start_and_ignored_on_reload(
    passwords: Path, tokens_file: Path
) -> None:
    new = create_token(tokens_file, owner="bob")
    authenticator = make_auth(passwords, tokens_file, reload_interval=0)
    tokens_file.write_text("{not json", encoding="utf-8")
    assert authorize(authenticator, basic("__token__", new.value), "update").kind == "token"
    with pytest.raises(IndexServerError, match="malformed"):
        make_auth(passwords, tokens_file)


def test_parse_expiry() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_expiry("30d", now=now) == now + timedelta(days=30)
    assert parse_expiry("2026-12-31", now=now) == datetime(2026, 12, 31, tzinfo=UTC)
    with pytest.raises(IndexServerError, match="not in the future"):
        parse_expiry("2025-12-31", now=now)
    with pytest.raises(IndexServerError, match="cannot read the expiry") as info:
        parse_expiry("soon", now=now)
    assert info.value.hint is not None and "30d" in info.value.hint
