"""`releasekit init`: set up an existing library for releasekit, as a plan of file edits.

`plan_init` reads the library and computes every file it would create or change; nothing is
written until `apply_init`. Existing files are never overwritten silently: one that differs from
what init would write is a conflict, refused (all of them named, nothing written) unless
`force`. Files are only appended to where appending is the whole change (`pyproject.toml` gets
a `[tool.releasekit]` table at its end, `Makefile` an include line, `.gitignore` two entries), so
every byte a person wrote stays.
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomlkit
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from releasekit.changelog import NEW_FILE
from releasekit.config import config_from_table, load_config, read_pyproject
from releasekit.errors import ConfigError, ReleaseError
from releasekit.git import GitRepository
from releasekit.project import FileEdit, apply_edits, load_project

ACTION = "releasekit/releasekit@v1"
MAKE_INCLUDE = "include mk/releasekit.mk"
_IGNORED = ("dist/", ".releasekit-data/")
_PYTHONS = ("3.11", "3.12", "3.13")
_VERSION_ASSIGNMENT = re.compile(r"^__version__\s*[:=]", re.MULTILINE)


@dataclass(frozen=True)
class Library:
    """What init found: the packaging style, the project and where `__version__` lives."""

    style: Literal["poetry", "pep621"]
    name: str
    version: str
    version_file: str | None
    """The file holding `__version__`, relative to the root, if there is one."""
    needs_version_files: bool
    """True when releasekit would not find `version_file` by itself."""
    main_branch: str
    tag_glob: str
    """The workflows' tag trigger, from tag_format: `v*` for `v{version}`."""
    has_tests: bool
    pythons: tuple[str, ...]
    """The CI matrix: the supported Pythons that requires-python allows."""


@dataclass(frozen=True)
class InitPlan:
    """Every file init writes, those already right, those it would overwrite, and remarks."""

    library: Library
    edits: tuple[FileEdit, ...]
    unchanged: tuple[str, ...]
    conflicts: tuple[str, ...]
    notes: tuple[str, ...]


def detect_library(root: Path) -> Library:
    """Poetry (`[tool.poetry]` name/version) or PEP 621 (`[project]`), and the `__version__` file."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise ConfigError(
            f"no pyproject.toml in {root}: releasekit init sets up an existing library",
            hint="run it in the library's root (or pass -C), or create the project first",
        )
    data = read_pyproject(root)
    style: Literal["poetry", "pep621"] = "pep621" if "name" in data.get("project", {}) else "poetry"
    # The project as the release engine sees it (also refuses a dynamic or missing version).
    config = load_config(root)
    project = load_project(config)
    found = [f.path for f in project.version_files if f.kind == "assignment"]
    version_file = found[0] if found else _find_version_file(root)
    return Library(
        style=style,
        name=project.name,
        version=project.declared_version,
        version_file=version_file,
        needs_version_files=not found and version_file is not None,
        main_branch=_main_branch(root),
        tag_glob=_tag_glob(config.tag_format),
        has_tests=any((root / name).is_dir() for name in ("tests", "test")),
        pythons=_pythons(data.get("project", {}).get("requires-python")),
    )


def _main_branch(root: Path) -> str:
    """`master` in a repository on master, else `main` (also outside a repository)."""
    try:
        branch = GitRepository(root).current_branch()
    except ReleaseError:
        return "main"
    return branch if branch in ("main", "master") else "main"


def _pythons(requires: Any) -> tuple[str, ...]:
    try:
        allowed = SpecifierSet(requires) if isinstance(requires, str) else SpecifierSet()
    except InvalidSpecifier:
        return _PYTHONS
    return tuple(v for v in _PYTHONS if allowed.contains(f"{v}.0")) or _PYTHONS


def _tag_glob(tag_format: str) -> str:
    prefix = tag_format.partition("{version}")[0]
    return f"{prefix}*" if prefix else "[0-9]*"


def _find_version_file(root: Path) -> str | None:
    """A package's `__version__` that auto-detection misses (import name != project name)."""
    patterns = ("*/__init__.py", "*/_version.py", "*/__version__.py", "*/version.py")
    for base in (root, root / "src"):
        for pattern in patterns:
            for path in sorted(base.glob(pattern)):
                if path.parent.name.startswith((".", "test")) or path.parent.name == "src":
                    continue
                if _VERSION_ASSIGNMENT.search(path.read_text(encoding="utf-8", errors="replace")):
                    return path.relative_to(root).as_posix()
    return None


