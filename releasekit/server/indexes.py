"""Named indexes on one server: the registry and where each index keeps its files.

The root store (the packages directory, or `s3://bucket/prefix`) is the default index, named
`root`: the root paths (`/simple/`, `/legacy/`, `/packages/`) serve it, as before indexes
existed. Every other index is a store of its own under the root one (`<packages>/.indexes/<name>/`
or `<prefix>/indexes/<name>/`) with its own catalogue, pages and state, served under `/<name>/`.
The registry is the state blob `indexes.json` of the root store:

    {"version": 1, "indexes": [{"name": "staging", "bases": ["prod"], "acl": {"ci": ["upload"]},
      "description": "", "created": "2026-12-01T00:00:00Z", "upstream": null, "retention": null}]}

`upstream` and `retention` are JSON objects owned by their modules (kept verbatim here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from releasekit.errors import IndexServerError
from releasekit.server.storage import Storage

ROOT_INDEX = "root"
REGISTRY_NAME = "indexes.json"
LOCAL_DIR = ".indexes"  # under the packages directory: a dot-dir, never listed as files
S3_SEGMENT = "indexes"  # under the root prefix

IndexAction = Literal["read", "upload", "promote", "admin"]
INDEX_ACTIONS: tuple[IndexAction, ...] = get_args(IndexAction)
ANONYMOUS = ":anonymous:"  # an ACL entry for requests without credentials
AUTHENTICATED = ":authenticated:"  # any user or token that authenticated

_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
# First path segments the server answers itself: an index may never be named like one.
RESERVED_NAMES = frozenset(
    {
        ROOT_INDEX,
        "simple",
        "legacy",
        "packages",
        "integrity",
        "bundles",
        "metrics",
        "ready",
        "health",
        "pypi",
        "json",
        "static",
        "promote",
        "api",
        "admin",
        "login",
        "logout",
    }
)


@dataclass(frozen=True)
class IndexConfig:
    """One named index as the registry records it."""

    name: str
    bases: tuple[str, ...] = ()
    # principal (a user name, "token:<id>", ANONYMOUS or AUTHENTICATED) -> actions it may take
    acl: Mapping[str, frozenset[IndexAction]] = field(default_factory=dict)
    description: str = ""
    created: str = ""
    upstream: Mapping[str, Any] | None = None
    retention: Mapping[str, Any] | None = None
    # Replace files on upload: None follows the server's --overwrite (e.g. staging True, prod False).
    overwrite: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bases": list(self.bases),
            "acl": {who: sorted(actions) for who, actions in sorted(self.acl.items())},
            "description": self.description,
            "created": self.created,
            "upstream": dict(self.upstream) if self.upstream is not None else None,
            "retention": dict(self.retention) if self.retention is not None else None,
            "overwrite": self.overwrite,
        }


def check_name(name: str, *, allow_root: bool = False) -> str:
    """`name` if it can name an index, else IndexServerError saying what would.

    `root` (the default index) may carry settings in the registry but is never created.
    """
    if allow_root and name == ROOT_INDEX:
        return name
    if not _NAME.fullmatch(name):
        raise IndexServerError(
            f"{name!r} cannot name an index",
            hint="use 1-40 lower-case letters, digits and '-', starting and ending with a "
            "letter or digit (e.g. staging, prod)",
        )
    if name in RESERVED_NAMES:
        raise IndexServerError(
            f"{name!r} is reserved: the server answers /{name}/ itself",
            hint="pick another name, e.g. staging or prod",
        )
    return name


def _parse_acl(raw: object, where: str) -> dict[str, frozenset[IndexAction]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise IndexServerError(f"{where}: `acl` must be an object of principal -> actions")
    acl: dict[str, frozenset[IndexAction]] = {}
    for who, actions in raw.items():
        if not isinstance(who, str) or not who or not isinstance(actions, list):
            raise IndexServerError(f"{where}: acl entry {who!r} must list actions")
        unknown = sorted(str(a) for a in actions if a not in INDEX_ACTIONS)
        if unknown:
            raise IndexServerError(
                f"{where}: acl entry {who!r} names unknown actions {unknown}",
                hint=f"use {', '.join(INDEX_ACTIONS)}",
            )
        acl[who] = frozenset(a for a in INDEX_ACTIONS if a in actions)
    return acl


def parse_config(raw: object) -> IndexConfig:
    """One registry entry; IndexServerError naming the entry when it is malformed."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise IndexServerError("an index entry has no name")
    name = check_name(raw["name"], allow_root=True)
    where = f"index {name!r}"
    bases = raw.get("bases") or []
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise IndexServerError(f"{where}: `bases` must be a list of index names")
    sections: dict[str, Mapping[str, Any] | None] = {}
    for key in ("upstream", "retention"):
        value = raw.get(key)
        if value is not None and not isinstance(value, dict):
            raise IndexServerError(f"{where}: `{key}` must be an object or null")
        sections[key] = value
    return IndexConfig(
        name=name,
        bases=tuple(bases),
        acl=_parse_acl(raw.get("acl"), where),
        description=str(raw.get("description") or ""),
        created=str(raw.get("created") or ""),
        upstream=sections["upstream"],
        retention=sections["retention"],
        overwrite=_overwrite(raw.get("overwrite"), where),
    )


