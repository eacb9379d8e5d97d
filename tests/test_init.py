"""`releasekit init` on a Poetry library and a PEP 621 library, then a real release --dry-run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from releasekit.changelog import INSERT_MARKER
from tests.conftest import GitRepo
from tests.test_release_cli import rk
from tests.test_workflows import ROOT, actionlint, load

POETRY_PYPROJECT = """\
# A Poetry 1 library: name and version under [tool.poetry].
[tool.poetry]
name = "acme-widgets"
version = "0.3.0"
description = "Widgets"
authors = ["A. Maintainer <a@example.com>"]
packages = [{ include = "acme_widgets" }]

[tool.poetry.dependencies]
python = "^3.11"   # keep this comment

[build-system]
requires = ["poetry-core>=1.0"]
build-backend = "poetry.core.masonry.api"
"""

PEP621_PYPROJECT = """\
[project]
name = "acme-gadgets"
version = "2.1.0"
requires-python = ">=3.12"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/gadgets"]
"""

MAKEFILE = "test:\n\tpytest\n"
CREATED = [
    ".github/workflows/ci.yml",
    ".github/workflows/release.yml",
    ".pre-commit-config.yaml",
    "CHANGELOG.md",
    "mk/releasekit.mk",
]


@pytest.fixture
def poetry_library(git_repo: GitRepo) -> GitRepo:
    """acme-widgets 0.3.0, released as v0.3.0, with tests/, a Makefile and a .gitignore."""
    git_repo.commit(
        "chore: initial commit",
        {
            "pyproject.toml": POETRY_PYPROJECT,
            "acme_widgets/__init__.py": '"""Widgets."""\n\n__version__ = "0.3.0"\n',
            "tests/test_widgets.py": "def test_nothing() -> None:\n    pass\n",
            "Makefile": MAKEFILE,
            ".gitignore": "__pycache__/\n",
        },
    )
    git_repo.tag("v0.3.0", "0.3.0")
    return git_repo


@pytest.fixture
def pep621_library(git_repo: GitRepo) -> GitRepo:
    """acme-gadgets 2.1.0 whose package `gadgets` (under src/) auto-detection cannot name."""
    git_repo.commit(
        "chore: initial commit",
        {
            "pyproject.toml": PEP621_PYPROJECT,
            "src/gadgets/__init__.py": "from gadgets._version import __version__\n",
            "src/gadgets/_version.py": '__version__ = "2.1.0"\n',
        },
    )
    git_repo.tag("v2.1.0", "2.1.0")
    return git_repo


def commit_and_dry_run(repo: GitRepo) -> str:
    """Commit init's files and a feature, then `releasekit release --dry-run` (must succeed)."""
    repo.commit("chore: set up releasekit")
    repo.commit("feat: a new widget")
    result = rk(repo, "release", "--dry-run")
    assert result.exit_code == 0, result.output
    assert repo.git("status", "--porcelain") == ""
    return result.stdout


def test_poetry_library(poetry_library: GitRepo) -> None:
    result = rk(poetry_library, "init")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "acme-widgets 0.3.0 (poetry, __version__ in acme_widgets/__init__.py)"
    assert lines[1:4] == ["   update pyproject.toml", "   update Makefile", "   update .gitignore"]
    assert sorted(line.split()[1] for line in lines[4:9]) == CREATED
    assert lines[-1].startswith("next: commit these files")
    path = poetry_library.path
    pyproject = (path / "pyproject.toml").read_text()
    assert pyproject == POETRY_PYPROJECT + (
        '\n[tool.releasekit]\ntag_format = "v{version}"\nchangelog_file = "CHANGELOG.md"\n\n'
        '[tool.releasekit.branches]\nmain = "final"\ndevelop = "rc"\n'
    )
    assert (path / "Makefile").read_text() == (
        f"{MAKEFILE}\n# release and private-index targets (releasekit init)\n"
        "include mk/releasekit.mk\n"
    )
    assert (path / ".gitignore").read_text() == "__pycache__/\ndist/\n.releasekit-data/\n"
    assert (path / "mk/releasekit.mk").read_text() == (ROOT / "mk/releasekit.mk").read_text()
    assert INSERT_MARKER in (path / "CHANGELOG.md").read_text()
    hook = load(path / ".pre-commit-config.yaml")["repos"][0]["hooks"][0]
    assert (hook["entry"], hook["stages"]) == ("releasekit check", ["commit-msg"])
    workflows = path / ".github" / "workflows"
    assert actionlint(workflows / "ci.yml", workflows / "release.yml", cwd=path) == (0, "")
    ci = load(workflows / "ci.yml")
    assert ci["jobs"]["test"]["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    release = load(workflows / "release.yml")
    assert release["on"]["push"] == {"branches": ["main", "develop"], "tags": ["v*"]}
    assert release["jobs"]["release"]["steps"][1]["uses"] == "releasekit/releasekit@v1"

    plan = commit_and_dry_run(poetry_library)

    assert "version: 0.3.0 -> 0.4.0" in plan
    assert '+__version__ = "0.4.0"' in plan and "b/acme_widgets/__init__.py" in plan
    assert '+version = "0.4.0"' in plan
    assert "tag: v0.4.0 (annotated)" in plan


def test_pep621_library_with_an_undetectable_version_file(pep621_library: GitRepo) -> None:
    result = rk(pep621_library, "init")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "acme-gadgets 2.1.0 (pep621, __version__ in src/gadgets/_version.py)"
    )
    assert "note: version_files = ['src/gadgets/_version.py']" in result.stdout
    path = pep621_library.path
    assert (path / "pyproject.toml").read_text().startswith(PEP621_PYPROJECT + "\n")
    assert 'version_files = ["src/gadgets/_version.py"]' in (path / "pyproject.toml").read_text()
    assert (path / ".gitignore").read_text() == "dist/\n.releasekit-data/\n"
    ci = load(path / ".github/workflows/ci.yml")
    assert "test" not in ci["jobs"]  # no tests/ directory, no test job
    action = load(path / ".github/workflows/release.yml")["jobs"]["release"]["steps"][1]
    assert action["with"]["python-version"] == "3.13"  # requires-python >= 3.12
    promote = load(path / ".github/workflows/release.yml")["jobs"]["promote"]["steps"][1]
    assert promote["with"]["command"] == (
        "promote acme-gadgets ${{ inputs.version }} --from ${{ inputs.from }} --to ${{ inputs.to }}"
    )
    # The new Makefile's default goal only lists targets; the include brings the seed targets.
    made = subprocess.run(["make", "-s"], cwd=path, capture_output=True, text=True, check=True)
    assert "make version-release" in made.stdout
    made = subprocess.run(
        ["make", "-n", "version-release", "PRIVATE_PYPI_URL=https://pypi.internal.example/"],
        cwd=path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        "releasekit release auto --publish --push-tag --repository 'https://pypi.internal.example/'"
        in made.stdout
    )

    plan = commit_and_dry_run(pep621_library)

    assert "version: 2.1.0 -> 2.2.0" in plan
    assert "b/src/gadgets/_version.py" in plan and '+__version__ = "2.2.0"' in plan


