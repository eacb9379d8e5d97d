"""Settings sources and precedence, pypiserver flag syntax, and content negotiation rules."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from releasekit.errors import ConfigError
from releasekit.server.negotiation import negotiate
from releasekit.server.settings import DEFAULT_FILE_MAX_AGE, load_settings, parse_size


def test_defaults_are_safe(tmp_path: Path) -> None:
    settings = load_settings({"packages_dir": tmp_path}, env={})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.authenticate == frozenset({"update"})
    assert settings.fallback_url is None
    assert settings.overwrite is False
    assert settings.cache_control == DEFAULT_FILE_MAX_AGE
    assert settings.effective_tokens_file == tmp_path / ".releasekit" / "tokens.json"


def test_flags_override_env_which_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(
        '[server]\nport = 9000\nhost = "10.0.0.5"\nmax-upload-size = "10M"\nworkers = 3\n',
        encoding="utf-8",
    )
    env = {"RELEASEKIT_SERVER_PORT": "9100", "RELEASEKIT_SERVER_AUTHENTICATE": "update,list"}
    settings = load_settings({"port": 9200, "workers": None}, config, env)
    assert settings.port == 9200
    assert settings.host == "10.0.0.5"
    assert settings.workers == 3
    assert settings.max_upload_size == 10 * 1024 * 1024
    assert settings.authenticate == frozenset({"update", "list"})


@pytest.mark.parametrize(
    ("overrides", "env", "message"),
    [
        ({"authenticate": "update,delete"}, {}, "unknown actions ['delete']"),
        ({"max_upload_size": "ten"}, {}, "'ten' is not a size"),
        ({"url_prefix": "/a b"}, {}, "is not a URL path"),
        ({"health_endpoint": "health"}, {}, "is not a path"),
        ({"port": 70000}, {}, "out of range"),
        (
            {},
            {"RELEASEKIT_SERVER_PROT": "1"},
            "unknown environment variable RELEASEKIT_SERVER_PROT",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_hint(
    overrides: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides, env=env)
    assert message in caught.value.message


def test_unknown_key_in_the_settings_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text("prot = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings({}, config, {})
    assert "unknown setting 'prot'" in caught.value.message


def test_authenticate_dot_means_none_and_prefix_is_normalized() -> None:
    settings = load_settings({"authenticate": ".", "url_prefix": "pypi/"}, env={})
    assert settings.authenticate == frozenset()
    assert settings.url_prefix == "/pypi"


@pytest.mark.parametrize(
    ("text", "size"), [("100", 100), ("2K", 2048), ("100M", 104857600), ("1GiB", 1073741824)]
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (
            "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
            "text/html;q=0.01",
            "json",
        ),  # uv
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text-html"),  # browser
        ("application/vnd.pypi.simple.v1+html", "html"),
        ("application/vnd.pypi.simple.latest+json", "json"),
        ("application/vnd.pypi.simple.v1+json;q=0", None),
        ("image/png", None),
        ("application/vnd.pypi.simple.v2+json", None),
    ],
)
def test_negotiate(accept: str, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


def test_startup_summary_warns_about_what_will_not_work(tmp_path: Path) -> None:
    from releasekit.server.process import startup_summary

    def summary(**values: Any) -> list[tuple[int, str]]:
        return startup_summary(load_settings({"packages_dir": tmp_path, **values}, env={}))

    locked = summary()
    assert locked[0] == (
        logging.INFO,
        f"serving {tmp_path} at http://127.0.0.1:8080/ (pip: --index-url http://127.0.0.1:8080/simple/)",
    )
    assert any(
        level == logging.WARNING and "every upload will be refused" in line
        for level, line in locked
    )
    (tmp_path / "htpasswd").write_text("")
    assert all(level == logging.INFO for level, _ in summary(passwords=tmp_path / "htpasswd"))
    exposed = summary(host="0.0.0.0", authenticate=".", url_prefix="/pypi")  # noqa: S104
    assert "http://0.0.0.0:8080/pypi/" in exposed[0][1]
    assert any("anyone who reaches this port can upload" in line for _, line in exposed)
