"""Publish one version: ask the index what it has, upload with twine's library API, read back.

The index is asked through its simple API (PEP 691 JSON, PEP 503 HTML as a fallback) rather than
with twine's `--skip-existing`, which twine refuses for any index but PyPI since 6.2. Files the
index already holds byte for byte are skipped, so a run cut off half-way resumes where it stopped;
a file the index holds with other bytes is a refusal unless `force`.
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import requests
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from twine.commands.upload import upload as twine_upload
from twine.exceptions import InvalidDistribution, RedirectDetected, TwineException
from twine.settings import Settings

from releasekit.build import Distributions, parse_distribution_filename
from releasekit.config import Config
from releasekit.credentials import Target, resolve_target
from releasekit.errors import PublishError

__all__ = ["Target", "existing_files", "publish", "resolve_target", "upload", "verify"]

Progress = Callable[[str], None]
_SIMPLE_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.1"
)
_TIMEOUT = 60.0
_CREDENTIALS_HINT = (
    "set RELEASEKIT_USERNAME and RELEASEKIT_PASSWORD (or TWINE_USERNAME/TWINE_PASSWORD), "
    "or add username/password to the repository's section of ~/.pypirc"
)


def publish(
    config: Config,
    dists: Distributions,
    *,
    repository: str | None,
    force: bool,
    progress: Progress,
    env: Mapping[str, str] | None = None,
    present: Mapping[str, str] | None = None,
) -> list[str]:
    """Check the index, upload what is missing (or different, with `force`), verify; uploaded names.

    `present` is what the index listed when the release was planned; without it, the index is
    asked here first.
    """
    target = resolve_target(config, repository, env)

    def say(line: str) -> None:
        progress(target.scrub(line))

    if present is None:
        say(f"checking {target.label} for {dists.name} {dists.version}")
        present = existing_files(target, dists.name, dists.version)
    local = {path.name: sha256_of(path) for path in dists.files}
    conflicts = sorted(name for name in present if present[name] != local.get(name))
    if conflicts and not force:
        raise PublishError(
            f"{dists.name} {dists.version} is already on {target.label} with other files: "
            + ", ".join(conflicts),
            hint="bump the version and release again, or pass --force "
            "(the index must allow overwriting)",
        )
    to_upload = [path for path in dists.files if present.get(path.name) != local[path.name]]
    for name in sorted(set(local) - {path.name for path in to_upload}):
        say(f"skipping {name}: already on the index with the same sha256")
    if to_upload:
        upload(target, dists, progress=say, files=to_upload)
    verify(target, dists)
    say(f"verified {', '.join(sorted(local))} on {target.label}")
    return [path.name for path in to_upload]


def existing_files(target: Target, name: str, version: str) -> dict[str, str]:
    """Filename -> sha256 of the files of `name` `version` that the index lists."""
    url = f"{target.simple_url}{canonicalize_name(name)}/"
    response = _get(target, url)
    if response.status_code == 404:
        return {}
    if response.status_code in (401, 403):
        raise PublishError(
            target.scrub(
                f"{target.label} refused to list {name} ({response.status_code}{_detail(response)})"
            ),
            hint=_CREDENTIALS_HINT,
        )
    if response.status_code != 200:
        raise PublishError(
            target.scrub(
                f"{url} answered {response.status_code}{_detail(response)} instead of a project page"
            ),
            hint="check the repository URL: it must be the index's upload or simple URL",
        )
    content_type = response.headers.get("content-type", "")
    listed = _parse_json(response) if "json" in content_type else _parse_html(response.text)
    wanted = (canonicalize_name(name), _version_key(version))
    return {file: digest for file, digest in listed.items() if _file_key(file) == wanted}


def upload(
    target: Target,
    dists: Distributions,
    *,
    progress: Progress,
    files: Sequence[Path] | None = None,
) -> None:
    """Upload `files` (default: both of `dists`) with twine; its progress bar shows on the terminal."""
    paths = list(dists.files if files is None else files)
    progress(target.scrub(f"uploading {', '.join(p.name for p in paths)} to {target.label}"))
    settings = Settings(
        repository_url=target.upload_url,
        # Empty strings, not None: twine would otherwise prompt or fail for an open index.
        username=target.username or "",
        password=target.password or "",
        non_interactive=True,
        disable_progress_bar=False,
        verbose=False,
    )
    try:
        twine_upload(settings, [str(path) for path in paths])
    except requests.HTTPError as exc:
        raise _http_error(target, exc.response) from None
    except RedirectDetected as exc:
        raise PublishError(
            target.scrub(f"the upload to {target.upload_url} was redirected: {exc}"),
            hint="use the final upload URL as the repository URL (uploads are never redirected)",
        ) from None
    except requests.ConnectionError as exc:
        raise _unreachable(target, exc) from None
    except requests.Timeout:
        raise PublishError(
            f"the upload to {target.label} timed out", hint="run the same command again"
        ) from None
    except InvalidDistribution as exc:
        raise PublishError(
            f"twine refused the files: {exc}", hint="build them again with `releasekit build`"
        ) from None
    except TwineException as exc:  # missing credentials, configuration
        raise PublishError(
            target.scrub(f"twine refused the upload: {exc}"), hint=_CREDENTIALS_HINT
        ) from None


def verify(target: Target, dists: Distributions) -> None:
    """Read the index back: every file of `dists` is listed with its local sha256."""
    listed = existing_files(target, dists.name, dists.version)
    for path in dists.files:
        local = sha256_of(path)
        if path.name not in listed:
            raise PublishError(
                f"{target.label} does not list {path.name} after the upload",
                hint="run the same command again; if it persists, check the index's logs",
            )
        if listed[path.name] != local:
            raise PublishError(
                f"{target.label} lists {path.name} with sha256 {listed[path.name] or '(none)'}, "
                f"but the local file has {local}",
                hint="the index holds other bytes under this name: bump the version, "
                "or re-upload with --force if the index allows overwriting",
            )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _get(target: Target, url: str) -> requests.Response:
    auth = (target.username or "", target.password) if target.password else None
    try:
        return requests.get(url, headers={"Accept": _SIMPLE_ACCEPT}, auth=auth, timeout=_TIMEOUT)
    except requests.ConnectionError as exc:
        raise _unreachable(target, exc) from None
    except requests.RequestException as exc:
        raise PublishError(
            target.scrub(f"cannot read {url}: {type(exc).__name__}"),
            hint="check the repository URL and that the index is running",
        ) from None


def _http_error(target: Target, response: requests.Response | None) -> PublishError:
    if response is None:  # requests always attaches it for raise_for_status; be safe
        return PublishError(f"{target.label} rejected the upload", hint=_CREDENTIALS_HINT)
    status = response.status_code
    message = target.scrub(f"{target.label} rejected the upload ({status}{_detail(response)})")
    if status in (401, 403):
        return PublishError(message, hint=_CREDENTIALS_HINT)
    if status == 409 or (status == 400 and "exist" in response.text.lower()):
        return PublishError(
            message,
            hint="the index refuses to replace a file: bump the version, or run the index "
            "with --overwrite to allow --force",
        )
    if status in (404, 405):
        return PublishError(message, hint="check the repository URL: it must be the upload URL")
    return PublishError(message, hint="fix what the index reports and run the same command again")


def _unreachable(target: Target, exc: requests.RequestException) -> PublishError:
    if isinstance(exc, requests.exceptions.SSLError):
        return PublishError(
            f"cannot verify the TLS certificate of {target.label}",
            hint="point REQUESTS_CA_BUNDLE at the CA certificate that signed the index's "
            "certificate, then run the same command again",
        )
    reason = type(exc).__name__
    if "refused" in str(exc).lower():
        reason = "connection refused"
    return PublishError(
        f"cannot reach the index at {target.label}: {reason}",
        hint="start the index (make pypi-server-start) or check the repository URL, "
        "then run the same command again",
    )


def _detail(response: requests.Response) -> str:
    """': <detail>' from an RFC 9457 problem body, else a short plain-text body."""
    text = response.text.strip()
    if "json" in response.headers.get("content-type", ""):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            text = str(body.get("detail") or body.get("title") or "")
    elif "html" in response.headers.get("content-type", ""):
        text = ""  # an HTML error page says nothing a terminal can show well
    return f": {text[:300]}" if text else f" {response.reason}" if response.reason else ""


def _parse_json(response: requests.Response) -> dict[str, str]:
    try:
        files = response.json()["files"]
        return {str(f["filename"]): str(f.get("hashes", {}).get("sha256", "")) for f in files}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PublishError(
            f"{response.url} is not a PEP 691 project page",
            hint="check the repository URL: it must point at a Python package index",
        ) from None


class _Anchors(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            path, _, fragment = href.partition("#")
            filename = urllib.parse.unquote(path.rsplit("/", 1)[-1])
            algorithm, _, digest = fragment.partition("=")
            self.files[filename] = digest if algorithm == "sha256" else ""


def _parse_html(text: str) -> dict[str, str]:
    parser = _Anchors()
    parser.feed(text)
    return parser.files


def _file_key(filename: str) -> tuple[str, Version] | None:
    return parse_distribution_filename(filename)


def _version_key(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion:
        raise PublishError(f"{version!r} is not a PEP 440 version") from None
