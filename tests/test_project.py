"""releasekit.project on real files: every edit is compared as exact text, every refusal as bytes."""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from releasekit.config import Config, VersionFile, config_from_table
from releasekit.errors import ConfigError, ReleaseError, VersionError
from releasekit.project import (
    FileEdit,
    apply_edits,
    current_file_versions,
    load_project,
    version_edits,
)
from tests.conftest import PYPROJECT_PEP621, GitRepo


def make(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for relpath, content in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.parts
    }


def config(root: Path, **table: Any) -> Config:
    return config_from_table(root, table)


def release(root: Path, new_version: str, **table: Any) -> None:
    """Plan and apply the edits that write `new_version`, as the release pipeline does."""
    apply_edits(version_edits(load_project(config(root, **table)), new_version))


# --- reading and writing ---------------------------------------------------------------------


def test_pep621_project_with_package_init(project: GitRepo) -> None:
    info = load_project(config(project.path))
    assert info.name == "example-lib"
    assert info.declared_version == "0.1.0"
    assert info.version_files == (
        VersionFile("pyproject.toml", "toml", "project.version"),
        VersionFile("example_lib/__init__.py", "assignment", "__version__"),
    )
    edits = version_edits(info, "0.2.0")
    assert [edit.relpath for edit in edits] == ["pyproject.toml", "example_lib/__init__.py"]
    assert (project.path / "pyproject.toml").read_text() == PYPROJECT_PEP621.format(version="0.1.0")
    apply_edits(edits)
    assert (project.path / "pyproject.toml").read_text() == PYPROJECT_PEP621.format(version="0.2.0")
    assert (project.path / "example_lib/__init__.py").read_text() == (
        '"""Example."""\n\n__version__ = "0.2.0"\n'
    )
    assert current_file_versions(info) == {
        "pyproject.toml:project.version": "0.2.0",
        "example_lib/__init__.py:__version__": "0.2.0",
    }


RICH_PYPROJECT = """\
# The project. version 0.1.0 is mentioned in this comment and must stay.
[project]
name   =   "rich-lib"
version   =   '{version}'   # keep this comment; 0.1.0
description = "pins 0.1.0 below"
dependencies = [
    "other==0.1.0",  # pinned to the same string
    'dep>=0.1.0,<1',
]

[project.optional-dependencies]
test = ["pytest==0.1.0"]

[tool.other]
version = "0.1.0"

[tool.poetry.dependencies]
dep = "==0.1.0"
"""


def test_pyproject_is_edited_by_key_and_nothing_else(tmp_path: Path) -> None:
    make(tmp_path, {"pyproject.toml": RICH_PYPROJECT.format(version="0.1.0")})
    release(tmp_path, "1.0.0rc1")
    # exact text: only the [project].version string changed, quoting and spacing kept
    assert (tmp_path / "pyproject.toml").read_text() == RICH_PYPROJECT.format(version="1.0.0rc1")


POETRY_1 = """\
[tool.poetry]
name = "my-lib"
version = "{version}"
description = ""
authors = ["A <a@example.com>"]

[tool.poetry.dependencies]
python = "^3.11"
sibling = "==0.3.1"
requests = "0.3.1"

[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"
"""


def test_poetry_1_project_with_only_tool_poetry(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "pyproject.toml": POETRY_1.format(version="0.3.1"),
            "my_lib/__init__.py": '__version__ = "0.3.1"\nREQUIRES = "sibling==0.3.1"\n',
        },
    )
    info = load_project(config(tmp_path))
    assert info.name == "my-lib"
    assert [(f.path, f.key) for f in info.version_files] == [
        ("pyproject.toml", "tool.poetry.version"),
        ("my_lib/__init__.py", "__version__"),
    ]
    apply_edits(version_edits(info, "0.4.0"))
    assert (tmp_path / "pyproject.toml").read_text() == POETRY_1.format(version="0.4.0")
    assert (tmp_path / "my_lib/__init__.py").read_text() == (
        '__version__ = "0.4.0"\nREQUIRES = "sibling==0.3.1"\n'
    )


BOTH = """\
[project]
name = "both-lib"
version = "{project}"
dependencies = ["x==1.2.3"]

[tool.poetry]
version = "{poetry}"
"""


def test_project_and_poetry_sections_move_together(tmp_path: Path) -> None:
    make(tmp_path, {"pyproject.toml": BOTH.format(project="1.2.3", poetry="1.2.3")})
    edits = version_edits(load_project(config(tmp_path)), "1.3.0")
    assert len(edits) == 1  # one file, both keys
    apply_edits(edits)
    assert (tmp_path / "pyproject.toml").read_text() == BOTH.format(project="1.3.0", poetry="1.3.0")


