"""`s3://bucket/prefix` parsing and credentials: good input, and refusals that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.errors import ConfigError
from releasekit.server.s3 import S3Settings, parse_s3_url
from releasekit.server.settings import load_settings


def test_url_endpoint_region_and_variables() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    got = parse_s3_url("s3://my-bucket/team/index/", env)
    assert got == S3Settings(
        "my-bucket", "team/index", "http://127.0.0.1:9000", "eu-west-1", "id", "secret", None
    )
    assert "secret" not in got.describe() and "s3://my-bucket/team/index" in got.describe()


def test_the_s3_endpoint_variable_wins_and_a_bare_bucket_has_no_prefix() -> None:
    env = {"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_S3": "http://b"}
    got = parse_s3_url("s3://bucket", env | {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"})
    assert got.endpoint == "http://b" and got.prefix == "" and got.access_key_id is None


def test_credentials_file_and_profile(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.write_text(
        "[default]\naws_access_key_id = d\naws_secret_access_key = ds\n"
        "[ci]\naws_access_key_id = c\naws_secret_access_key = cs\naws_session_token = t\n"
    )
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(creds)}
    assert parse_s3_url("s3://bucket", env).access_key_id == "d"
    ci = parse_s3_url("s3://bucket", env | {"AWS_PROFILE": "ci"})
    assert (ci.access_key_id, ci.secret_access_key, ci.session_token) == ("c", "cs", "t")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://bucket/x", "write s3://bucket/prefix"),
        ("s3://", "not a valid bucket name"),
        ("s3://UPPER/x", "not a valid bucket name"),
        ("s3://a..b/x", "not a valid bucket name"),
        ("s3://bucket/../escape", "prefix segment '..'"),
        ("s3://bucket/a/./b", "prefix segment '.'"),
        ("s3://bucket/.hidden", "prefix segment"),
    ],
)
def test_bad_urls_are_refused_with_the_fix(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        parse_s3_url(url, {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"})
    assert caught.value.hint


def test_a_half_profile_is_refused(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = only-id\n")
    with pytest.raises(ConfigError, match="only one of") as caught:
        parse_s3_url("s3://bucket", {"AWS_SHARED_CREDENTIALS_FILE": str(creds)})
    assert caught.value.hint and "aws_secret_access_key" in caught.value.hint


def test_the_storage_and_single_replica_settings() -> None:
    got = load_settings({"storage": " s3://b/p "}, env={"RELEASEKIT_SERVER_SINGLE_REPLICA": "yes"})
    assert got.storage == "s3://b/p" and got.single_replica
    assert load_settings(env={}).storage == "" and not load_settings(env={}).single_replica
    with pytest.raises(ConfigError, match="not a storage location") as caught:
        load_settings({"storage": "/srv/packages"}, env={})
    assert caught.value.hint and "s3://bucket/prefix" in caught.value.hint
    with pytest.raises(ConfigError, match="true or false"):
        load_settings(env={"RELEASEKIT_SERVER_SINGLE_REPLICA": "maybe"})
