"""The S3 layer: settings, `s3://bucket/prefix` parsing and the few object operations the index uses.

The client is obstore (measured against boto3 on moto, benchmarks/bench_s3_client.py: ~11 ms to
import vs ~142 ms, and 4-6x lower latency for small PUT and conditional PUT; typed for mypy
--strict). Every key goes through `S3Bucket.key`, which refuses anything that could leave the
configured prefix. Failures of the store itself (unreachable, refused credentials) become
`S3Unavailable`, an OSError the HTTP edge answers with a 503 problem.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from releasekit.errors import ConfigError, MissingExtraError
from releasekit.server.storage import StorageUnavailable

if TYPE_CHECKING:
    from obstore.store import S3Store

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# One key segment: printable, no separator, never `.`/`..`, never hidden (our temp naming).
SEGMENT_RE = re.compile(r"^[A-Za-z0-9_+=~-][A-Za-z0-9._+=~!@-]{0,254}$")


class S3Unavailable(StorageUnavailable):
    """The bucket could not be reached or refused us: a 503, not a client error."""


@dataclass(frozen=True)
class S3Settings:
    """Where the bucket is and how to sign; secrets never appear in `describe`."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"S3 bucket s3://{self.bucket}/{self.prefix}{where}"


def _check_prefix(prefix: str, url: str) -> str:
    parts = [p for p in prefix.split("/") if p]
    for part in parts:
        if not SEGMENT_RE.match(part):
            raise ConfigError(
                f"{url}: prefix segment {part!r} is not allowed",
                hint="use letters, digits, '-', '_' and '.' (not '.' or '..') in the prefix",
            )
    return "/".join(parts)


def parse_s3_url(url: str, env: Mapping[str, str] | None = None) -> S3Settings:
    """`s3://bucket/prefix` plus endpoint, region and credentials from the AWS variables or file."""
    env = os.environ if env is None else env
    if not url.startswith("s3://"):
        raise ConfigError(f"{url!r} is not an S3 location", hint="write s3://bucket/prefix")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not BUCKET_RE.match(bucket) or ".." in bucket:
        raise ConfigError(
            f"{url}: {bucket!r} is not a valid bucket name",
            hint="a bucket name is 3-63 lowercase letters, digits, '.' or '-'",
        )
    key_id = env.get("AWS_ACCESS_KEY_ID")
    secret = env.get("AWS_SECRET_ACCESS_KEY")
    token = env.get("AWS_SESSION_TOKEN")
    if not key_id:
        key_id, secret, token = _credentials_file(env)
    return S3Settings(
        bucket=bucket,
        prefix=_check_prefix(prefix, url),
        endpoint=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        access_key_id=key_id,
        secret_access_key=secret,
        session_token=token,
    )


def _credentials_file(env: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    profile = env.get("AWS_PROFILE") or "default"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text())
    except FileNotFoundError:
        return None, None, None
    except (OSError, configparser.Error) as exc:
        raise ConfigError(
            f"cannot read the AWS credentials file {path}: {exc}",
            hint="fix the file or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ) from exc
    if not parser.has_section(profile):
        return None, None, None
    section = parser[profile]
    key_id, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    if bool(key_id) != bool(secret):
        raise ConfigError(
            f"profile [{profile}] in {path} has only one of the access key id and secret",
            hint="give both aws_access_key_id and aws_secret_access_key",
        )
    return key_id, secret, section.get("aws_session_token")


class S3Bucket:
    """The object operations the storage backend needs, with errors mapped to OSErrors."""

    def __init__(self, settings: S3Settings) -> None:
        try:
            from obstore.store import S3Store
        except ImportError:
            raise MissingExtraError(
                f"{settings.describe()} needs the S3 client",
                hint="pip install 'releasekit[server,s3]'",
            ) from None

        self.settings = settings
        config: dict[str, str | bool] = {"region": settings.region}
        if settings.endpoint:
            config["endpoint"] = settings.endpoint
            config["virtual_hosted_style_request"] = False
        if settings.access_key_id and settings.secret_access_key:
            config["access_key_id"] = settings.access_key_id
            config["secret_access_key"] = settings.secret_access_key
            if settings.session_token:
                config["session_token"] = settings.session_token
        allow_http = bool(settings.endpoint and settings.endpoint.startswith("http://"))
        self._store: S3Store = S3Store(
            settings.bucket,
            config=config,  # type: ignore[arg-type]  # a plain dict of the S3Config keys
            client_options={"allow_http": allow_http, "connect_timeout": timedelta(seconds=3)},
            # A dead endpoint must fail within seconds (a 503), not retry for minutes.
            retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=10)},
        )

    def key(self, *segments: str) -> str:
        """The full key of `segments` under the prefix; ValueError for anything that could escape."""
        for segment in segments:
            if not SEGMENT_RE.match(segment) or ".." in segment:
                raise ValueError(f"{segment!r} is not a safe object key segment")
        return "/".join(p for p in (self.settings.prefix, *segments) if p)

    def _fail(self, exc: Exception, action: str, key: str) -> OSError:
        if isinstance(exc, FileNotFoundError):  # what obstore raises for a 404
            return FileNotFoundError(key)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return S3Unavailable(
            f"{self.settings.describe()}: cannot {action} {key}: {first} "
            "(check the endpoint, the bucket and the credentials)"
        )

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        """Write the object (a reader is streamed, multipart above 5 MiB)."""
        import obstore

        try:
            obstore.put(self._store, key, data)
        except Exception as exc:
            raise self._fail(exc, "write", key) from exc

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """`If-None-Match: *`: True when this call created the object, False when it existed."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            obstore.put(self._store, key, data, mode="create")
        except (AlreadyExistsError, PreconditionError):
            return False
        except Exception as exc:
            raise self._fail(exc, "create", key) from exc
        return True

    def get(self, key: str) -> bytes:
        """The whole object (FileNotFoundError when absent)."""
        import obstore

        try:
            return bytes(obstore.get(self._store, key).bytes())
        except Exception as exc:
            raise self._fail(exc, "read", key) from exc

    def get_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes `[start, end)` streamed (the caller clips to the object's size)."""
        import obstore

        try:
            result = obstore.get(self._store, key, options={"range": (start, end)})
            for chunk in result.stream(min_chunk_size=256 * 1024):
                yield bytes(chunk)
        except Exception as exc:
            raise self._fail(exc, "read", key) from exc

    def head(self, key: str) -> tuple[int, str | None] | None:
        """(size, etag), or None when absent."""
        import obstore

        try:
            meta = obstore.head(self._store, key)
        except Exception as exc:
            failure = self._fail(exc, "look up", key)
            if isinstance(failure, FileNotFoundError):
                return None
            raise failure from exc
        return meta["size"], meta["e_tag"]

    def list(
        self, prefix: str, offset: str | None = None
    ) -> Iterator[tuple[str, int, float, str | None]]:
        """(key, size, last-modified epoch, etag) under `prefix/`, only keys after `offset`."""
        import obstore

        try:
            for chunk in obstore.list(self._store, prefix + "/", offset=offset):
                for meta in chunk:
                    when = meta["last_modified"].timestamp()
                    yield meta["path"], meta["size"], when, meta["e_tag"]
        except Exception as exc:
            raise self._fail(exc, "list", prefix) from exc

    def delete(self, key: str) -> None:
        """Remove the object (absent is fine: S3 deletes are idempotent)."""
        import obstore

        try:
            obstore.delete(self._store, key)
        except Exception as exc:
            failure = self._fail(exc, "delete", key)
            if not isinstance(failure, FileNotFoundError):
                raise failure from exc
