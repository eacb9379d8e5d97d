"""`client check`: reach an index, read its API version, test auth, and ask pip/uv/poetry.

Each client runs in isolation (no user config, an explicit index URL, no cache) with the
credentials given here, through a temporary netrc (pip, uv) or POETRY_HTTP_BASIC_* (poetry), so
the answer is about the index and the credentials, not about leftovers on this machine.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import requests
from packaging.utils import canonicalize_name

from releasekit.clients.model import Credentials, IndexUrls, index_urls, redact
from releasekit.errors import PublishError

ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
_HTML_VERSION = re.compile(r'<meta\s+name="pypi:repository-version"\s+content="([^"]+)"')
# Variables that would point a client somewhere else than the index under test.
_REDIRECTING = re.compile(
    r"^(PIP_(?!CERT$|CLIENT_CERT$)|UV_INDEX|UV_DEFAULT_INDEX|UV_EXTRA_INDEX|UV_FIND_LINKS|POETRY_)"
)


@dataclass(frozen=True)
class ClientCheck:
    """Whether one client resolves the package from the index, and why not."""

    client: str
    outcome: Literal["ok", "failed", "skipped"]
    detail: str


@dataclass(frozen=True)
class IndexReport:
    """What `client check` found out about an index."""

    simple_url: str
    api_version: str | None
    content_type: str
    auth: str
    auth_ok: bool  # reading works with the credentials given (or without, when none are needed)
    package: str | None = None
    versions: tuple[str, ...] | None = None  # None: not asked, or not on the index
    clients: tuple[ClientCheck, ...] = ()


def check_index(
    index_url: str,
    *,
    package: str | None = None,
    credentials: Credentials | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 15.0,
) -> IndexReport:
    """Reach the index's simple API and, for `package`, ask each installed client to resolve it."""
    urls = index_urls(index_url)
    secrets = (credentials.password,) if credentials else ()
    auth = (credentials.username, credentials.password) if credentials else None
    with requests.Session() as client:
        # No netrc or proxy from this machine sneaks credentials into the test.
        client.trust_env = False
        anonymous = _get(client, urls.simple, None, secrets, timeout)
        answer = _get(client, urls.simple, auth, secrets, timeout) if auth else anonymous
        verdict = _auth_verdict(anonymous.status_code, answer.status_code, auth is not None)
        auth_ok = answer.status_code == 200
        if answer.status_code not in (200, 401, 403):
            raise PublishError(
                f"{urls.simple} answered HTTP {answer.status_code}",
                hint="pass the index's simple API URL, e.g. https://host/simple/",
            )
        content_type = answer.headers.get("content-type", "")
        api_version = _api_version(answer) if answer.status_code == 200 else None
        versions = None
        if package is not None and answer.status_code == 200:
            url = f"{urls.simple}{canonicalize_name(package)}/"
            project = _get(client, url, auth, secrets, timeout)
            versions = _versions(project) if project.status_code == 200 else None
    report = IndexReport(
        urls.simple, api_version, content_type, verdict, auth_ok, package, versions
    )
    if package is None:
        return report
    environ = {
        k: v for k, v in (os.environ if env is None else env).items() if not _REDIRECTING.match(k)
    }
    clients = (
        _check_pip(urls, package, credentials, environ),
        _check_uv(urls, package, credentials, environ),
        _check_poetry(urls, package, credentials, environ),
    )
    return IndexReport(
        urls.simple, api_version, content_type, verdict, auth_ok, package, versions, clients
    )


def _get(
    client: requests.Session,
    url: str,
    auth: tuple[str, str] | None,
    secrets: tuple[str, ...],
    timeout: float,
) -> requests.Response:
    try:
        return client.get(url, headers={"Accept": ACCEPT}, auth=auth, timeout=timeout)
    except requests.RequestException as exc:
        raise PublishError(
            f"cannot reach {url}: {redact(str(exc), secrets) or exc.__class__.__name__}",
            hint="check the URL, that the index is running, and the network or proxy",
        ) from None


def _auth_verdict(anonymous: int, answer: int, with_credentials: bool) -> str:
    if not with_credentials:
        if anonymous == 200:
            return "not required to read"
        return f"required (HTTP {anonymous}): pass --username and --password-env"
    if answer != 200:
        return f"credentials refused (HTTP {answer})"
    if anonymous == 200:
        return "not required to read (credentials accepted)"
    return f"required (HTTP {anonymous} without); credentials accepted"


def _api_version(response: requests.Response) -> str | None:
    if "json" in response.headers.get("content-type", ""):
        try:
            version = response.json().get("meta", {}).get("api-version")
        except ValueError:
            return None
        return str(version) if version else None
    match = _HTML_VERSION.search(response.text)
    return match.group(1) if match else None


def _versions(response: requests.Response) -> tuple[str, ...] | None:
    if "json" not in response.headers.get("content-type", ""):
        return ()  # an HTML page lists files, not versions: found, versions unknown
    try:
        return tuple(str(version) for version in response.json().get("versions", []))
    except ValueError:
        return None


