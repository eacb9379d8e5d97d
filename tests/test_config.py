"""[tool.releasekit] loading and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.config import VersionFile, load_config
from releasekit.errors import ConfigError
from releasekit.versioning import Level


def write_pyproject(tmp_path: Path, tool: str = "", project: str = "") -> Path:
    text = '[project]\nname = "demo"\nversion = "1.0.0"\n' + project + "\n" + tool
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_defaults_without_a_table(tmp_path: Path) -> None:
    config = load_config(write_pyproject(tmp_path))
    assert config.tag_format == "v{version}"
    assert config.changelog_path == tmp_path / "CHANGELOG.md"
    assert config.major_on_zero is True
    assert config.level_of("feat") is Level.MINOR
    assert config.level_of("fix") is Level.PATCH
    assert config.level_of("chore") is Level.NONE
    assert config.level_of("unknown") is Level.NONE
    assert config.channel_for("main") == "final"
    assert config.channel_for("develop") == "rc"
    assert config.channel_for("feature/x") is None
    assert config.commit_message == "chore(release): {version}"
    assert config.repository_url is None


def test_every_key(tmp_path: Path) -> None:
    tool = """
[tool.releasekit]
tag_format = "mylib-{version}"
changelog_file = "docs/CHANGES.md"
major_on_zero = false
commit_message = "release: {version} [skip ci]"
repository_url = "https://git.example.com/team/mylib/"
version_files = ["mylib/about.py", "docs/conf.py:release", "chart.toml:app.version",
                 { path = "Chart.yaml", pattern = "appVersion: (?P<version>\\\\S+)" }]
default_repository = "internal"

[tool.releasekit.types]
refactor = "patch"
feat = "minor"

[tool.releasekit.branches]
main = "final"
"release/*" = "beta"

[tool.releasekit.repositories.internal]
url = "https://pypi.internal.example/"
username = "ci"
"""
    config = load_config(write_pyproject(tmp_path, tool))
    assert config.format_tag("1.2.0") == "mylib-1.2.0"
    assert config.changelog_file == "docs/CHANGES.md"
    assert config.major_on_zero is False
    assert config.repository_url == "https://git.example.com/team/mylib"
    assert config.version_files == (
        VersionFile("mylib/about.py", "assignment", "__version__"),
        VersionFile("docs/conf.py", "assignment", "release"),
        VersionFile("chart.toml", "toml", "app.version"),
        VersionFile("Chart.yaml", "pattern", pattern="appVersion: (?P<version>\\S+)"),
    )
    assert config.level_of("refactor") is Level.PATCH
    assert config.channel_for("release/2.x") == "beta"
    assert config.channel_for("develop") is None  # the table replaces the defaults
    assert config.repositories["internal"].username == "ci"
    assert config.default_repository == "internal"


def test_repository_url_falls_back_to_project_urls(tmp_path: Path) -> None:
    project = '[project.urls]\nRepository = "https://github.com/o/r.git"\n'
    config = load_config(write_pyproject(tmp_path, project=project))
    assert config.repository_url == "https://github.com/o/r"


def test_environment_overrides(tmp_path: Path) -> None:
    env = {"RELEASEKIT_TAG_FORMAT": "release-{version}", "RELEASEKIT_MAJOR_ON_ZERO": "false"}
    config = load_config(write_pyproject(tmp_path), env=env)
    assert config.tag_format == "release-{version}"
    assert config.major_on_zero is False


@pytest.mark.parametrize(
    ("tool", "message", "hint"),
    [
        (
            '[tool.releasekit]\ntag_fromat = "v{version}"',
            "unknown key 'tag_fromat'",
            "did you mean 'tag_format'?",
        ),
        (
            '[tool.releasekit]\nchangelog = "C.md"',
            "unknown key 'changelog'",
            "did you mean 'changelog_file'?",
        ),
        (
            '[tool.releasekit]\ntag_format = "v"',
            "must contain {version} exactly once",
            "tag_format",
        ),
        ("[tool.releasekit]\nmajor_on_zero = 1", "major_on_zero must be true or false", None),
        (
            '[tool.releasekit]\ncommit_message = "release"',
            "commit_message must contain {version}",
            None,
        ),
        (
            '[tool.releasekit.types]\nfeat = "minr"',
            "types.feat = 'minr' is not a level",
            "did you mean 'minor'?",
        ),
        (
            '[tool.releasekit.branches]\nmain = "finale"',
            "branches.main = 'finale' is not a channel",
            "did you mean 'final'?",
        ),
        (
            '[tool.releasekit]\nversion_files = ["x.toml"]',
            "names a TOML file without a key",
            "x.toml:",
        ),
        (
            '[tool.releasekit]\nversion_files = [{ path = "a", pattern = "v(\\\\d+)" }]',
            "needs a named group",
            None,
        ),
        ('[tool.releasekit.repositories.x]\nuser = "a"', "needs url", None),
        ('[tool.releasekit]\nrepository_url = "git@host:o/r"', "must be an http(s) URL", None),
        ('[tool.releasekit]\ndefault_repository = "nope"', "default_repository 'nope'", None),
    ],
)
def test_invalid_config_is_refused_with_a_hint(
    tmp_path: Path, tool: str, message: str, hint: str | None
) -> None:
    root = write_pyproject(tmp_path, tool)
    before = (root / "pyproject.toml").read_bytes()
    with pytest.raises(ConfigError) as excinfo:
        load_config(root)
    assert message in excinfo.value.message
    if hint is not None:
        assert excinfo.value.hint is not None and hint in excinfo.value.hint
    assert (root / "pyproject.toml").read_bytes() == before


def test_missing_and_broken_pyproject(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no pyproject\.toml"):
        load_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)


def test_bad_boolean_in_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RELEASEKIT_MAJOR_ON_ZERO='maybe' is not a boolean"):
        load_config(write_pyproject(tmp_path), env={"RELEASEKIT_MAJOR_ON_ZERO": "maybe"})
