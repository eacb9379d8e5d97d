"""Password guessing against the index: the event loop, timing, throttling, the cache.

Issue 8, defects 2-4: bcrypt ran on the event loop (four guessers stalled /health), an unknown
user answered without any bcrypt (user names could be enumerated by timing), and guessing was
unlimited. No test here measures time: each checks what ran, in which order, or what was said.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from releasekit.server import auth
from releasekit.server.htpasswd import verify_password
from tests.adversarial.auth_helpers import (
    Accounts,
    Clock,
    basic,
    from_address,
    in_process,
    index_settings,
    make_accounts,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return make_accounts(tmp_path)


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    path = tmp_path / "packages"
    path.mkdir()
    return path


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bcrypt entries each password check ran against, in order."""
    seen: list[bytes] = []

    def recording(password: str, entry: bytes) -> bool:
        seen.append(entry)
        return verify_password(password, entry)

    monkeypatch.setattr(auth, "_bcrypt_verify", recording)
    return seen


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def index(packages: Path, accounts: Accounts, clock: Clock) -> Iterator[TestClient]:
    """Listing needs credentials, so every /simple/ request checks a password."""
    settings = index_settings(packages, accounts, authenticate="list,download,update")
    with in_process(settings, clock) as client:
        yield client


def test_a_password_check_never_blocks_other_requests(
    packages: Path, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()

    def held(password: str, entry: bytes) -> bool:
        entered.set()
        release.wait(20)  # a bcrypt check that takes as long as the test needs
        return verify_password(password, entry)

    monkeypatch.setattr(auth, "_bcrypt_verify", held)
    settings = index_settings(packages, accounts, authenticate="list")
    with in_process(settings) as client:
        guess = threading.Thread(
            target=lambda: client.get("/simple/", headers=basic("ci", "guess"))
        )
        guess.start()
        assert entered.wait(20), "the password check never started"
        answers: list[int] = []
        health = threading.Thread(target=lambda: answers.append(client.get("/health").status_code))
        health.start()
        health.join(10)  # a deadline, not a measurement: a blocked loop never answers
        answered_while_checking = bool(answers) and not release.is_set()
        release.set()
        guess.join(20)
        health.join(20)
    assert answered_while_checking, "/health waited for a password check"
    assert answers == [200]


def test_when_too_many_checks_wait_the_next_gets_503_and_verified_users_still_pass(
    packages: Path, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    started: list[str] = []

    def held(password: str, entry: bytes) -> bool:
        started.append(password)
        release.wait(20)
        return verify_password(password, entry)

    settings = index_settings(packages, accounts, authenticate="list", auth_threads=1)
    with in_process(settings) as client:
        assert client.get("/simple/", headers=basic("ci", "ci-secret")).status_code == 200
        monkeypatch.setattr(auth, "_bcrypt_verify", held)
        guesses = [
            threading.Thread(target=lambda: client.get("/simple/", headers=basic("ci", "x")))
            for _ in range(32)  # the queue limit for one thread
        ]
        for guess in guesses:
            guess.start()
        answers: list[tuple[int, str, str]] = []  # status, Retry-After, problem code

        def probe() -> None:
            answer = client.get("/simple/", headers=basic("reader", "reader-secret"))
            code = answer.json().get("code", "") if answer.status_code >= 400 else ""
            answers.append((answer.status_code, answer.headers.get("retry-after", ""), code))

        probes = []
        for _ in range(40):  # each probe that is not refused joins the queue, so one will be
            probes.append(threading.Thread(target=probe))
            probes[-1].start()
            probes[-1].join(1)  # a refusal is immediate; a queued probe is left waiting
            if any(answer[0] == 503 for answer in answers):
                break
        cached = client.get("/simple/", headers=basic("ci", "ci-secret"))
        release.set()
        for thread in guesses + probes:
            thread.join(20)
    assert (503, "1", "busy") in answers
    assert cached.status_code == 200, "a verified credential needs no queue slot"


def test_an_unknown_user_costs_one_check_at_the_tables_cost(
    index: TestClient, checks: list[bytes]
) -> None:
    assert index.get("/simple/", headers=basic("ci", "wrong")).status_code == 401
    assert index.get("/simple/", headers=basic("nobody", "wrong")).status_code == 401
    assert len(checks) == 2, "an unknown user must pay a bcrypt check too"
    known, unknown = checks
    assert unknown[4:7] == known[4:7], "the dummy hash must have the same cost"
    assert unknown != known


def test_unknown_and_known_users_get_the_same_answer(index: TestClient) -> None:
    known = index.get("/simple/", headers=basic("ci", "wrong"))
    unknown = index.get("/simple/", headers=basic("nobody", "wrong"))
    assert known.status_code == unknown.status_code == 401
    assert known.json()["code"] == unknown.json()["code"] == "unauthorized"
    assert known.json()["detail"].replace("'ci'", "'nobody'") == unknown.json()["detail"]


def test_a_verified_password_is_checked_once_then_again_after_its_lifetime(
    index: TestClient, checks: list[bytes], clock: Clock
) -> None:
    for _ in range(100):  # pip fetching 100 files
        assert index.get("/simple/", headers=basic("ci", "ci-secret")).status_code == 200
    assert len(checks) == 1
    clock.now += 121  # past auth_cache_ttl (120 s)
    assert index.get("/simple/", headers=basic("ci", "ci-secret")).status_code == 200
    assert len(checks) == 2


def test_a_changed_password_file_empties_the_cache(
    packages: Path, accounts: Accounts, checks: list[bytes], clock: Clock
) -> None:
    settings = index_settings(packages, accounts, authenticate="list")
    with in_process(settings, clock) as client:
        assert client.get("/simple/", headers=basic("ci", "ci-secret")).status_code == 200
        lines = accounts.passwords.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if not line.startswith("ci:")]
        accounts.passwords.write_text("\n".join(kept) + "\n", encoding="utf-8")
        clock.now += 2  # past the reload interval
        refused = client.get("/simple/", headers=basic("ci", "ci-secret"))
    assert refused.status_code == 401


def test_guessing_from_one_address_is_throttled_with_growing_waits(
    index: TestClient, clock: Clock, checks: list[bytes]
) -> None:
    for _ in range(5):
        assert index.get("/simple/", headers=basic("ci", "guess")).status_code == 401
    blocked = index.get("/simple/", headers=basic("ci", "guess"))
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "1"
    assert blocked.headers["content-type"] == PROBLEM
    assert blocked.json()["code"] == "too-many-failures"
    assert "try again in 1 s" in blocked.json()["detail"]
    assert len(checks) == 5, "a throttled request must not reach bcrypt"
    # Even the right password waits: otherwise the block would not stop a guesser.
    assert index.get("/simple/", headers=basic("ci", "ci-secret")).status_code == 429
    waits = []
    for _ in range(4):
        clock.now += 400  # past any block, within the forget window (900 s) of the last failure
        assert index.get("/simple/", headers=basic("ci", "guess")).status_code == 401
        waits.append(index.get("/simple/", headers=basic("ci", "guess")).headers["retry-after"])
    assert waits == ["2", "4", "8", "16"]


def test_the_block_ends_and_a_success_resets_the_address(index: TestClient, clock: Clock) -> None:
    for _ in range(5):
        index.get("/simple/", headers=basic("ci", "guess"))
    clock.now += 1.5
    assert index.get("/simple/", headers=basic("ci", "ci-secret")).status_code == 200
    for _ in range(4):  # counting starts afresh after the success
        assert index.get("/simple/", headers=basic("ci", "guess")).status_code == 401


def test_a_guesser_never_locks_out_the_right_password_from_another_address(
    index: TestClient, clock: Clock
) -> None:
    known_good = from_address(index, "192.0.2.99")
    assert known_good.get("/simple/", headers=basic("ci", "ci-secret")).status_code == 200
    clock.now += 200  # the verified credential left the cache
    for number in range(20):  # guesses spread over many addresses (auth_throttle_user_failures)
        guesser = from_address(index, f"198.51.100.{number}")
        assert guesser.get("/simple/", headers=basic("ci", "guess")).status_code == 401
    fresh = from_address(index, "203.0.113.7")
    blocked = fresh.get("/simple/", headers=basic("ci", "ci-secret"))
    assert blocked.status_code == 429 and "for 'ci'" in blocked.json()["detail"]
    for number in range(20, 30):  # more guesses: the user's block grows, up to its cap
        clock.now += 40
        from_address(index, f"198.51.100.{number}").get("/simple/", headers=basic("ci", "guess"))
    blocked = fresh.get("/simple/", headers=basic("ci", "ci-secret"))
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "30"
    # The address ci used before is not held up by other people's guesses...
    assert known_good.get("/simple/", headers=basic("ci", "ci-secret")).status_code == 200
    # ...and a new address waits at most the user's cap.
    clock.now += 31
    assert fresh.get("/simple/", headers=basic("ci", "ci-secret")).status_code == 200
    # Other users are not affected at all.
    other = from_address(index, "203.0.113.8")
    assert other.get("/simple/", headers=basic("reader", "reader-secret")).status_code == 200


def test_unknown_tokens_count_as_failures_and_expired_ones_do_not(
    index: TestClient, accounts: Accounts
) -> None:
    for _ in range(8):
        expired = index.get("/simple/", headers=accounts.header("expired"))
        assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    forged = "rk_000000000000_" + "a" * 32
    for _ in range(5):
        assert index.get("/simple/", headers=basic("__token__", forged)).status_code == 401
    assert index.get("/simple/", headers=basic("__token__", forged)).status_code == 429


def test_throttled_and_wrong_logins_are_counted_in_metrics(index: TestClient) -> None:
    for _ in range(7):
        index.get("/simple/", headers=basic("ci", "guess"))
    admin = from_address(index, "192.0.2.200")  # the guessing address is blocked
    metrics = admin.get("/metrics", headers=basic("root", "root-secret")).text
    assert 'releasekit_auth_refusals_total{reason="wrong"} 5.0' in metrics
    assert 'releasekit_auth_refusals_total{reason="throttled"} 2.0' in metrics


@pytest.mark.parametrize(
    "switch",
    [{"auth_throttle": False}, {"auth_throttle": "off"}],
    ids=["setting", "env-style-string"],
)
def test_the_throttle_can_be_switched_off(
    packages: Path, accounts: Accounts, switch: dict[str, object]
) -> None:
    settings = index_settings(packages, accounts, authenticate="list", **switch)
    with in_process(settings) as client:
        codes = {
            client.get("/simple/", headers=basic("ci", "guess")).status_code for _ in range(12)
        }
    assert codes == {401}


def test_upload_with_a_throttled_address_is_refused_before_the_body_is_read(
    index: TestClient,
) -> None:
    for _ in range(5):
        index.get("/simple/", headers=basic("ci", "guess"))
    response = index.post(
        "/legacy/",
        headers=basic("ci", "guess"),
        data={":action": "file_upload"},
        files={"content": ("alpha-1.0-py3-none-any.whl", b"x" * 1000)},
    )
    assert response.status_code == 429 and response.headers["retry-after"] == "1"


# configuration -------------------------------------------------------------------------------


def test_login_and_connection_settings_come_from_file_env_and_flags(tmp_path: Path) -> None:
    from releasekit.server.settings import load_settings

    config = tmp_path / "server.toml"
    config.write_text(
        "[server]\nauth-throttle-failures = 3\nheader-timeout = 2.5\nserver-header = true\n",
        encoding="utf-8",
    )
    env = {
        "RELEASEKIT_SERVER_AUTH_THROTTLE": "off",
        "RELEASEKIT_SERVER_AUTH_CACHE_TTL": "30",
        "RELEASEKIT_SERVER_MAX_CONNECTIONS": "500",
    }
    settings = load_settings({"auth_threads": 3}, config, env)
    assert (settings.auth_throttle, settings.auth_throttle_failures) == (False, 3)
    assert (settings.header_timeout, settings.server_header) == (2.5, True)
    assert (settings.auth_cache_ttl, settings.max_connections, settings.auth_threads) == (
        30,
        500,
        3,
    )
    defaults = load_settings(env={})
    assert defaults.auth_throttle and not defaults.server_header


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("RELEASEKIT_SERVER_AUTH_THROTTLE", "flase", "auth_throttle must be true or false"),
        (
            "RELEASEKIT_SERVER_AUTH_THROTTLE_FAILURES",
            "0",
            "auth_throttle_failures must be at least",
        ),
        ("RELEASEKIT_SERVER_HEADER_TIMEOUT", "soon", "header_timeout must be a number"),
        ("RELEASEKIT_SERVER_MAX_CONNECTIONS", "-1", "max_connections must be at least 0"),
    ],
)
def test_a_mistyped_protection_setting_is_refused_not_ignored(
    key: str, value: str, message: str
) -> None:
    from releasekit.errors import ConfigError
    from releasekit.server.settings import load_settings

    with pytest.raises(ConfigError, match=message):
        load_settings(env={key: value})


