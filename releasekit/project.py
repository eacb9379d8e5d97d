"""Versions in files: read them, plan exact edits, write the edits atomically.

Never a bare string replace over a file (commitizen #1821 rewrote dependency pins equal to the
old version): TOML is edited by key with tomlkit, Python by its one assignment, other files by a
pattern whose `version` group is the only span replaced.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from releasekit.atomic import SERVED, KeepMode, Staged, stage
from releasekit.config import Config, VersionFile, read_pyproject
from releasekit.errors import ConfigError, ReleaseError, VersionError
from releasekit.lockfiles import LOCKFILES, is_git_ignored, lockfile_text_edit
from releasekit.versioning import Version

if TYPE_CHECKING:
    import tomlkit

PYPROJECT = "pyproject.toml"
_PYPROJECT_KEYS = ("project.version", "tool.poetry.version")
# Where a `__version__` lives when version_files is not configured; {pkg} is the import name.
_AUTO_CANDIDATES = ("__init__.py", "__version__.py", "_version.py", "version.py")


@dataclass(frozen=True)
class FileEdit:
    """A whole-file change: `before` is None for a file that does not exist yet."""

    path: Path
    relpath: str
    before: str | None
    after: str

    def diff(self) -> str:
        """A unified diff `a/relpath` -> `b/relpath`, as git would show it."""
        lines = difflib.unified_diff(
            _lines(self.before or ""),
            _lines(self.after),
            fromfile="/dev/null" if self.before is None else f"a/{self.relpath}",
            tofile=f"b/{self.relpath}",
        )
        # A last line without a newline would run into the next diff line; git marks it instead.
        return "".join(
            line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n"
            for line in lines
        )


def _lines(text: str) -> list[str]:
    # Not str.splitlines: it also splits at form feeds and other separators that git does not.
    return [line for line in re.split(r"(?<=\n)", text) if line]


@dataclass(frozen=True)
class ProjectInfo:
    """The project as releasekit sees it: its name, declared version and every file carrying it."""

    root: Path
    name: str
    declared_version: str
    version_files: tuple[VersionFile, ...]


def load_project(config: Config) -> ProjectInfo:
    """Read pyproject.toml, check the declared version and resolve every version file."""
    root = config.root
    data = read_pyproject(root)
    project, poetry = _table(data, "project"), _table(_table(data, "tool"), "poetry")
    name = project.get("name") or poetry.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"{PYPROJECT} declares no project name", hint='add name = "..." under [project]'
        )
    declared = {
        key: table["version"]
        for key, table in zip(_PYPROJECT_KEYS, (project, poetry), strict=True)
        if "version" in table
    }
    version = _declared_version(declared, "version" in project.get("dynamic", []))
    files = [VersionFile(PYPROJECT, "toml", key) for key in declared]
    files += [file for file in config.version_files if file not in files]
    if not config.version_files:
        files += _detect_version_files(root, name)
    for file in files:  # refuse a missing file, key or pattern now, before anything is planned
        _find_version(root, file)
    return ProjectInfo(root=root, name=name, declared_version=version, version_files=tuple(files))


def current_file_versions(project: ProjectInfo) -> dict[str, str]:
    """The version each file carries, by "relpath:key" (pattern files by relpath)."""
    return {_label(file): _find_version(project.root, file) for file in project.version_files}


def version_edits(project: ProjectInfo, new_version: str) -> tuple[FileEdit, ...]:
    """The edits that write `new_version` into every version file; writes nothing."""
    try:
        normal = str(Version.parse(new_version))
    except VersionError as exc:
        raise VersionError(
            f"refusing to write {new_version!r} into version files: {exc.message}", exc.hint
        ) from exc
    if (
        normal != new_version
    ):  # Python metadata holds PEP 440; a semver spelling would not match tags
        raise VersionError(
            f"refusing to write {new_version!r} into version files: it is not in PEP 440 form",
            hint=f"write {normal}",
        )
    edits: list[FileEdit] = []
    relpaths = dict.fromkeys(file.path for file in project.version_files)
    for relpath in relpaths:
        path = project.root / relpath
        before = _read(path, relpath)
        after = before
        for file in project.version_files:
            if file.path == relpath:
                after = _replace_version(after, file, new_version)
        if after != before:
            edits.append(FileEdit(path=path, relpath=relpath, before=before, after=after))
    return (*edits, *lockfile_edits(project, new_version))


def lockfile_edits(project: ProjectInfo, new_version: str) -> tuple[FileEdit, ...]:
    """The project's own entry in uv.lock / pdm.lock, so the lock stays valid on the tag."""
    edits = []
    for relpath in LOCKFILES:
        path = project.root / relpath
        if not path.is_file() or is_git_ignored(project.root, relpath):
            continue
        before = _read(path, relpath)
        after = lockfile_text_edit(before, relpath, project.name, new_version)
        if after != before:
            edits.append(FileEdit(path=path, relpath=relpath, before=before, after=after))
    return tuple(edits)