def test_poetry_2_dynamic_version_from_tool_poetry(tmp_path: Path) -> None:
    text = '[project]\nname = "p2"\ndynamic = ["version"]\n\n[tool.poetry]\nversion = "2.0.0"\n'
    make(tmp_path, {"pyproject.toml": text})
    info = load_project(config(tmp_path))
    assert info.declared_version == "2.0.0"
    release(tmp_path, "2.1.0")
    assert (tmp_path / "pyproject.toml").read_text() == text.replace("2.0.0", "2.1.0")


def test_src_layout_assignment_keeps_quotes_and_other_occurrences(tmp_path: Path) -> None:
    init = "from example_lib._version import __version__\n"
    version_py = (
        "# generated for 0.1.0\n"
        "__version__: str = '0.1.0'  # 0.1.0\n"
        'MINIMUM = "0.1.0"\n'
        "def f():\n"
        '    __version__ = "0.1.0"  # indented: not the module attribute\n'
    )
    make(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0"),
            "src/example_lib/__init__.py": init,
            "src/example_lib/_version.py": version_py,
            "src/example_lib/version.py": "__version__ = importlib.metadata.version('x')\n",
        },
    )
    info = load_project(config(tmp_path))
    assert [f.path for f in info.version_files] == ["pyproject.toml", "src/example_lib/_version.py"]
    apply_edits(version_edits(info, "0.2.0"))
    assert (tmp_path / "src/example_lib/_version.py").read_text() == version_py.replace(
        "__version__: str = '0.1.0'", "__version__: str = '0.2.0'"
    )
    assert (tmp_path / "src/example_lib/__init__.py").read_text() == init


def test_configured_files_of_each_kind_replace_auto_detection(tmp_path: Path) -> None:
    chart = '[package]\nname = "chart"\nversion = "0.1.0"  # app\n\n[deps]\nlib = "0.1.0"\n'
    conf = 'project = "x"\nrelease = "0.1.0"\nversion = "0.1"\n'
    readme = "Install 0.1.0:\n\n    pip install lib==0.1.0\n\nCurrent release: **0.1.0**\n"
    make(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0"),
            "example_lib/__init__.py": '__version__ = "0.1.0"\n',
            "chart.toml": chart,
            "docs/conf.py": conf,
            "README.md": readme,
        },
    )
    table = {
        "version_files": [
            "chart.toml:package.version",
            "docs/conf.py:release",
            {"path": "README.md", "pattern": r"^Current release: \*\*(?P<version>[^*]+)\*\*$"},
        ]
    }
    info = load_project(config(tmp_path, **table))
    assert [f.path for f in info.version_files] == [
        "pyproject.toml",
        "chart.toml",
        "docs/conf.py",
        "README.md",
    ]
    assert current_file_versions(info) == {
        "pyproject.toml:project.version": "0.1.0",
        "chart.toml:package.version": "0.1.0",
        "docs/conf.py:release": "0.1.0",
        "README.md": "0.1.0",
    }
    apply_edits(version_edits(info, "0.2.0"))
    assert (tmp_path / "chart.toml").read_text() == chart.replace(
        'version = "0.1.0"', 'version = "0.2.0"'
    )
    assert (tmp_path / "docs/conf.py").read_text() == conf.replace("0.1.0", "0.2.0")
    assert (tmp_path / "README.md").read_text() == readme.replace("**0.1.0**", "**0.2.0**")
    assert (tmp_path / "example_lib/__init__.py").read_text() == '__version__ = "0.1.0"\n'


def test_toml_dotted_keys_and_out_of_order_tables(tmp_path: Path) -> None:
    pyproject = (
        '[tool.poetry]\nname = "x"\nversion = "0.5.0"\n\n[project]\nname = "x"\n'
        'dynamic = ["version"]\n\n[tool.poetry.dependencies]\nlib = "0.5.0"\n'
    )
    extra = 'app.name = "y"\napp.version = "0.5.0" # dotted\n\n[other]\nversion = "0.5.0"\n'
    make(tmp_path, {"pyproject.toml": pyproject, "extra.toml": extra})
    release(tmp_path, "0.6.0", version_files=["extra.toml:app.version"])
    assert (tmp_path / "pyproject.toml").read_text() == pyproject.replace(
        'version = "0.5.0"', 'version = "0.6.0"'
    )
    assert (tmp_path / "extra.toml").read_text() == extra.replace(
        'app.version = "0.5.0"', 'app.version = "0.6.0"'
    )


