"""A bundle on disk: `bundle.json` (what it carries and where from) and `SHA256SUMS`.

Layout:  bundle.json, SHA256SUMS, [SHA256SUMS.sig], pylock.<target>.toml ..., files/<file>,
files/<file>.metadata. SHA256SUMS covers every other file (in `sha256sum -c` format), and the
signature covers SHA256SUMS, so one signature check plus one hash pass covers the bundle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from releasekit.errors import BundleError

MANIFEST = "bundle.json"
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"


@dataclass(frozen=True)
class BundledFile:
    """One carried distribution file and what the upstream said about it."""

    project: str
    version: str
    sha256: str
    size: int
    upload_time: str | None
    yanked: str | None
    has_metadata: bool


@dataclass(frozen=True)
class Manifest:
    """The contents of bundle.json."""

    bundle_id: str
    parent: str | None
    created: str
    index: str
    targets: tuple[str, ...]
    locks: tuple[str, ...]
    files: dict[str, BundledFile] = field(default_factory=dict)
    inherited: tuple[tuple[str, str], ...] = ()
    tombstones: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> str:
        data = {
            "format": 1,
            "id": self.bundle_id,
            "parent": self.parent,
            "created": self.created,
            "index": self.index,
            "targets": list(self.targets),
            "locks": list(self.locks),
            "files": {n: asdict(f) for n, f in sorted(self.files.items())},
            "inherited": dict(self.inherited),
            "tombstones": dict(self.tombstones),
        }
        return json.dumps(data, indent=1) + "\n"


def bundle_id(sums_body: str, parent: str | None) -> str:
    """A bundle's id: a digest of everything it carries and of its parent (deterministic)."""
    return hashlib.sha256(f"{parent}\n{sums_body}".encode()).hexdigest()[:24]


def read_manifest(directory: Path) -> Manifest:
    """Read bundle.json of a bundle directory; a missing or bad one names the path."""
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(
            bundle_id=data["id"],
            parent=data["parent"],
            created=data["created"],
            index=data["index"],
            targets=tuple(data["targets"]),
            locks=tuple(data["locks"]),
            files={n: BundledFile(**f) for n, f in data["files"].items()},
            inherited=tuple(sorted(data["inherited"].items())),
            tombstones=tuple(sorted(data["tombstones"].items())),
        )
    except FileNotFoundError:
        raise BundleError(
            f"{path} does not exist: {directory} is not a bundle",
            hint="pass the directory `releasekit bundle fetch -o DIR` wrote",
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(
            f"{path} is damaged ({exc})", hint="fetch the bundle again on the connected side"
        ) from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def render_sums(directory: Path, names: list[str]) -> str:
    """`sha256sum` lines for `names` (relative paths), sorted so the text is reproducible."""
    return "".join(f"{sha256_file(directory / n)}  {n}\n" for n in sorted(names))


def parse_sums(text: str, source: str) -> dict[str, str]:
    """{relative path: sha256} from SHA256SUMS; refuses absolute or `..` paths."""
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        digest, sep, name = line.partition("  ")
        parts = Path(name).parts
        if not sep or len(digest) != 64 or name.startswith("/") or ".." in parts or not parts:
            raise BundleError(
                f"{source} line {number} is not `<sha256>  <relative path>`: {line[:80]!r}",
                hint="the manifest is damaged or was edited: fetch the bundle again",
            )
        sums[name] = digest
    return sums
