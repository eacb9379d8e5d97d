"""Building real projects with pypa/build: an in-tree stdlib backend and poetry-core."""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from releasekit.build import (
    Distributions,
    build_distributions,
    find_distributions,
    parse_distribution_filename,
)
from releasekit.errors import BuildError

# A PEP 517 backend in plain stdlib, so builds need no network. `[tool.tiny]` in pyproject.toml
# makes it misbehave: `fail` raises, `metadata_version` lies in the metadata, `long_description`
# adds an RST description.
TINY_BACKEND = """\
import base64, hashlib, io, os, tarfile, tomllib, zipfile

def _config():
    with open("pyproject.toml", "rb") as stream:
        data = tomllib.load(stream)
    return data["project"], data.get("tool", {}).get("tiny", {})

def _metadata():
    project, knobs = _config()
    if "fail" in knobs:
        print("tiny backend: about to fail")
        raise RuntimeError(knobs["fail"])
    lines = [
        "Metadata-Version: 2.1",
        "Name: " + project["name"],
        "Version: " + knobs.get("metadata_version", project["version"]),
        "Summary: " + project.get("description", ""),
    ]
    if "long_description" in knobs:
        lines.append("Description-Content-Type: text/x-rst")
        return "\\n".join(lines) + "\\n\\n" + knobs["long_description"]
    return "\\n".join(lines) + "\\n"

def _sources():
    project, _ = _config()
    package = project["name"].replace("-", "_")
    files = ["pyproject.toml"]
    for top in (package, "_backend"):
        for folder, _dirs, names in sorted(os.walk(top)):
            files += sorted(os.path.join(folder, n) for n in names if n.endswith(".py"))
    return package, files

def _stem():
    project, _ = _config()
    return project["name"].replace("-", "_") + "-" + project["version"]

def build_sdist(sdist_directory, config_settings=None):
    metadata = _metadata().encode()
    _, files = _sources()
    name = _stem() + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as archive:
        for path in files:
            archive.add(path, arcname=_stem() + "/" + path)
        info = tarfile.TarInfo(_stem() + "/PKG-INFO")
        info.size = len(metadata)
        archive.addfile(info, io.BytesIO(metadata))
    return name

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    package, files = _sources()
    info = _stem() + ".dist-info"
    contents = {p: open(p, "rb").read() for p in files if p.startswith(package + os.sep)}
    contents[info + "/METADATA"] = _metadata().encode()
    contents[info + "/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: tiny\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    record = []
    for path, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    contents[info + "/RECORD"] = ("\\n".join(record + [info + "/RECORD,,"]) + "\\n").encode()
    name = _stem() + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for path, data in contents.items():
            archive.writestr(zipfile.ZipInfo(path, (2024, 1, 1, 0, 0, 0)), data)
    return name
"""


def tiny_project(root: Path, version: str = "1.0.0", tiny: str = "", payload: str = "") -> Path:
    """A project built by the in-tree stdlib backend (`backend-path`), at `version`."""
    (root / "_backend").mkdir(parents=True, exist_ok=True)
    (root / "_backend" / "tiny_backend.py").write_text(TINY_BACKEND, encoding="utf-8")
    (root / "tiny_lib").mkdir(exist_ok=True)
    (root / "tiny_lib" / "__init__.py").write_text(
        f'__version__ = "{version}"\n{payload}', encoding="utf-8"
    )
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "tiny-lib"\nversion = "{version}"\ndescription = "Tiny"\n\n'
        '[build-system]\nrequires = []\nbuild-backend = "tiny_backend"\nbackend-path = ["_backend"]\n'
        + (f"\n[tool.tiny]\n{tiny}\n" if tiny else ""),
        encoding="utf-8",
    )
    return root


POETRY_PROJECT = """\
[project]
name = "Poetry.Lib"
version = "{version}"
description = "A poetry-core library"
readme = "README.rst"
requires-python = ">=3.11"

[tool.poetry]
packages = [{{ include = "poetry_lib" }}]

[build-system]
requires = ["poetry-core>=2.0,<3"]
build-backend = "poetry.core.masonry.api"
"""