def plan_init(root: Path, library: Library) -> InitPlan:
    """Every file `releasekit init` would write for `library`; writes nothing."""
    wanted: dict[str, str] = {
        "mk/releasekit.mk": makefile_include(),
        ".github/workflows/ci.yml": render_ci(library),
        ".github/workflows/release.yml": render_release(library),
        ".pre-commit-config.yaml": _template("pre-commit-config.yaml"),
    }
    edits: list[FileEdit] = []
    unchanged: list[str] = []
    conflicts: list[str] = []
    notes: list[str] = []
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    if "releasekit" in read_pyproject(root).get("tool", {}):
        notes.append("pyproject.toml already has [tool.releasekit]: kept as it is")
    else:
        edits.append(_edit(root, "pyproject.toml", pyproject, _with_config(pyproject, library)))
    for relpath, after_text in (
        ("Makefile", _with_include),
        (".gitignore", _with_ignores),
    ):
        before = _read(root / relpath)
        after = after_text(before)
        if after is None or after == before:
            unchanged.append(relpath)
        else:
            edits.append(_edit(root, relpath, before, after))
    changelog = library_changelog(root)
    if (root / changelog).exists():
        unchanged.append(changelog)
    else:
        wanted[changelog] = NEW_FILE
    for relpath, text in wanted.items():
        before = _read(root / relpath)
        if before == text:
            unchanged.append(relpath)
            continue
        if before is not None:
            conflicts.append(relpath)
        edits.append(_edit(root, relpath, before, text))
    if library.needs_version_files:
        notes.append(f"version_files = [{library.version_file!r}]: not found by auto-detection")
    if library.version_file is None:
        notes.append("no __version__ assignment found: only pyproject.toml carries the version")
    return InitPlan(library, tuple(edits), tuple(unchanged), tuple(conflicts), tuple(notes))


def refuse_conflicts(plan: InitPlan) -> None:
    """Raise when init would overwrite files that differ from what it writes (without --force)."""
    if plan.conflicts:
        raise ReleaseError(
            f"refusing to overwrite {len(plan.conflicts)} existing file(s): "
            f"{', '.join(plan.conflicts)}; nothing was written",
            hint="see the changes with --dry-run, then pass --force to overwrite them",
        )


def apply_init(plan: InitPlan) -> None:
    """Write the plan: missing directories first, then every file atomically."""
    for edit in plan.edits:
        edit.path.parent.mkdir(parents=True, exist_ok=True)
    apply_edits(plan.edits)


def library_changelog(root: Path) -> str:
    """The changelog file configured for `root`, else CHANGELOG.md."""
    data = read_pyproject(root)
    table: Any = data.get("tool", {}).get("releasekit", {})
    value = table.get("changelog_file") if isinstance(table, dict) else None
    return value if isinstance(value, str) and value else "CHANGELOG.md"


def config_table(library: Library) -> dict[str, Any]:
    """The `[tool.releasekit]` init writes: explicit defaults a maintainer can see and change."""
    table: dict[str, Any] = {"tag_format": "v{version}", "changelog_file": "CHANGELOG.md"}
    if library.needs_version_files:
        table["version_files"] = [library.version_file]
    table["branches"] = {library.main_branch: "final", "develop": "rc"}
    return table


def _with_config(pyproject: str, library: Library) -> str:
    """pyproject.toml with `[tool.releasekit]` appended; the text before it is kept as it was."""
    document = tomlkit.document()
    tool = tomlkit.table(is_super_table=True)
    tool.add("releasekit", config_table(library))
    document.add("tool", tool)
    separator = "" if pyproject.endswith("\n\n") else "\n" if pyproject.endswith("\n") else "\n\n"
    after = pyproject + separator + tomlkit.dumps(document).lstrip("\n")
    config_from_table(Path(), tomllib.loads(after)["tool"]["releasekit"])  # it must load
    return after


def makefile_include() -> str:
    """mk/releasekit.mk: the checkout's copy when running from one, else the packaged copy."""
    checkout = Path(__file__).resolve().parent.parent / "mk" / "releasekit.mk"
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    return _template("releasekit.mk")


def render_ci(library: Library) -> str:
    """The library's ci.yml: tests (when it has a tests/ directory), commit lint, a dry run."""
    test_job = ""
    if library.has_tests:
        test_job = _template("ci-test-job.yml").replace(
            "@@PYTHONS@@", ", ".join(f'"{v}"' for v in library.pythons)
        )
    return _fill(_template("ci.yml").replace("@@TEST_JOB@@\n", test_job), library)


def render_release(library: Library) -> str:
    """The library's release.yml, through the composite action."""
    return _fill(_template("release.yml"), library)


def _fill(text: str, library: Library) -> str:
    values = {
        "@@MAIN@@": library.main_branch,
        "@@TAG_GLOB@@": library.tag_glob,
        "@@ACTION@@": ACTION,
        "@@PYTHON@@": library.pythons[-1],
        "@@PROJECT@@": library.name,
    }
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _template(name: str) -> str:
    return (importlib.resources.files("releasekit") / "templates" / name).read_text("utf-8")


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _with_include(makefile: str | None) -> str:
    """A new Makefile whose default goal is harmless, or the include appended to the old one."""
    if makefile is None:
        return _template("Makefile")
    if MAKE_INCLUDE in makefile.splitlines():
        return makefile
    separator = "\n" if makefile.endswith("\n") else "\n\n"
    return f"{makefile}{separator}# release and private-index targets (releasekit init)\n{MAKE_INCLUDE}\n"


def _with_ignores(gitignore: str | None) -> str | None:
    """Build output and the local index's data, which would make the tree dirty for a release."""
    present = set((gitignore or "").splitlines())
    missing = [line for line in _IGNORED if line not in present]
    if not missing:
        return gitignore
    base = gitignore or ""
    if base and not base.endswith("\n"):
        base += "\n"
    return base + "".join(f"{line}\n" for line in missing)


def _edit(root: Path, relpath: str, before: str | None, after: str) -> FileEdit:
    return FileEdit(path=root / relpath, relpath=relpath, before=before, after=after)