def test_run_flags_reach_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from releasekit.cli import server_cmds as cli
    from releasekit.server.settings import Settings, load_settings

    seen: list[Settings] = []

    def capture(config_file: Path | None, **overrides: object) -> Settings:
        seen.append(load_settings(overrides, config_file, env={}))
        raise SystemExit(0)  # stop before a server starts

    monkeypatch.setattr(cli, "_settings", capture)
    flags = ["--no-auth-throttle", "--header-timeout", "3", "--auth-throttle-max-delay", "60"]
    flags += ["--server-header", "--max-connections", "50", "--keep-alive-timeout", "7"]
    flags += ["--body-timeout", "45"]
    result = CliRunner().invoke(cli.server, ["run", str(tmp_path), *flags])
    assert result.exit_code == 0, result.output
    (settings,) = seen
    assert settings.auth_throttle is False and settings.server_header is True
    assert (settings.header_timeout, settings.auth_throttle_max_delay) == (3.0, 60.0)
    assert (settings.max_connections, settings.keep_alive_timeout) == (50, 7)
    assert settings.body_timeout == 45.0


def test_ipv6_guessers_are_throttled_per_64_prefix() -> None:
    from releasekit.server.throttle import Throttle, ThrottlePolicy

    clock = Clock()
    throttle = Throttle(ThrottlePolicy(), clock)
    for host in range(1, 6):  # one machine hopping through the addresses of its /64
        throttle.failure(f"2001:db8:0:1::{host:x}", "ci")
    assert throttle.retry_after("2001:db8:0:1::ffff", None) == 1
    assert throttle.retry_after("2001:db8:0:2::1", None) == 0  # the next /64 is someone else
    assert throttle.retry_after("192.0.2.1", None) == 0


def test_each_block_is_one_warning_naming_the_address_not_the_password(
    index: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="releasekit.server.auth"):
        for _ in range(9):
            index.get("/simple/", headers=basic("ci", "hunter2"))
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["failed logins from 192.0.2.10 (last for user 'ci'): blocked for 1 s"]
    assert all("hunter2" not in line for line in lines)