def apply_edits(edits: Sequence[FileEdit]) -> None:
    """Write every edit atomically: all temp files first, then one os.replace per file."""
    for edit in edits:
        current = edit.path.read_bytes() if edit.path.exists() else None
        if current != (None if edit.before is None else edit.before.encode("utf-8")):
            raise ReleaseError(
                f"{edit.relpath} changed after the release was planned; nothing was written",
                hint="run the command again",
            )
    staged: list[Staged] = []
    try:
        for edit in edits:
            # through a symlink to its target: replacing the link itself would detach the file
            target = edit.path.resolve()
            staged.append(stage(target, edit.after.encode("utf-8"), mode=KeepMode(SERVED)))
    except OSError as exc:
        for temp in staged:
            temp.discard()
        raise ReleaseError(f"cannot write version files: {exc}; nothing was changed") from exc
    for temp in staged:
        temp.commit()


def _declared_version(declared: dict[str, Any], dynamic: bool) -> str:
    if not declared:
        if dynamic:
            raise ConfigError(
                f'{PYPROJECT} has dynamic = ["version"] and no static version',
                hint='releasekit writes a static version: remove "version" from dynamic and add version = "0.1.0" under [project]',
            )
        raise ConfigError(
            f"{PYPROJECT} declares no version", hint='add version = "0.1.0" under [project]'
        )
    for key, value in declared.items():
        if not isinstance(value, str):
            raise ConfigError(
                f"{PYPROJECT}: {key} must be a string, got {value!r}",
                hint='write version = "0.1.0"',
            )
    if len(set(declared.values())) > 1:
        listed = " and ".join(
            f"[{key.rpartition('.')[0]}] version = {value!r}" for key, value in declared.items()
        )
        raise ConfigError(
            f"{PYPROJECT} declares two different versions: {listed}",
            hint="make them equal (releasekit then keeps both in step)",
        )
    version: str = next(iter(declared.values()))
    try:
        Version.parse(version)
    except VersionError as exc:
        raise VersionError(
            f"{PYPROJECT} declares version {version!r}: {exc.message}", exc.hint
        ) from exc
    return version


def _detect_version_files(root: Path, name: str) -> list[VersionFile]:
    """Module files of the package that hold a `__version__ = "..."` assignment."""
    package = re.sub(r"[-_.]+", "_", name).lower()
    found = []
    for base in (package, f"src/{package}"):
        for filename in _AUTO_CANDIDATES:
            relpath = f"{base}/{filename}"
            path = root / relpath
            if path.is_file() and _assignment(VersionFile(relpath, "assignment")).search(
                _read(path, relpath)
            ):
                found.append(VersionFile(relpath, "assignment"))
    return found


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    return value if isinstance(value, dict) else {}


def _label(file: VersionFile) -> str:
    return file.path if file.kind == "pattern" else f"{file.path}:{file.key}"