def test_running_init_twice_changes_nothing(poetry_library: GitRepo) -> None:
    assert rk(poetry_library, "init").exit_code == 0
    before = poetry_library.snapshot()

    result = rk(poetry_library, "init")

    assert result.exit_code == 0, result.output
    assert "pyproject.toml already has [tool.releasekit]: kept as it is" in result.stdout
    assert {line.split()[0] for line in result.stdout.splitlines()[1:-2]} == {"keep"}
    assert poetry_library.snapshot() == before


def test_dry_run_shows_everything_and_writes_nothing(poetry_library: GitRepo) -> None:
    before = poetry_library.snapshot()

    result = rk(poetry_library, "init", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "+[tool.releasekit]" in result.stdout
    assert "+++ b/.github/workflows/release.yml" in result.stdout
    assert "+include mk/releasekit.mk" in result.stdout
    assert result.stdout.endswith("dry run: nothing was written\n")
    assert poetry_library.snapshot() == before


def test_refuses_to_overwrite_files_and_writes_nothing(poetry_library: GitRepo) -> None:
    poetry_library.write(".pre-commit-config.yaml", "repos: []\n")
    poetry_library.write(".github/workflows/release.yml", "name: ours\n")
    before = poetry_library.snapshot()

    for args in (["init"], ["init", "--dry-run"]):
        result = rk(poetry_library, *args)
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            "error: refusing to overwrite 2 existing file(s): .github/workflows/release.yml, "
            ".pre-commit-config.yaml; nothing was written",
            "  hint: see the changes with --dry-run, then pass --force to overwrite them",
        ]
        assert "  differs .github/workflows/release.yml" in result.stdout
        assert poetry_library.snapshot() == before

    result = rk(poetry_library, "init", "--force")

    assert result.exit_code == 0, result.output
    assert "overwrite .pre-commit-config.yaml" in result.stdout
    assert "releasekit check" in (poetry_library.path / ".pre-commit-config.yaml").read_text()
    commit_and_dry_run(poetry_library)


def test_existing_configuration_is_kept_and_used(poetry_library: GitRepo) -> None:
    configured = POETRY_PYPROJECT + '\n[tool.releasekit]\ntag_format = "release-{version}"\n'
    poetry_library.commit("chore: configure", {"pyproject.toml": configured})

    result = rk(poetry_library, "init")

    assert result.exit_code == 0, result.output
    assert (poetry_library.path / "pyproject.toml").read_text() == configured
    release = load(poetry_library.path / ".github/workflows/release.yml")
    assert release["on"]["push"]["tags"] == ["release-*"]


def test_a_library_on_master_gets_master_in_its_workflows(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "lib")
    repo.git("checkout", "--quiet", "-b", "master")
    repo.commit("chore: initial", {"pyproject.toml": PEP621_PYPROJECT})

    assert rk(repo, "init").exit_code == 0

    assert 'master = "final"' in (repo.path / "pyproject.toml").read_text()
    release = load(repo.path / ".github/workflows/release.yml")
    assert release["on"]["push"]["branches"] == ["master", "develop"]
    assert "note: no __version__ assignment found" in rk(repo, "init").stdout


def test_no_pyproject_is_refused(git_repo: GitRepo) -> None:
    git_repo.commit("chore: empty")
    before = git_repo.snapshot()
    result = rk(git_repo, "init")
    assert result.exit_code == 1
    assert "error: no pyproject.toml in" in result.stderr
    assert "sets up an existing library" in result.stderr
    assert git_repo.snapshot() == before


def test_packaged_make_include_matches_the_repository() -> None:
    """Installed releasekit (no checkout) vendors this copy: it must not drift from mk/."""
    packaged = ROOT / "releasekit" / "templates" / "releasekit.mk"
    assert packaged.read_text() == (ROOT / "mk" / "releasekit.mk").read_text()