def _overwrite(raw: object, where: str) -> bool | None:
    if raw is None or isinstance(raw, bool):
        return raw
    raise IndexServerError(f"{where}: `overwrite` must be true, false or null")


def parse_registry(data: bytes | None) -> dict[str, IndexConfig]:
    """The registry blob as name -> config (empty when absent); checks names, bases, cycles."""
    if data is None:
        return {}
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise IndexServerError(
            f"the index registry ({REGISTRY_NAME}) is not JSON: {exc}",
            hint="restore it from a backup, or re-create the indexes",
        ) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("indexes"), list):
        raise IndexServerError(f"the index registry ({REGISTRY_NAME}) has no `indexes` list")
    configs: dict[str, IndexConfig] = {}
    for entry in raw["indexes"]:
        config = parse_config(entry)
        if config.name in configs:
            raise IndexServerError(f"the index registry names {config.name!r} twice")
        configs[config.name] = config
    check_bases(configs)
    return configs


def check_bases(configs: Mapping[str, IndexConfig]) -> None:
    """Every base names a known index (or `root`), and no index inherits itself."""
    for config in configs.values():
        for base in config.bases:
            if base != ROOT_INDEX and base not in configs:
                raise IndexServerError(
                    f"index {config.name!r} inherits {base!r}, which does not exist",
                    hint="create the base first, or drop it from --base",
                )
    for name in configs:
        seen: list[str] = []
        _walk(name, configs, seen)


def _walk(name: str, configs: Mapping[str, IndexConfig], path: list[str]) -> None:
    if name in path:
        cycle = " -> ".join([*path[path.index(name) :], name])
        raise IndexServerError(
            f"indexes inherit in a circle: {cycle}", hint="drop one of those bases"
        )
    config = configs.get(name)
    if config is None:
        return
    for base in config.bases:
        _walk(base, configs, [*path, name])


def resolution_order(name: str, configs: Mapping[str, IndexConfig]) -> list[str]:
    """`name`, then its bases depth-first, each index once: where a page looks, in order."""
    order: list[str] = []

    def visit(current: str) -> None:
        if current in order:
            return
        order.append(current)
        config = configs.get(current)
        for base in config.bases if config else ():
            visit(base)

    visit(name)
    return order


def render_registry(configs: Iterable[IndexConfig]) -> bytes:
    entries = [c.to_json() for c in sorted(configs, key=lambda c: c.name)]
    return json.dumps({"version": 1, "indexes": entries}, indent=1).encode() + b"\n"


def read_registry(root: Storage) -> dict[str, IndexConfig]:
    """The registry of the root store (empty when no index was ever created)."""
    return parse_registry(root.read_state(REGISTRY_NAME))


def config_for(configs: Mapping[str, IndexConfig], name: str) -> IndexConfig:
    """The settings of `name`; the default index has defaults until configured."""
    if name in configs:
        return configs[name]
    if name == ROOT_INDEX:
        return IndexConfig(ROOT_INDEX)
    raise unknown_index(name, configs)


def create_index(root: Storage, config: IndexConfig) -> IndexConfig:
    """Record a new index (IndexServerError if its name is taken or a base is unknown)."""
    if config.name == ROOT_INDEX:
        raise IndexServerError(
            "the default index `root` always exists",
            hint="change its settings with the `releasekit server index` commands that edit one",
        )
    check_name(config.name)
    with root.lock(REGISTRY_NAME):
        configs = read_registry(root)
        if config.name in configs:
            raise IndexServerError(
                f"index {config.name!r} exists already",
                hint="pick another name, or `releasekit server index list` to see them",
            )
        created = config.created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        configs[config.name] = replace(config, created=created)
        check_bases(configs)
        root.write_state(REGISTRY_NAME, render_registry(configs.values()))
        return configs[config.name]


