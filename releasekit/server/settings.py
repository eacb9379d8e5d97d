"""Server settings: one frozen Settings from defaults < settings file < RELEASEKIT_SERVER_* < flags."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from releasekit.errors import ConfigError

ENV_PREFIX = "RELEASEKIT_SERVER_"
AUTH_ACTIONS = frozenset({"update", "download", "list"})
# A year: files never change once stored, so clients and proxies may keep them.
DEFAULT_FILE_MAX_AGE = 31_536_000
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_ENDPOINT = re.compile(r"^/[a-z0-9/_-]+$")


@dataclass(frozen=True)
class Settings:
    """Everything the index server needs to know; see `load_settings` for the sources."""

    packages_dir: Path = Path("packages")
    host: str = "127.0.0.1"
    port: int = 8080
    passwords: Path | None = None
    authenticate: frozenset[str] = frozenset({"update"})
    tokens_file: Path | None = None
    overwrite: bool = False
    cache_control: int = DEFAULT_FILE_MAX_AGE
    health_endpoint: str = "/health"
    fallback_url: str | None = None
    max_upload_size: int = 100 * 1024 * 1024
    url_prefix: str = ""
    workers: int = 1
    log_level: str = "info"
    poll_interval: float = 1.0
    # --- logins and connections (issue 8: see docs/security.md) ---
    auth_throttle: bool = True  # off only for tests and benchmarks
    auth_throttle_failures: int = 5  # free failures per client address
    auth_throttle_max_delay: float = 300.0  # longest block of an address, seconds
    auth_throttle_user_failures: int = 20  # free failures per user name, any address
    auth_throttle_user_max_delay: float = 30.0  # longest block of a user on a new address
    auth_threads: int = 0  # bcrypt threads; 0: half the CPUs
    auth_cache_ttl: float = 120.0  # seconds a verified password is remembered
    header_timeout: float = 10.0  # a connection must send full request headers within this
    body_timeout: float = 30.0  # longest silence while a request body is being received
    keep_alive_timeout: int = 5  # idle seconds between requests on one connection
    max_connections: int = 0  # 0: as many as the descriptor limit leaves room for
    server_header: bool = False  # send `Server: uvicorn`
    # --- uploads and storage (issue 8) ---
    # /ready answers 503 below this much free space on the packages volume.
    min_free_space: int = 256 * 1024 * 1024
    # How often temp files of dead uploads are collected (also once at start-up).
    temp_sweep_interval: float = 60.0
    # Behind nginx: answer authorized downloads with X-Accel-Redirect to this internal location.
    accel_redirect: str = ""
    # A bearer token that may read /metrics whatever --authenticate says (Prometheus).
    metrics_token: str | None = None
    metrics_token_file: Path | None = None  # read once at start (a mounted Secret)
    allow_anonymous_uploads: bool = False
    # Echoed in an X-Releasekit-Instance header by the health endpoint, so a starter can tell
    # its own process from another one already answering on the port.
    instance_id: str = ""
    # --- scale-out (issue 13) ---
    # Where the files live: "" for packages_dir, or s3://bucket/prefix (endpoint, region and
    # credentials from the AWS variables or credentials file).
    storage: str = ""
    # Skip the start-up probe that the store honours conditional creates: only one replica
    # (and one worker) may then write to the store.
    single_replica: bool = False
    # --- standards (issue 14: see docs/security.md) ---
    trusted_publishing: Path | None = None  # OIDC issuer + publisher rules (TOML), off when None

    @property
    def state_dir(self) -> Path:
        """The rebuildable cache directory (a dot-dir, so listings of packages stay clean)."""
        return self.packages_dir / ".releasekit"

    @property
    def effective_tokens_file(self) -> Path:
        """The tokens file, defaulting to `<packages>/.releasekit/tokens.json`."""
        return self.tokens_file or self.state_dir / "tokens.json"


def parse_authenticate(value: str) -> frozenset[str]:
    """pypiserver's `-a` syntax: a comma list of update/download/list, or `.` for none."""
    text = value.strip()
    if text == ".":
        return frozenset()
    actions = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(actions - AUTH_ACTIONS)
    if unknown or not actions:
        raise ConfigError(
            f"--authenticate {value!r} names unknown actions {unknown}",
            hint="use a comma list of update, download, list, or '.' for none",
        )
    return actions


