"""Talking to an upstream index: bounded HTTP (deadline, size cap, redirects, no credentials).

Every request has a whole-request deadline (a slow drip cannot hold it open), a byte cap
counted after decoding (a gzip bomb cannot grow it), at most MAX_REDIRECTS redirects, each to
an allowed host and never from https to http, and carries no credentials: the client's
Authorization is never forwarded, and netrc and proxy variables are not read (`trust_env`).

    UpstreamError          a failure to name in a 502 / 504 problem
      UpstreamTimeout      the deadline passed (504)
      HashMismatch         the bytes are not the ones the page lists (502, nothing kept)
    NotCached              offline, and never cached (404)
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx2

from releasekit.server.upstream import UpstreamConfig

MAX_REDIRECTS = 5
PAGE_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
USER_AGENT = "releasekit-upstream/1"


class UpstreamError(Exception):
    """The upstream failed us; `detail` names it and says what happened."""

    status = 502
    code = "upstream-failed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream-timeout"


class HashMismatch(UpstreamError):
    code = "upstream-hash-mismatch"


class NotCached(Exception):
    """Offline, and the page or file asked for was never cached."""


def outcome_label(exc: UpstreamError) -> str:
    """The metrics outcome of a failure: `failed`, `timeout`, `hash_mismatch`."""
    return exc.code.removeprefix("upstream-").replace("-", "_")


@dataclass(frozen=True)
class Fetched:
    """A successful GET: the final URL, the content type and the body (pages only)."""

    url: str
    content_type: str
    body: bytes
    sha256: str
    size: int


def allowed(url: str, config: UpstreamConfig, *, after: str | None = None) -> bool:
    """Whether we may request `url`: http(s), an allowed host, no credentials, no downgrade."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return False
    if after is not None and urlsplit(after).scheme == "https" and parts.scheme != "https":
        return False
    return parts.netloc.lower() in config.hosts


async def fetch(
    url: str,
    config: UpstreamConfig,
    *,
    accept: str,
    limit: int,
    deadline: float,
    sink: Callable[[bytes], None] | None = None,
) -> Fetched | None:
    """GET `url` within the rules above; None on 404/410. With `sink` the body is streamed
    there (a file) instead of kept; its sha256 and size are returned either way."""
    timeout = httpx2.Timeout(deadline, connect=min(deadline, 10.0))
    try:
        async with asyncio.timeout(deadline):
            async with httpx2.AsyncClient(
                trust_env=False, follow_redirects=False, timeout=timeout
            ) as client:
                return await _follow(client, url, config, accept, limit, sink)
    except TimeoutError:
        raise UpstreamTimeout(
            f"upstream {_site(url)} did not answer {url} within {deadline:g} s"
        ) from None
    except httpx2.TimeoutException:
        raise UpstreamTimeout(f"upstream {_site(url)} timed out on {url}") from None
    except httpx2.HTTPError as exc:
        raise UpstreamError(f"upstream {_site(url)} failed on {url}: {exc!s}") from None


async def _follow(
    client: httpx2.AsyncClient,
    url: str,
    config: UpstreamConfig,
    accept: str,
    limit: int,
    sink: Callable[[bytes], None] | None,
) -> Fetched | None:
    headers = {"accept": accept, "user-agent": USER_AGENT}
    if sink is not None:
        headers["accept-encoding"] = "identity"  # the hash is over the file's own bytes
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        async with client.stream("GET", current, headers=headers) as response:
            if response.is_redirect:
                target = urljoin(current, response.headers.get("location", ""))
                if not allowed(target, config, after=current):
                    raise UpstreamError(
                        f"upstream {_site(url)} redirected {current} to {target}, "
                        "a host or scheme this index does not fetch from"
                    )
                current = target
                continue
            if response.status_code in (404, 410):
                return None
            if response.status_code != 200:
                raise UpstreamError(
                    f"upstream {_site(url)} answered {response.status_code} for {current}"
                )
            digest, size, body = hashlib.sha256(), 0, bytearray()
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise UpstreamError(
                        f"upstream {_site(url)} sent more than {limit} bytes for {current}"
                    )
                digest.update(chunk)
                if sink is None:
                    body += chunk
                else:
                    sink(chunk)
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            return Fetched(current, kind, bytes(body), digest.hexdigest(), size)
    raise UpstreamError(f"upstream {_site(url)} redirected more than {MAX_REDIRECTS} times")


def _site(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