def update_index(root: Storage, config: IndexConfig) -> IndexConfig:
    """Replace an existing index's settings (its files stay where they are)."""
    with root.lock(REGISTRY_NAME):
        configs = read_registry(root)
        current = config_for(configs, config.name)
        configs[config.name] = replace(config, created=current.created)
        check_bases(configs)
        root.write_state(REGISTRY_NAME, render_registry(configs.values()))
        return configs[config.name]


def remove_index(root: Storage, name: str) -> IndexConfig:
    """Drop an index from the registry; refused while another index inherits it.

    The index's files are not touched here: the caller decides (and says) what happens to them.
    """
    if name == ROOT_INDEX:
        raise IndexServerError("the default index `root` cannot be removed")
    with root.lock(REGISTRY_NAME):
        configs = read_registry(root)
        if name not in configs:
            raise unknown_index(name, configs)
        heirs = sorted(c.name for c in configs.values() if name in c.bases)
        if heirs:
            raise IndexServerError(
                f"index {name!r} is a base of {', '.join(heirs)}",
                hint="drop it from their bases first, then remove it",
            )
        removed = configs.pop(name)
        root.write_state(REGISTRY_NAME, render_registry(configs.values()))
        return removed


_PRINCIPAL = re.compile(r"token:[0-9a-f]{12}|[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")


def check_principal(principal: str) -> str:
    """`principal` if an ACL can name it (a user, `token:<id>`, :anonymous:, :authenticated:)."""
    if principal in (ANONYMOUS, AUTHENTICATED):
        return principal
    if principal == "__token__" or not _PRINCIPAL.fullmatch(principal):
        raise IndexServerError(
            f"{principal!r} cannot be named in an ACL",
            hint=f"name a user, token:<id> (from `releasekit server token list`), {ANONYMOUS} "
            f"or {AUTHENTICATED}",
        )
    return principal


def parse_actions(text: str) -> frozenset[IndexAction]:
    """`read,upload` as actions; `none` (or nothing) as the empty set."""
    words = {w.strip() for w in text.split(",") if w.strip()}
    if words <= {"none"}:
        return frozenset()
    unknown = sorted(words - set(INDEX_ACTIONS))
    if unknown:
        raise IndexServerError(
            f"unknown index actions {', '.join(unknown)}",
            hint=f"name some of {', '.join(INDEX_ACTIONS)} separated by commas, or none",
        )
    return frozenset(a for a in INDEX_ACTIONS if a in words)


def set_acl(
    root: Storage, name: str, principal: str, actions: frozenset[IndexAction]
) -> IndexConfig:
    """Grant `principal` exactly `actions` on the index `name` (empty: drop its entry)."""
    check_name(name, allow_root=True)
    check_principal(principal)
    with root.lock(REGISTRY_NAME):
        configs = read_registry(root)
        current = config_for(configs, name)
        acl = {who: granted for who, granted in current.acl.items() if who != principal}
        if actions:
            acl[principal] = actions
        configs[name] = replace(current, acl=acl)
        root.write_state(REGISTRY_NAME, render_registry(configs.values()))
        return configs[name]


def set_overwrite(root: Storage, name: str, overwrite: bool | None) -> IndexConfig:
    """Let uploads to `name` replace files (True), refuse it (False) or follow the server (None)."""
    check_name(name, allow_root=True)
    with root.lock(REGISTRY_NAME):
        configs = read_registry(root)
        configs[name] = replace(config_for(configs, name), overwrite=overwrite)
        root.write_state(REGISTRY_NAME, render_registry(configs.values()))
        return configs[name]


def describe_acl(config: IndexConfig) -> str:
    """`ci=upload; reader=read` (or `-` without entries): one line for `index list`."""
    if not config.acl:
        return "-"
    return "; ".join(
        f"{who}={','.join(a for a in INDEX_ACTIONS if a in actions)}"
        for who, actions in sorted(config.acl.items())
    )


def unknown_index(name: str, configs: Mapping[str, IndexConfig]) -> IndexServerError:
    known = ", ".join([ROOT_INDEX, *sorted(set(configs) - {ROOT_INDEX})])
    return IndexServerError(
        f"there is no index {name!r}",
        hint=f"known indexes: {known}; create one with `releasekit server index create NAME`",
    )
