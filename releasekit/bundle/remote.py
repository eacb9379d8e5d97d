"""A running target index seen over HTTP: what it holds (JSON simple API) and uploads to it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import requests

from releasekit.errors import BundleError

JSON = "application/vnd.pypi.simple.v1+json"
TIMEOUT = 120


class RemoteIndex:
    """The index at `url` (its root, e.g. http://pypi.local/), with optional Basic auth."""

    def __init__(self, url: str, auth: tuple[str, str] | None) -> None:
        self.root = url.rstrip("/").removesuffix("/simple").removesuffix("/legacy") + "/"
        self.session = requests.Session()
        self.session.auth = auth

    def _refused(self, response: requests.Response, what: str) -> BundleError:
        detail = response.text[:300].strip()
        hint = "pass --user/--password (or RELEASEKIT_INDEX_USER/_PASSWORD) of an uploader"
        if response.status_code not in (401, 403):
            hint = "check --index: it is the index root, e.g. http://pypi.local/"
        return BundleError(f"{what}: the index answered {response.status_code} {detail}", hint=hint)

    def state(self, projects: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
        """({filename: sha256}, {filename: yank reason}) for the given projects."""
        existing, yanked = {}, {}
        for project in projects:
            url = f"{self.root}simple/{project}/"
            try:
                response = self.session.get(url, headers={"Accept": JSON}, timeout=TIMEOUT)
            except requests.RequestException as exc:
                raise BundleError(
                    f"cannot reach the index at {self.root}: {exc}", hint="is the server running?"
                ) from None
            if response.status_code == 404:
                continue
            if response.status_code != 200:
                raise self._refused(response, f"reading {url}")
            for entry in response.json().get("files", []):
                existing[entry["filename"]] = entry.get("hashes", {}).get("sha256", "")
                flag = entry.get("yanked", False)
                if flag:
                    yanked[entry["filename"]] = flag if isinstance(flag, str) else ""
        return existing, yanked

    def upload(self, path: Path, project: str, version: str, sha256: str) -> None:
        """Upload one file as twine does; a refusal names the file."""
        fields = {
            ":action": "file_upload",
            "protocol_version": "1",
            "name": project,
            "version": version,
            "sha256_digest": sha256,
            "filetype": "bdist_wheel" if path.name.endswith(".whl") else "sdist",
        }
        try:
            with path.open("rb") as handle:
                response = self.session.post(
                    f"{self.root}legacy/",
                    data=fields,
                    files={"content": (path.name, handle, "application/octet-stream")},
                    timeout=TIMEOUT,
                )
        except requests.RequestException as exc:
            raise BundleError(
                f"uploading {path.name} failed: {exc}",
                hint="run the import again: files already uploaded are skipped",
            ) from None
        if response.status_code != 200:
            raise self._refused(response, f"uploading {path.name}")