def poetry_project(root: Path, version: str) -> Path:
    (root / "poetry_lib").mkdir(parents=True, exist_ok=True)
    (root / "poetry_lib" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (root / "README.rst").write_text("Poetry lib\n==========\n\nA *real* README.\n")
    (root / "pyproject.toml").write_text(POETRY_PROJECT.format(version=version))
    return root


def listing(directory: Path) -> dict[str, str]:
    """Every file under `directory` with its sha256: what a refused build must leave alone."""
    if not directory.exists():
        return {}
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def build(
    root: Path, version: str, outdir: Path, **kwargs: bool
) -> tuple[Distributions, list[str]]:
    lines: list[str] = []
    dists = build_distributions(root, version, outdir=outdir, progress=lines.append, **kwargs)
    return dists, lines


def test_builds_sdist_and_wheel_without_isolation(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "tiny", "1.2.0")
    dists, lines = build(root, "1.2.0", tmp_path / "dist", isolation=False)

    assert dists == Distributions(
        sdist=tmp_path / "dist" / "tiny_lib-1.2.0.tar.gz",
        wheel=tmp_path / "dist" / "tiny_lib-1.2.0-py3-none-any.whl",
        name="tiny-lib",
        version="1.2.0",
    )
    assert sorted(listing(tmp_path / "dist")) == [dists.wheel.name, dists.sdist.name]
    with zipfile.ZipFile(dists.wheel) as wheel:
        assert "tiny_lib/__init__.py" in wheel.namelist()
    steps = [line for line in lines if not line.startswith("twine check warning")]
    assert steps == [
        "building sdist",
        "building wheel from the sdist",
        f"built {dists.sdist.name} and {dists.wheel.name}",
    ]


def test_isolated_build_creates_its_own_environment(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "tiny", "2.0.0rc1")
    dists, lines = build(root, "2.0.0rc1", tmp_path / "dist")

    assert dists.version == "2.0.0rc1"
    assert dists.wheel.name == "tiny_lib-2.0.0rc1-py3-none-any.whl"
    assert lines[0] == "creating an isolated build environment"


def test_wheel_is_built_from_the_sdist(tmp_path: Path) -> None:
    """A module left out of the sdist must not reach the wheel: the wheel comes from the sdist."""
    root = tiny_project(tmp_path / "tiny")
    (root / "tiny_lib" / "data.txt").write_text("not a .py file, so not in the sdist")
    dists, _ = build(root, "1.0.0", tmp_path / "dist", isolation=False)
    with tarfile.open(dists.sdist) as sdist:
        assert "tiny_lib-1.0.0/tiny_lib/__init__.py" in sdist.getnames()
    with zipfile.ZipFile(dists.wheel) as wheel:
        assert not any(name.endswith("data.txt") for name in wheel.namelist())


def test_files_of_other_versions_in_outdir_are_ignored_and_kept(tmp_path: Path) -> None:
    outdir = tmp_path / "dist"
    old, _ = build(tiny_project(tmp_path / "tiny", "1.0.0"), "1.0.0", outdir, isolation=False)
    before = listing(outdir)
    (outdir / "tiny_lib-1.0.0.post1-py3-none-any.whl").write_bytes(b"not even a zip")

    new, _ = build(tiny_project(tmp_path / "tiny", "1.1.0"), "1.1.0", outdir, isolation=False)

    assert (new.sdist.name, new.wheel.name) == (
        "tiny_lib-1.1.0.tar.gz",
        "tiny_lib-1.1.0-py3-none-any.whl",
    )
    after = listing(outdir)
    assert {name: after[name] for name in before} == before
    assert find_distributions(tmp_path / "tiny", "1.1.0", outdir=outdir) == new
    assert find_distributions(tmp_path / "tiny", "1.0.0", outdir=outdir) == old


@pytest.mark.parametrize("isolation", [False, True])
def test_failing_backend_reports_its_error_and_writes_nothing(
    tmp_path: Path, isolation: bool
) -> None:
    root = tiny_project(tmp_path / "tiny", tiny='fail = "the flux capacitor is missing"')
    outdir = tmp_path / "dist"
    with pytest.raises(BuildError) as caught:
        build(root, "1.0.0", outdir, isolation=isolation)
    message = str(caught.value)
    assert "the build backend failed" in message
    assert "RuntimeError: the flux capacitor is missing" in message
    assert "tiny backend: about to fail" in message
    assert caught.value.hint is not None
    assert listing(outdir) == {}


def test_version_not_in_the_project_is_refused(tmp_path: Path) -> None:
    """Releasing 1.1.0 while pyproject.toml still says 1.0.0 (a version file not updated)."""
    outdir = tmp_path / "dist"
    with pytest.raises(
        BuildError, match=r"tiny_lib-1\.0\.0\.tar\.gz is not a file of tiny-lib 1\.1\.0"
    ):
        build(tiny_project(tmp_path / "tiny", "1.0.0"), "1.1.0", outdir, isolation=False)
    assert listing(outdir) == {}


def test_metadata_disagreeing_with_the_filename_is_refused(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "tiny", "1.0.0", tiny='metadata_version = "0.9.0"')
    outdir = tmp_path / "dist"
    with pytest.raises(BuildError) as caught:
        build(root, "1.0.0", outdir, isolation=False)
    assert "PKG-INFO of tiny_lib-1.0.0.tar.gz says tiny-lib 0.9.0, expected tiny-lib 1.0.0" in str(
        caught.value
    )
    assert listing(outdir) == {}


def test_long_description_that_does_not_render_is_refused(tmp_path: Path) -> None:
    broken = "Title\\n=====\\n\\n.. unknown-directive:: boom\\n"
    root = tiny_project(tmp_path / "tiny", tiny=f'long_description = "{broken}"')
    outdir = tmp_path / "dist"
    with pytest.raises(BuildError) as caught:
        build(root, "1.0.0", outdir, isolation=False)
    assert "has RST errors and would not render" in str(caught.value)
    assert 'Unknown directive type "unknown-directive"' in str(caught.value)
    assert listing(outdir) == {}


def test_twine_check_warnings_go_to_progress(tmp_path: Path) -> None:
    _, lines = build(tiny_project(tmp_path / "tiny"), "1.0.0", tmp_path / "dist", isolation=False)
    assert "twine check warning: tiny_lib-1.0.0.tar.gz: no long_description" in lines


def test_missing_backend_without_isolation_says_how_to_fix(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1.0.0"\n\n'
        '[build-system]\nrequires = ["no-such-backend-xyz"]\nbuild-backend = "no_such_backend_xyz"\n'
    )
    with pytest.raises(BuildError) as caught:
        build(root, "1.0.0", tmp_path / "dist", isolation=False)
    assert "Backend 'no_such_backend_xyz' is not available" in str(caught.value)
    assert (
        caught.value.hint
        == "install the build backend into this environment, or drop --no-isolation"
    )


def test_invalid_version_and_missing_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"'1\.0\.0\.final\.x' is not a PEP 440 version"):
        build(tiny_project(tmp_path / "tiny"), "1.0.0.final.x", tmp_path / "dist", isolation=False)
    (tmp_path / "anon").mkdir()
    (tmp_path / "anon" / "pyproject.toml").write_text("[project]\nversion = '1'\n")
    with pytest.raises(BuildError, match="declares no project name"):
        build(tmp_path / "anon", "1", tmp_path / "dist", isolation=False)