def parse_size(value: str | int) -> int:
    """Bytes from `104857600`, `100M`, `100MiB`, `1G`..."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise ConfigError(
            f"{value!r} is not a size", hint="write a byte count or a number with K/M/G"
        )
    unit = (match.group(2) or "b")[0].lower()
    return int(match.group(1)) * {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


def _normalize_prefix(value: str) -> str:
    prefix = "/" + value.strip().strip("/") if value.strip().strip("/") else ""
    if prefix and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", prefix):
        raise ConfigError(
            f"--url-prefix {value!r} is not a URL path", hint="use something like /pypi"
        )
    return prefix


# The numeric settings, with the smallest value each accepts.
_NUMBERS: Mapping[str, tuple[type[int] | type[float], float]] = {
    "auth_throttle_failures": (int, 1),
    "auth_throttle_max_delay": (float, 0),
    "auth_throttle_user_failures": (int, 1),
    "auth_throttle_user_max_delay": (float, 0),
    "auth_threads": (int, 0),
    "auth_cache_ttl": (float, 0),
    "header_timeout": (float, 0.1),
    "body_timeout": (float, 0.1),
    "keep_alive_timeout": (int, 1),
    "max_connections": (int, 0),
    "temp_sweep_interval": (float, 0.1),
}
_FLAGS = frozenset(
    {"overwrite", "auth_throttle", "server_header", "allow_anonymous_uploads", "single_replica"}
)
_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off", ""})


def _number(name: str, value: Any) -> int | float:
    kind, least = _NUMBERS[name]
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if number < least:
        raise ConfigError(f"{name} must be at least {least}, not {value!r}")
    return number


def _accel_location(value: str) -> str:
    text = value.strip()
    if not text:
        return ""
    location = "/" + text.strip("/") + "/"
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+/", location) or "/../" in location:
        raise ConfigError(
            f"--accel-redirect {value!r} is not an internal location path",
            hint="use the path of nginx's `internal` location, e.g. /_releasekit_files/",
        )
    return location


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the metrics token file {path}: {exc}",
            hint="create it (e.g. `openssl rand -hex 24 > FILE`) or drop --metrics-token-file",
        ) from None
    if len(token) < 16:
        raise ConfigError(
            f"the metrics token in {path} is shorter than 16 characters",
            hint="write a long random token, e.g. `openssl rand -hex 24`",
        )
    return token


def check_upload_safety(settings: Settings) -> None:
    """Refuse a password file with anonymous uploads (pypiserver's `-a download,list` trap)."""
    if settings.passwords is None or "update" in settings.authenticate:
        return
    if settings.allow_anonymous_uploads:
        return
    raise ConfigError(
        f"a password file is given ({settings.passwords}) but uploads need no credentials "
        f"(--authenticate {','.join(sorted(settings.authenticate)) or '.'}): anyone could upload",
        hint="add update to --authenticate (e.g. -a update,download,list) and give read-only "
        "users `releasekit server user add NAME --role read`; pass --allow-anonymous-uploads "
        "only if anonymous uploads are really meant",
    )


def _coerce(name: str, value: Any) -> Any:
    """Turn a string (env, TOML or flag) into the field's type, with errors that name the key."""
    if value is None:
        return None
    if name in _NUMBERS:
        return _number(name, value)
    if name in {
        "packages_dir",
        "passwords",
        "tokens_file",
        "metrics_token_file",
        "trusted_publishing",
    }:
        return Path(value).expanduser()
    if name == "authenticate":
        return (
            parse_authenticate(value)
            if isinstance(value, str)
            else parse_authenticate(",".join(value))
        )
    if name in _FLAGS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in _TRUE | _FALSE:
            # A typo must not silently turn a protection off (auth_throttle=flase).
            raise ConfigError(f"{name} must be true or false, not {value!r}")
        return text in _TRUE
    if name in {"max_upload_size", "min_free_space"}:
        return parse_size(value)
    if name == "url_prefix":
        return _normalize_prefix(str(value))
    if name == "health_endpoint":
        if not _ENDPOINT.match(str(value)):
            raise ConfigError(
                f"health endpoint {value!r} is not a path", hint="use something like /health"
            )
        return str(value)
    if name in {"port", "workers", "cache_control"}:
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if name == "accel_redirect":
        return _accel_location(str(value))
    if name == "poll_interval":
        return float(value)
    if name == "storage":
        text = str(value).strip()
        if text and not text.startswith("s3://"):
            raise ConfigError(
                f"storage {value!r} is not a storage location",
                hint="give s3://bucket/prefix, or leave it empty to use the packages directory",
            )
        return text
    return str(value)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings: defaults, then the TOML file, then RELEASEKIT_SERVER_* env, then flags.

    `overrides` holds flag values; None means "not given" and never overrides anything.
    """
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"cannot read settings file {config_file}: {exc}",
                hint="fix the file or drop --config",
            ) from None
        table = data.get("server", data)
        for key, value in table.items():
            name = key.replace("-", "_")
            if name not in names:
                raise ConfigError(
                    f"{config_file}: unknown setting {key!r}",
                    hint=f"known settings: {', '.join(sorted(names))}",
                )
            values[name] = value
    for key, value in (os.environ if env is None else env).items():
        if key.startswith(ENV_PREFIX):
            name = key.removeprefix(ENV_PREFIX).lower()
            if name not in names:
                raise ConfigError(
                    f"unknown environment variable {key}",
                    hint=f"known: {', '.join(ENV_PREFIX + n.upper() for n in sorted(names))}",
                )
            values[name] = value
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    settings = Settings(**{name: _coerce(name, value) for name, value in values.items()})
    if settings.port < 0 or settings.port > 65535:
        raise ConfigError(f"port {settings.port} is out of range", hint="use 0-65535")
    if settings.workers < 1:
        raise ConfigError("workers must be at least 1")
    if settings.metrics_token_file is not None and not settings.metrics_token:
        settings = replace(settings, metrics_token=_read_token(settings.metrics_token_file))
    return replace(settings, packages_dir=settings.packages_dir.resolve())