def _check_pip(
    urls: IndexUrls, package: str, credentials: Credentials | None, env: dict[str, str]
) -> ClientCheck:
    if importlib.util.find_spec("pip") is None:
        return ClientCheck("pip", "skipped", "pip is not installed next to releasekit")
    with tempfile.TemporaryDirectory(prefix="releasekit-check-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--isolated"]
        command += ["--no-input", "--no-cache-dir", "-d", f"{tmp}/out", "--index-url", urls.simple]
        if urls.is_plain_http:
            command += ["--trusted-host", urls.simple.split("/")[2]]
        # --isolated ignores PIP_* variables, but a private CA bundle is still needed.
        for option, variable in (("--cert", "PIP_CERT"), ("--client-cert", "PIP_CLIENT_CERT")):
            command += [option, env[variable]] if env.get(variable) else []
        result = _run([*command, package], _with_netrc(env, urls, credentials, Path(tmp)), tmp)
        files = sorted(p.name for p in Path(tmp, "out").glob("*")) if result.returncode == 0 else []
    return _outcome("pip", result, f"downloads {', '.join(files)}", credentials)


def _check_uv(
    urls: IndexUrls, package: str, credentials: Credentials | None, env: dict[str, str]
) -> ClientCheck:
    found = shutil.which("uv", path=env.get("PATH"))
    beside = Path(sys.executable).parent / "uv"
    uv = found or (str(beside) if beside.exists() else None)
    if uv is None:
        return ClientCheck("uv", "skipped", "uv is not installed")
    with tempfile.TemporaryDirectory(prefix="releasekit-check-") as tmp:
        requirements = Path(tmp, "requirements.in")
        requirements.write_text(f"{package}\n", encoding="utf-8")
        command = [
            uv,
            "pip",
            "compile",
            str(requirements),
            "--no-config",
            "--no-deps",
            "--no-cache",
        ]
        command += ["--no-header", "--no-annotate", "--default-index", urls.simple]
        command += ["--python", sys.executable]
        result = _run(command, _with_netrc(env, urls, credentials, Path(tmp)), tmp)
    pins = [line for line in result.stdout.splitlines() if "==" in line]
    return _outcome("uv", result, f"resolves {', '.join(pins)}", credentials)


def _check_poetry(
    urls: IndexUrls, package: str, credentials: Credentials | None, env: dict[str, str]
) -> ClientCheck:
    poetry = shutil.which("poetry", path=env.get("PATH"))
    if poetry is None:
        return ClientCheck("poetry", "skipped", "poetry is not installed")
    major, minor = sys.version_info[:2]
    with tempfile.TemporaryDirectory(prefix="releasekit-check-") as tmp:
        Path(tmp, "pyproject.toml").write_text(
            f'[project]\nname = "releasekit-check"\nversion = "0"\n'
            f'requires-python = ">={major}.{minor},<{major}.{minor + 1}"\n'
            f"dependencies = [{package!r}]\n\n"
            "[tool.poetry]\npackage-mode = false\n\n"
            f'[[tool.poetry.source]]\nname = "checked"\nurl = "{urls.simple}"\n'
            'priority = "primary"\n',
            encoding="utf-8",
        )
        environ = {**env, "POETRY_CONFIG_DIR": f"{tmp}/config", "POETRY_CACHE_DIR": f"{tmp}/cache"}
        if credentials is not None:
            environ["POETRY_HTTP_BASIC_CHECKED_USERNAME"] = credentials.username
            environ["POETRY_HTTP_BASIC_CHECKED_PASSWORD"] = credentials.password
        result = _run([poetry, "lock", "--no-interaction"], environ, tmp)
        locked = ""
        if result.returncode == 0:
            lock = tomllib.loads(Path(tmp, "poetry.lock").read_text(encoding="utf-8"))
            wanted = canonicalize_name(package)
            locked = ", ".join(
                f"{entry['name']}=={entry['version']}"
                for entry in lock.get("package", [])
                if canonicalize_name(entry["name"]) == wanted
            )
    return _outcome("poetry", result, f"locks {locked}", credentials)


def _with_netrc(
    env: dict[str, str], urls: IndexUrls, credentials: Credentials | None, tmp: Path
) -> dict[str, str]:
    netrc = tmp / "netrc"
    netrc.touch(mode=0o600)
    if credentials is not None:
        netrc.write_text(
            f"machine {urls.host} login {credentials.username} password {credentials.password}\n",
            encoding="utf-8",
        )
    # An empty netrc also keeps a ~/.netrc on this machine out of the answer.
    return {**env, "NETRC": str(netrc)}


def _run(command: list[str], env: dict[str, str], cwd: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(command, 1, "", f"could not run: {exc}")


def _outcome(
    client: str,
    result: subprocess.CompletedProcess[str],
    success: str,
    credentials: Credentials | None,
) -> ClientCheck:
    if result.returncode == 0:
        return ClientCheck(client, "ok", success)
    lines = [line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines()]
    errors = [line for line in lines if line.lower().startswith(("error", "×", "because"))]
    reason = (errors or [line for line in lines if line] or ["no output"])[-1]
    secrets = (credentials.password,) if credentials else ()
    return ClientCheck(client, "failed", redact(reason, secrets)[:400])