def test_a_symlinked_version_file_is_written_through_the_link(tmp_path: Path) -> None:
    make(tmp_path, {"pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0")})
    make(tmp_path, {"shared/version.py": '__version__ = "0.1.0"\n'})
    (tmp_path / "example_lib").mkdir()
    (tmp_path / "example_lib/_version.py").symlink_to(tmp_path / "shared/version.py")
    release(tmp_path, "0.2.0")
    assert (tmp_path / "example_lib/_version.py").is_symlink()
    assert (tmp_path / "shared/version.py").read_text() == '__version__ = "0.2.0"\n'


def test_crlf_files_keep_their_line_ends(tmp_path: Path) -> None:
    pyproject = PYPROJECT_PEP621.format(version="0.1.0").replace("\n", "\r\n").encode()
    init = b'"""Doc."""\r\n\r\n__version__ = "0.1.0"\r\n'
    make(tmp_path, {"pyproject.toml": pyproject, "example_lib/__init__.py": init})
    release(tmp_path, "0.1.1")
    assert (tmp_path / "pyproject.toml").read_bytes() == pyproject.replace(b"0.1.0", b"0.1.1")
    assert (tmp_path / "example_lib/__init__.py").read_bytes() == init.replace(b"0.1.0", b"0.1.1")


def test_current_file_versions_shows_disagreement(project: GitRepo) -> None:
    project.write("example_lib/__init__.py", '__version__ = "0.0.9"\n')
    info = load_project(config(project.path))
    assert current_file_versions(info)["example_lib/__init__.py:__version__"] == "0.0.9"
    edits = version_edits(info, "0.1.0")  # pyproject is already there: one edit only
    assert [edit.relpath for edit in edits] == ["example_lib/__init__.py"]


def test_version_edits_refuses_a_non_version(project: GitRepo) -> None:
    with pytest.raises(
        VersionError, match=re.escape("refusing to write '1.0\"; rm' into version files")
    ):
        version_edits(load_project(config(project.path)), '1.0"; rm')
    with pytest.raises(VersionError, match="not in PEP 440 form") as info:
        version_edits(load_project(config(project.path)), "1.0.0-rc.1")
    assert info.value.hint == "write 1.0.0rc1"


# --- diffs and atomic writes ----------------------------------------------------------------


def test_diff_is_a_unified_diff_with_git_paths(tmp_path: Path) -> None:
    edit = FileEdit(
        tmp_path / "a.py",
        "pkg/a.py",
        'x = 1\n__version__ = "0.1.0"\n',
        'x = 1\n__version__ = "0.2.0"\n',
    )
    assert edit.diff() == (
        "--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -1,2 +1,2 @@\n"
        ' x = 1\n-__version__ = "0.1.0"\n+__version__ = "0.2.0"\n'
    )
    no_newline = FileEdit(tmp_path / "v", "VERSION", "0.1.0", "0.2.0")
    assert no_newline.diff().endswith(
        "-0.1.0\n\\ No newline at end of file\n+0.2.0\n\\ No newline at end of file\n"
    )
    new = FileEdit(tmp_path / "c", "CHANGELOG.md", None, "# Changelog\n\x0c\n")
    assert new.diff() == "--- /dev/null\n+++ b/CHANGELOG.md\n@@ -0,0 +1,2 @@\n+# Changelog\n+\x0c\n"


def test_apply_edits_keeps_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    script = make(tmp_path, {"tool.py": '__version__ = "1"\n'}) / "tool.py"
    script.chmod(0o754)
    apply_edits(
        [
            FileEdit(script, "tool.py", '__version__ = "1"\n', '__version__ = "2"\n'),
            FileEdit(tmp_path / "NEW.md", "NEW.md", None, "new\n"),
        ]
    )
    assert stat.S_IMODE(script.stat().st_mode) == 0o754
    assert script.read_text() == '__version__ = "2"\n'
    assert (tmp_path / "NEW.md").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["NEW.md", "tool.py"]


def test_apply_edits_refuses_a_file_changed_since_planning(tmp_path: Path) -> None:
    make(tmp_path, {"a.txt": "one\n", "b.txt": "changed by someone\n"})
    before = tree(tmp_path)
    edits = [
        FileEdit(tmp_path / "a.txt", "a.txt", "one\n", "ONE\n"),
        FileEdit(tmp_path / "b.txt", "b.txt", "two\n", "TWO\n"),
    ]
    with pytest.raises(ReleaseError, match=r"b\.txt changed after the release was planned"):
        apply_edits(edits)
    assert tree(tmp_path) == before