def test_find_distributions_refuses_missing_or_ambiguous_files(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "tiny")
    outdir = tmp_path / "dist"
    with pytest.raises(BuildError, match=r"no sdist and wheel of tiny-lib 1\.0\.0") as caught:
        find_distributions(root, "1.0.0", outdir=outdir)
    assert caught.value.hint is not None and "--skip-build" in caught.value.hint
    dists, _ = build(root, "1.0.0", outdir, isolation=False)
    dists.wheel.unlink()
    with pytest.raises(BuildError, match=r"no wheel of tiny-lib 1\.0\.0"):
        find_distributions(root, "1.0.0", outdir=outdir)
    build(root, "1.0.0", outdir, isolation=False)
    (outdir / "tiny_lib-1.0.0-py3-none-manylinux_2_17_x86_64.whl").write_bytes(b"")
    with pytest.raises(BuildError, match=r"several files of tiny-lib 1\.0\.0"):
        find_distributions(root, "1.0.0", outdir=outdir)


def test_find_distributions_checks_the_files(tmp_path: Path) -> None:
    outdir = tmp_path / "dist"
    outdir.mkdir()
    (outdir / "tiny_lib-1.0.0.tar.gz").write_bytes(b"truncated")
    (outdir / "tiny_lib-1.0.0-py3-none-any.whl").write_bytes(b"truncated")
    with pytest.raises(BuildError, match=r"tiny_lib-1\.0\.0\.tar\.gz fails twine check"):
        find_distributions(tiny_project(tmp_path / "tiny"), "1.0.0", outdir=outdir)


def test_parse_distribution_filename() -> None:
    assert parse_distribution_filename("Foo.Bar-1.0-py3-none-any.whl") == (
        "foo-bar",
        Version("1.0"),
    )
    assert parse_distribution_filename("foo_bar-1.0rc1.tar.gz") == ("foo-bar", Version("1.0rc1"))
    assert parse_distribution_filename("foo-1.0.exe") is None
    assert parse_distribution_filename("not-a-wheel.whl") is None


def test_poetry_core_without_isolation(tmp_path: Path) -> None:
    """poetry-core from this environment (installed in .venv); a non-normalized project name."""
    root = poetry_project(tmp_path / "poetry", "0.3.0")
    dists, _ = build(root, "0.3.0", tmp_path / "dist", isolation=False)
    assert (dists.sdist.name, dists.wheel.name) == (
        "poetry_lib-0.3.0.tar.gz",
        "poetry_lib-0.3.0-py3-none-any.whl",
    )
    assert dists.name == "Poetry.Lib"


@pytest.mark.e2e
def test_poetry_core_isolated_build_is_reproducible(tmp_path: Path) -> None:
    """poetry-core installed by pip into a fresh isolated environment; a rebuild gives the same bytes
    (which is what lets a release resume after a failed upload)."""
    root = poetry_project(tmp_path / "poetry", "0.4.0")
    first, lines = build(root, "0.4.0", tmp_path / "one")
    build(root, "0.4.0", tmp_path / "two", isolation=False)
    assert "installing build requirements: poetry-core>=2.0,<3" in lines
    assert listing(tmp_path / "one") == listing(tmp_path / "two")
    assert first.wheel.name == "poetry_lib-0.4.0-py3-none-any.whl"
