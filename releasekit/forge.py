"""GitHub releases through the REST API: one release per tag, created or updated in place.

`publish_release` looks the tag's release up first (by tag, then among drafts, which the by-tag
endpoint does not return) and PATCHes it when it exists, so re-running a workflow never makes a
second release. The token travels only in the Authorization header: it is never part of a
message, and any text GitHub sends back is scrubbed of it before it reaches an error.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import requests

from releasekit.config import Config
from releasekit.errors import ReleaseError
from releasekit.notes import section_for
from releasekit.versioning import Version, parse_tag

DEFAULT_API_URL = "https://api.github.com"
_TIMEOUT = 30
# git@github.com:owner/repo.git, https://github.com/owner/repo(.git), ssh://git@host/owner/repo
_REMOTE = re.compile(r"[:/](?P<slug>[^/:]+/[^/]+?)(?:\.git)?/?$")


class ForgeError(ReleaseError):
    """The forge (GitHub) refused or could not be asked to create or update a release."""


@dataclass(frozen=True)
class ReleaseSpec:
    """What the GitHub release of one version should look like."""

    repository: str
    tag: str
    name: str
    body: str
    draft: bool = False
    prerelease: bool = False


@dataclass(frozen=True)
class ForgeRelease:
    """The release as GitHub holds it after `publish_release`."""

    action: Literal["created", "updated"]
    id: int
    url: str
    tag: str
    prerelease: bool
    draft: bool


@dataclass(frozen=True)
class Forge:
    """Where the API is and the token to use; the token never appears in repr()."""

    api_url: str = DEFAULT_API_URL
    token: str = field(default="", repr=False)

    def scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text


def forge_from_env(api_url: str | None, env: Mapping[str, str]) -> Forge:
    """`--api-url` or GITHUB_API_URL (GitHub Enterprise: https://HOST/api/v3), token GITHUB_TOKEN."""
    token = env.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise ForgeError(
            "GITHUB_TOKEN is not set: creating a GitHub release needs a token",
            hint="in a workflow add `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` and "
            "`permissions: contents: write`; locally export a token with the `repo` scope",
        )
    url = (api_url or env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ForgeError(
            f"API URL {url!r} is not an http(s) URL",
            hint="use https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise",
        )
    return Forge(api_url=url, token=token)


def resolve_repository(explicit: str | None, env: Mapping[str, str], remote_url: str | None) -> str:
    """OWNER/REPO from `--repository`, else GITHUB_REPOSITORY, else the git remote's URL."""
    for candidate in (explicit, env.get("GITHUB_REPOSITORY")):
        if candidate:
            if not re.fullmatch(r"[^/\s]+/[^/\s]+", candidate):
                raise ForgeError(
                    f"repository {candidate!r} is not OWNER/REPO", hint="e.g. acme/widgets"
                )
            return candidate
    match = _REMOTE.search(remote_url or "")
    if match is None:
        raise ForgeError(
            "cannot tell which GitHub repository to release in: no --repository, no "
            "GITHUB_REPOSITORY and no usable git remote URL",
            hint="pass --repository OWNER/REPO",
        )
    return match.group("slug")


def release_spec(
    config: Config,
    version_or_tag: str,
    repository: str,
    *,
    tag: str | None = None,
    draft: bool = False,
    prerelease: bool | None = None,
) -> ReleaseSpec:
    """The release of one version: its tag from tag_format, its changelog section as the notes.

    `version_or_tag` may be the tag itself (`v1.2.3`, as GITHUB_REF_NAME gives it).
    `prerelease=None` marks PEP 440 prereleases (`1.3.0rc1`) as such.
    """
    version = parse_tag(version_or_tag, config.tag_format) or Version.parse(version_or_tag)
    name = tag or config.tag_format.format(version=version)
    body = _without_heading(section_for(config, str(version)), version)
    return ReleaseSpec(
        repository=repository,
        tag=name,
        name=name,
        body=body or f"Release {version}.\n",
        draft=draft,
        prerelease=version.is_prerelease if prerelease is None else prerelease,
    )


def _without_heading(section: str, version: Version) -> str:
    """A rendered section starts with `## 1.2.3 - date`; the release title already says that."""
    lines = section.splitlines()
    if lines and lines[0].startswith("#") and str(version) in lines[0]:
        lines = lines[1:]
        while lines and not lines[0].strip():
            lines.pop(0)
    return "\n".join(lines) + "\n" if lines else ""


def publish_release(forge: Forge, spec: ReleaseSpec) -> ForgeRelease:
    """Create the release of `spec.tag`, or update the one that exists (never a duplicate)."""
    base = f"{forge.api_url}/repos/{spec.repository}/releases"
    payload = {
        "tag_name": spec.tag,
        "name": spec.name,
        "body": spec.body,
        "draft": spec.draft,
        "prerelease": spec.prerelease,
    }
    existing = _find_existing(forge, base, spec)
    if existing is None:
        data = _call(forge, "POST", base, spec, json=payload)
        action: Literal["created", "updated"] = "created"
    else:
        data = _call(forge, "PATCH", f"{base}/{existing}", spec, json=payload)
        action = "updated"
    return ForgeRelease(
        action=action,
        id=int(data["id"]),
        url=str(data.get("html_url") or data.get("url") or ""),
        tag=str(data.get("tag_name", spec.tag)),
        prerelease=bool(data.get("prerelease", spec.prerelease)),
        draft=bool(data.get("draft", spec.draft)),
    )


def _find_existing(forge: Forge, base: str, spec: ReleaseSpec) -> int | None:
    tag = urllib.parse.quote(spec.tag, safe="")
    found = _call(forge, "GET", f"{base}/tags/{tag}", spec, missing_ok=True)
    if found is not None:
        return int(found["id"])
    # Drafts have no published tag, so only the listing (first page, newest first) shows them.
    listing = _call(forge, "GET", f"{base}?per_page=100", spec, missing_ok=True)
    for release in listing if isinstance(listing, list) else []:
        if release.get("tag_name") == spec.tag:
            return int(release["id"])
    return None


def _call(
    forge: Forge,
    method: str,
    url: str,
    spec: ReleaseSpec,
    *,
    json: dict[str, Any] | None = None,
    missing_ok: bool = False,
) -> Any:
    headers = {
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {forge.token}",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "releasekit",
    }
    try:
        response = requests.request(method, url, headers=headers, json=json, timeout=_TIMEOUT)
    except requests.RequestException as exc:
        raise ForgeError(
            f"cannot reach the GitHub API at {forge.api_url}: {type(exc).__name__}",
            hint="check --api-url / GITHUB_API_URL (GitHub Enterprise: https://HOST/api/v3) "
            "and the network",
        ) from None
    if missing_ok and response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise _http_error(forge, method, response, spec)
    return response.json()


def _http_error(
    forge: Forge, method: str, response: requests.Response, spec: ReleaseSpec
) -> ForgeError:
    status = response.status_code
    detail = forge.scrub(_github_message(response))
    where = f"{spec.repository} at {forge.api_url}"
    if status == 401:
        return ForgeError(
            f"GitHub rejected the token (401 {detail})",
            hint="GITHUB_TOKEN is expired or wrong: pass secrets.GITHUB_TOKEN or a valid token",
        )
    if status == 403:
        limited = response.headers.get("X-RateLimit-Remaining") == "0"
        return ForgeError(
            f"GitHub refused to {method} the release of {spec.tag} in {where} (403 {detail})",
            hint="the API rate limit is used up: retry after it resets"
            if limited
            else "the token may not write releases: give the job `permissions: contents: write` "
            "(or a token with the `repo` scope)",
        )
    if status == 404:
        return ForgeError(
            f"repository {where} was not found (404), or the token cannot see it",
            hint="check --repository / GITHUB_REPOSITORY, the token's access, and --api-url "
            "for GitHub Enterprise (https://HOST/api/v3)",
        )
    if status == 422:
        return ForgeError(
            f"GitHub did not accept the release of {spec.tag} in {where} (422 {detail})",
            hint=f"push the tag first (git push origin {spec.tag}); a release needs a valid, "
            "unique tag",
        )
    return ForgeError(f"GitHub answered {status} to {method} in {where}: {detail}")


def _github_message(response: requests.Response) -> str:
    """GitHub's `message` plus its `errors` details (422 says which field is wrong)."""
    try:
        data = response.json()
    except ValueError:
        return response.reason or response.text[:200]
    if not isinstance(data, dict):
        return response.reason or ""
    parts = [str(data.get("message", response.reason or ""))]
    for error in data.get("errors", []) or []:
        if isinstance(error, dict):
            bits = [str(error[k]) for k in ("field", "code", "message") if error.get(k)]
            parts.append(" ".join(bits))
        else:
            parts.append(str(error))
    return ": ".join(part for part in parts if part)


def remote_url(root: Path) -> str | None:
    """The URL of the branch's remote (else origin), or None outside a repository or remote."""
    from releasekit.git import GitRepository

    try:
        return GitRepository(root).remote_url()
    except ReleaseError:
        return None