def test_apply_edits_writes_nothing_when_one_temp_file_fails(tmp_path: Path) -> None:
    make(tmp_path, {"a.txt": "one\n"})
    before = tree(tmp_path)
    edits = [
        FileEdit(tmp_path / "a.txt", "a.txt", "one\n", "ONE\n"),
        FileEdit(tmp_path / "missing-dir" / "b.txt", "missing-dir/b.txt", None, "two\n"),
    ]
    with pytest.raises(ReleaseError, match=r"cannot write version files.*nothing was changed"):
        apply_edits(edits)
    assert tree(tmp_path) == before  # no replaced file, no temp file left behind


# --- refusals: each says which file and what to do, and leaves every byte as it was ----------


REFUSALS: list[tuple[str, dict[str, str], dict[str, Any], type[Exception], str, str]] = [
    (
        "no pyproject",
        {"setup.py": "x"},
        {},
        ConfigError,
        "no pyproject.toml in",
        "project root",
    ),
    (
        "no version",
        {"pyproject.toml": '[project]\nname = "x"\n'},
        {},
        ConfigError,
        "pyproject.toml declares no version",
        'add version = "0.1.0" under [project]',
    ),
    (
        "dynamic version",
        {"pyproject.toml": '[project]\nname = "x"\ndynamic = ["version"]\n'},
        {},
        ConfigError,
        'dynamic = ["version"] and no static version',
        'remove "version" from dynamic',
    ),
    (
        "two versions",
        {"pyproject.toml": BOTH.format(project="1.2.3", poetry="1.2.4")},
        {},
        ConfigError,
        "two different versions: [project] version = '1.2.3' and [tool.poetry] version = '1.2.4'",
        "make them equal",
    ),
    (
        "unparsable version",
        {"pyproject.toml": '[project]\nname = "x"\nversion = "banana"\n'},
        {},
        VersionError,
        "pyproject.toml declares version 'banana'",
        "PEP 440",
    ),
    (
        "not toml",
        {"pyproject.toml": '[project\nname = "x"\n'},
        {},
        ConfigError,
        "pyproject.toml is not valid TOML",
        "fix the syntax",
    ),
    (
        "missing configured file",
        {"pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0")},
        {"version_files": ["docs/conf.py:release"]},
        ConfigError,
        "docs/conf.py does not exist",
        "remove it from version_files",
    ),
    (
        "missing toml key",
        {"pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0"), "chart.toml": "[package]\n"},
        {"version_files": ["chart.toml:package.version"]},
        ConfigError,
        "chart.toml has no key package.version",
        "fix the key",
    ),
    (
        "missing assignment",
        {"pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0"), "conf.py": "version = '1'\n"},
        {"version_files": ["conf.py:release"]},
        ConfigError,
        'conf.py: expected exactly one module-level assignment release = "...", found none',
        "exactly one place",
    ),
    (
        "toml key that is a table",
        {
            "pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0"),
            "c.toml": "[a.version]\nx = 1\n",
        },
        {"version_files": ["c.toml:a.version"]},
        ConfigError,
        "c.toml: a.version is not a string",
        'write version = "1.2.3"',
    ),
    (
        "pattern without match",
        {"pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0"), "V.txt": "nothing\n"},
        {"version_files": [{"path": "V.txt", "pattern": r"^v(?P<version>\S+)$"}]},
        ConfigError,
        "V.txt: expected exactly one match of pattern '^v(?P<version>\\\\S+)$', found none",
        "exactly one place",
    ),
    (
        "pattern matching twice",
        {
            "pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0"),
            "V.txt": "v0.1.0\nx\nv0.1.0\n",
        },
        {"version_files": [{"path": "V.txt", "pattern": r"^v(?P<version>\S+)$"}]},
        ConfigError,
        "found 2 (lines 1, 3)",
        "exactly one place",
    ),
    (
        "auto-detected file with two assignments",
        {
            "pyproject.toml": PYPROJECT_PEP621.format(version="0.1.0"),
            "example_lib/__init__.py": '__version__ = "0.1.0"\n__version__ = "dev"\n',
        },
        {},
        ConfigError,
        'example_lib/__init__.py: expected exactly one module-level assignment __version__ = "...", found 2',
        "version_files",
    ),
]


@pytest.mark.parametrize(
    ("files", "table", "error", "message", "hint"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_refusals_name_the_file_and_change_nothing(
    tmp_path: Path,
    files: dict[str, str],
    table: dict[str, Any],
    error: type[Exception],
    message: str,
    hint: str,
) -> None:
    make(tmp_path, files)
    before = tree(tmp_path)
    with pytest.raises(error) as info:
        release(tmp_path, "9.9.9", **table)
    assert isinstance(info.value, ReleaseError)
    assert message in info.value.message
    assert info.value.hint is not None and hint in info.value.hint
    assert tree(tmp_path) == before
