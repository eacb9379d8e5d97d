"""Upstream settings: parsing, the CLI (and its refusals, which change nothing), the S3 cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from releasekit.cli import cli
from releasekit.errors import IndexServerError
from releasekit.server.app import create_app
from releasekit.server.indexes import parse_registry, read_registry
from releasekit.server.localstore import LocalStorage
from releasekit.server.process import make_storage
from releasekit.server.settings import load_settings
from releasekit.server.upstream import (
    UpstreamChange,
    UpstreamConfig,
    apply_change,
    configure_upstream,
    parse_duration,
    parse_upstream,
    reserved_by,
)
from tests.server.conftest import make_wheel, snapshot
from tests.server.moto_s3 import MotoS3
from tests.server.upstream_stub import JSON, Stub, entry, page, reply
from tests.server.upstream_stub import stub as stub  # the fixture


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 604800), ("12h", 43200), ("30m", 1800), ("0", 0), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7 days", "-1d", "1.5h", "d"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(IndexServerError, match="not a duration") as caught:
        parse_duration(text)
    assert "7d" in str(caught.value)


def test_reserve_globs_match_normalized_names() -> None:
    config = apply_change(None, UpstreamChange(url="http://up/simple", reserve=("Aegis_*",)))
    assert config is not None
    assert config.reserve == ("aegis-*",)
    assert config.url == "http://up/simple/"
    assert reserved_by("aegis-core", config.reserve) == "aegis-*"
    assert reserved_by("aegis", config.reserve) is None
    assert reserved_by("not-aegis-core", config.reserve) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "has no `url`"),
        ({"url": "ftp://host/simple/"}, "not an http(s) URL"),
        ({"url": "https://u:p@host/simple/"}, "carries credentials"),
        ({"url": "https://host/simple/?x=1"}, "query or fragment"),
        ({"url": "https://h/", "cooldown": -1}, "`cooldown` must be a number >= 0"),
        ({"url": "https://h/", "cooldown": True}, "`cooldown` must be a number"),
        ({"url": "https://h/", "reserve": "aegis-*"}, "`reserve` must be a list"),
        ({"url": "https://h/", "reserve": ["a/b"]}, "cannot reserve names"),
        ({"url": "https://h/", "offline": "yes"}, "`offline` must be true or false"),
        ({"url": "https://h/", "allow_hosts": ["a b"]}, "is not a host"),
        ({"url": "https://h/", "max_page_size": 10}, "`max_page_size` must be a number >= 1024"),
    ],
)
def test_malformed_settings_are_named(raw: dict[str, object], message: str) -> None:
    with pytest.raises(IndexServerError) as caught:
        parse_upstream(raw)
    assert message in str(caught.value)


def test_settings_round_trip_through_the_registry(packages: Path) -> None:
    storage = LocalStorage(packages)
    change = UpstreamChange(url="https://pypi.org/simple/", cooldown="3d", reserve=("aegis-*",))
    configure_upstream(storage, "root", change)
    configure_upstream(storage, "root", UpstreamChange(offline=True))
    configs = parse_registry(storage.read_state("indexes.json"))
    parsed = parse_upstream(configs["root"].upstream)
    assert parsed == UpstreamConfig(
        url="https://pypi.org/simple/", cooldown=259200, reserve=("aegis-*",), offline=True
    )
    configure_upstream(storage, "root", UpstreamChange(off=True))
    assert read_registry(storage)["root"].upstream is None


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["server", "index", "upstream", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("root", "--cooldown", "7d"), 1, "has no upstream yet"),
        (("root", "--url", "file:///srv"), 1, "not an http(s) URL"),
        (("root", "--url", "https://h/", "--cooldown", "soon"), 1, "not a duration"),
        (("root", "--url", "https://h/", "--reserve", "a b"), 1, "cannot reserve names"),
        (("root", "--off", "--url", "https://h/"), 2, "--off takes no other upstream option"),
        (("staging", "--url", "https://h/"), 1, "there is no index 'staging'"),
    ],
)
def test_refused_commands_change_nothing(
    packages: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    configure_upstream(LocalStorage(packages), "root", UpstreamChange(off=True))
    before = snapshot(packages)
    exit_code, output = _cli(*args, "-D", str(packages))
    assert exit_code == code, output
    assert message in output
    assert snapshot(packages) == before


def test_the_command_shows_and_sets(packages: Path) -> None:
    code, output = _cli("root", "-D", str(packages))
    assert (code, output) == (0, "root: upstream: off (unknown projects are 404)\n")
    code, output = _cli(
        "root", "-D", str(packages), "--url", "https://pypi.org/simple", "--reserve", "aegis-*"
    )
    assert code == 0, output
    assert "https://pypi.org/simple/ (online); cooldown 604800 s" in output
    assert "reserved: aegis-*" in output
    stored = json.loads((packages / ".releasekit" / "indexes.json").read_text())
    assert stored["indexes"][0]["upstream"]["reserve"] == ["aegis-*"]


def test_the_cache_lives_in_the_bucket_apart_from_the_index_files(
    moto_s3: MotoS3, stub: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = moto_s3.create_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = load_settings(
        {
            "packages_dir": tmp_path / "unused",
            "storage": f"s3://{bucket}/index",
            "authenticate": ".",
            "poll_interval": 0.05,
        },
        env={},
    )
    wheel = make_wheel(tmp_path, "goodlib", "1.0").read_bytes()
    name = "goodlib-1.0-py3-none-any.whl"
    stub.routes["/simple/goodlib/"] = page([entry(name, wheel)])
    stub.routes[f"/files/{name}"] = reply(200, wheel, "application/octet-stream")
    root = make_storage(settings)
    configure_upstream(root, "root", UpstreamChange(url=f"{stub.url}/simple/", cooldown="1d"))
    with TestClient(create_app(root, settings)) as client:
        listed = client.get("/simple/goodlib/", headers={"accept": JSON}).json()
        assert listed["files"][0]["hashes"]["sha256"] == hashlib.sha256(wheel).hexdigest()
        assert client.get(f"/packages/{name}").content == wheel
        ranged = client.get(f"/packages/{name}", headers={"range": "bytes=0-9"})
        assert (ranged.status_code, ranged.content) == (206, wheel[:10])
        assert client.get("/simple/", headers={"accept": JSON}).json()["projects"] == []
    assert root.scan() == []  # the index itself holds nothing: the copy is in the cache
    cache = make_storage(load_settings({"storage": f"s3://{bucket}/index/upstream/root"}, env={}))
    assert [f.filename for f in cache.scan()] == [name]