def _read(path: Path, relpath: str, missing_hint: str | None = None) -> str:
    try:
        # Bytes, not text mode: CRLF line ends must survive the round trip.
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{relpath} does not exist in {path.parent}",
            hint=missing_hint or "create it, or remove it from version_files in [tool.releasekit]",
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{relpath} is not UTF-8 text: {exc}") from exc


def _find_version(root: Path, file: VersionFile) -> str:
    """The version string `file` carries now; ConfigError if it cannot be found exactly once."""
    text = _read(root / file.path, file.path)
    if file.kind == "toml":
        try:  # tomllib reads (fast, stdlib); tomlkit only writes
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{file.path} is not valid TOML: {exc}", hint="fix the syntax"
            ) from exc
        value = _toml_lookup(data, file)
        if not isinstance(value, str):
            raise ConfigError(
                f"{file.path}: {file.key} is not a string (found {value!r})",
                hint=f'write {file.key.rpartition(".")[2]} = "1.2.3", or fix the key in version_files',
            )
        return str(value)
    return _single_match(text, file)[1]


def _replace_version(text: str, file: VersionFile, new_version: str) -> str:
    if file.kind == "toml":
        import tomlkit  # only writing pays for it: `version --print` never edits a file
        from tomlkit.items import String, StringType

        document = _parse_toml(text, file.path)
        *parents, last = file.key.split(".")
        table = (
            _toml_lookup(document, VersionFile(file.path, "toml", ".".join(parents)))
            if parents
            else document
        )
        old = table[last]
        literal = isinstance(old, String) and old.type in (StringType.SLL, StringType.MLL)
        table[last] = tomlkit.string(new_version, literal=literal)
        result = tomlkit.dumps(document)
        _check_toml_edit(text, result, file, new_version)
        return result
    span, _ = _single_match(text, file)
    return text[: span[0]] + new_version + text[span[1] :]


def _check_toml_edit(before: str, after: str, file: VersionFile, new_version: str) -> None:
    """Guard against a tomlkit round trip that changes anything but the one value."""
    expected: Any = tomllib.loads(before)
    *parents, last = file.key.split(".")
    node = expected
    for part in parents:
        node = node[part]
    node[last] = new_version
    if tomllib.loads(after) != expected:
        raise ConfigError(
            f"editing {file.key} in {file.path} would change other values; nothing was written",
            hint="this is a releasekit bug, please report it; change the version by hand meanwhile",
        )


def _parse_toml(text: str, relpath: str) -> tomlkit.TOMLDocument:
    import tomlkit
    import tomlkit.exceptions

    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{relpath} is not valid TOML: {exc}", hint="fix the syntax") from exc


def _toml_lookup(document: Any, file: VersionFile) -> Any:
    node = document
    for part in file.key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(
                f"{file.path} has no key {file.key}",
                hint="fix the key in version_files of [tool.releasekit]",
            )
        node = node[part]
    return node


def _assignment(file: VersionFile) -> re.Pattern[str]:
    # A module-level `NAME = "..."` or `NAME: str = '...'`; the quotes are kept as they are.
    return re.compile(
        rf"""^{re.escape(file.key)}[ \t]*(?::[^=\n]*)?=[ \t]*(?P<quote>["'])(?P<version>[^"'\r\n]*)(?P=quote)""",
        re.MULTILINE,
    )


def _single_match(text: str, file: VersionFile) -> tuple[tuple[int, int], str]:
    """The span and text of the one version in an assignment or pattern file."""
    if file.kind == "pattern":
        regex, what = re.compile(file.pattern, re.MULTILINE), f"match of pattern {file.pattern!r}"
    else:
        regex, what = _assignment(file), f'module-level assignment {file.key} = "..."'
    matches = list(regex.finditer(text))
    if len(matches) != 1:
        lines = ", ".join(str(text.count("\n", 0, match.start()) + 1) for match in matches)
        found = f"{len(matches)} (lines {lines})" if matches else "none"
        raise ConfigError(
            f"{file.path}: expected exactly one {what}, found {found}",
            hint="make it match exactly one place, or fix version_files in [tool.releasekit]",
        )
    return matches[0].span("version"), matches[0]["version"]
