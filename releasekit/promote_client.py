"""`releasekit promote --url`: ask a running index to promote a release (`POST /_/promote`).

For CI: a promote-scoped API token (`--token`, RELEASEKIT_PROMOTE_TOKEN) is sent as a Bearer
token; without one, the credentials `releasekit publish` would use for that URL (RELEASEKIT_* /
TWINE_* variables, ~/.pypirc, keyring) are sent as HTTP Basic. The answer is the server's
`Promotion`; a refusal is a PublishError carrying the server's detail and hint.
"""

from __future__ import annotations

from typing import Any

import requests

from releasekit.errors import PublishError
from releasekit.server.promote_store import PromotedFile, Promotion

TIMEOUT = (10, 600)  # connect, read: a large release is copied before the server answers
ENDPOINT = "_/promote"


def promote_url(base: str) -> str:
    """The promote endpoint of the server at `base` (its root URL, with any path prefix)."""
    if not base.startswith(("http://", "https://")):
        raise PublishError(
            f"--url {base!r} is not an http(s) URL",
            hint="pass the index's root URL, e.g. https://pypi.internal.example/",
        )
    return base.rstrip("/") + "/" + ENDPOINT


def promote_remote(
    base: str,
    body: dict[str, Any],
    *,
    token: str | None = None,
    auth: tuple[str, str] | None = None,
) -> Promotion:
    """POST the promotion `body` to the server at `base`; the server's answer as a Promotion."""
    url = promote_url(base)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = requests.post(
            url, json=body, headers=headers, auth=None if token else auth, timeout=TIMEOUT
        )
    except requests.RequestException as exc:
        raise PublishError(
            f"cannot reach the index at {url}: {type(exc).__name__}",
            hint="check --url and that the index is running, then run the same command again",
        ) from None
    if response.status_code != 200:
        raise _refusal(url, response, token)
    try:
        return _promotion(response.json())
    except (ValueError, KeyError, TypeError):
        raise PublishError(
            f"{url} answered 200 with something that is not a promotion",
            hint="check --url: it must be the root of a releasekit index",
        ) from None


def _promotion(data: dict[str, Any]) -> Promotion:
    files = tuple(
        PromotedFile(str(f["filename"]), str(f["sha256"]), int(f["size"]), f["action"])
        for f in data["files"]
    )
    if any(f.action not in ("copied", "present") for f in files):
        raise ValueError("unknown action")
    return Promotion(
        str(data["project"]), str(data["version"]), str(data["from"]), str(data["to"]), files
    )


def _refusal(url: str, response: requests.Response, token: str | None) -> PublishError:
    detail, hint = response.reason or "", None
    try:
        body = response.json()
        detail, hint = str(body.get("detail") or detail), body.get("hint")
    except (ValueError, AttributeError):
        pass
    if isinstance(hint, str) and detail.endswith(f" ({hint})"):
        detail = detail.removesuffix(f" ({hint})")  # the server repeats it for pip and twine
    if token:
        detail = detail.replace(token, "***")
    status = response.status_code
    if status in (401, 403) and not hint:
        hint = "pass a token with the promote right (--token or RELEASEKIT_PROMOTE_TOKEN)"
    if status == 404 and detail.startswith("nothing at"):
        hint = "check --url: it must be the root of a releasekit index that can promote"
    return PublishError(
        f"the index refused the promotion ({status}): {detail}",
        hint=hint if isinstance(hint, str) else "fix what the index reports, then run again",
    )
