"""Build the sdist and wheel of one version with pypa/build's library API, then check them.

The wheel is built from the unpacked sdist (as `python -m build` does), so a file missing from
the sdist fails here and not on a consumer's machine. Files are built in a scratch directory and
moved into the output directory only once every check passed: the output directory never holds
an unchecked file, and files of other versions already there are never looked at.
"""

from __future__ import annotations

import email.message
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import build
import build.env
import readme_renderer.rst
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version
from twine.exceptions import TwineException
from twine.package import PackageFile

from releasekit.config import read_pyproject
from releasekit.errors import BuildError

Progress = Callable[[str], None]
_TAIL_LINES = 20  # lines of a failing backend's output carried into the BuildError


@dataclass(frozen=True)
class Distributions:
    """The two files of one version of one project."""

    sdist: Path
    wheel: Path
    name: str
    version: str

    @property
    def files(self) -> tuple[Path, Path]:
        return (self.sdist, self.wheel)


def build_distributions(
    root: Path, version: str, *, outdir: Path, isolation: bool = True, progress: Progress
) -> Distributions:
    """Build the sdist, then the wheel from it, check both, and move them into `outdir`."""
    name = project_name(root)
    expected = _parse_version(version)
    with tempfile.TemporaryDirectory(prefix="releasekit-build-") as scratch:
        staging = Path(scratch) / "dist"
        try:
            if isolation:
                progress("creating an isolated build environment")
                with build.env.DefaultIsolatedEnv() as env:
                    sdist, wheel = _build_both(
                        lambda src: build.ProjectBuilder.from_isolated_env(env, src, _run_quietly),
                        root,
                        staging,
                        progress,
                        install=_once(env.install, progress),
                    )
            else:
                sdist, wheel = _build_both(
                    lambda src: build.ProjectBuilder(src, runner=_run_quietly),
                    root,
                    staging,
                    progress,
                    install=None,
                )
        except build.BuildBackendException as exc:
            raise _backend_error(exc, isolation) from None
        except build.BuildException as exc:
            raise BuildError(f"cannot build {name}: {exc}", hint="fix pyproject.toml") from None
        except build.FailedProcessError as exc:
            raise BuildError(str(exc), hint=_tail(exc.exception)) from None
        except subprocess.CalledProcessError as exc:  # installing the build requirements failed
            raise BuildError(
                f"cannot install the build requirements of {name}:\n{_tail(exc)}",
                hint="check [build-system] requires and that the package index is reachable",
            ) from None
        dists = Distributions(sdist=sdist, wheel=wheel, name=name, version=str(expected))
        check_distributions(dists, progress=progress)
        outdir.mkdir(parents=True, exist_ok=True)
        moved = Distributions(
            sdist=_move_into(sdist, outdir),
            wheel=_move_into(wheel, outdir),
            name=name,
            version=str(expected),
        )
    progress(f"built {moved.sdist.name} and {moved.wheel.name}")
    return moved


def find_distributions(root: Path, version: str, *, outdir: Path) -> Distributions:
    """The already built files of exactly `version` in `outdir` (for --skip-build), checked."""
    name = project_name(root)
    expected = _parse_version(version)
    sdists: list[Path] = []
    wheels: list[Path] = []
    for path in sorted(outdir.iterdir()) if outdir.is_dir() else []:
        parsed = parse_distribution_filename(path.name)
        if parsed == (canonicalize_name(name), expected):
            (wheels if path.name.endswith(".whl") else sdists).append(path)
    hint = (
        f"build them first (drop --skip-build), or pass --outdir where {name} {expected} was built"
    )
    if not sdists or not wheels:
        missing = " and ".join(k for k, f in (("sdist", sdists), ("wheel", wheels)) if not f)
        raise BuildError(f"no {missing} of {name} {expected} in {outdir}", hint=hint)
    if len(sdists) > 1 or len(wheels) > 1:
        names = ", ".join(p.name for p in (*sdists, *wheels))
        raise BuildError(
            f"several files of {name} {expected} in {outdir}: {names}",
            hint="remove the stale ones, or rebuild into an empty --outdir",
        )
    dists = Distributions(sdist=sdists[0], wheel=wheels[0], name=name, version=str(expected))
    check_distributions(dists, progress=lambda _line: None)
    return dists


def check_distributions(dists: Distributions, *, progress: Progress) -> None:
    """Filenames and metadata carry the project's name and version; `twine check` passes."""
    expected = (canonicalize_name(dists.name), Version(dists.version))
    for path in dists.files:
        if parse_distribution_filename(path.name) != expected:
            raise BuildError(
                f"{path.name} is not a file of {dists.name} {dists.version}",
                hint="the build backend read another name or version: check pyproject.toml",
            )
        try:
            package = PackageFile.from_filename(str(path), comment=None)
        except (TwineException, tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BuildError(f"{path.name} fails twine check: {exc}", hint=_METADATA_HINT) from None
        meta_name, meta_version = package.metadata["name"], package.metadata["version"]
        source = "METADATA" if path.name.endswith(".whl") else "PKG-INFO"
        if (
            canonicalize_name(meta_name) != expected[0]
            or _parse_version(meta_version) != expected[1]
        ):
            raise BuildError(
                f"{source} of {path.name} says {meta_name} {meta_version}, "
                f"expected {dists.name} {dists.version}",
                hint="a version file was not updated, or the backend reads a stale version",
            )
        for warning in _render_description(path.name, package):
            progress(f"twine check warning: {warning}")


_METADATA_HINT = "fix the project metadata in pyproject.toml and build again"


def project_name(root: Path) -> str:
    """The name declared in pyproject.toml ([project] or [tool.poetry])."""
    data = read_pyproject(root)
    for table in (data.get("project"), data.get("tool", {}).get("poetry")):
        if isinstance(table, dict) and isinstance(table.get("name"), str) and table["name"]:
            return str(table["name"])
    raise BuildError(
        f"{root / 'pyproject.toml'} declares no project name",
        hint='add name = "..." under [project]',
    )


def _build_both(
    make_builder: Callable[[Path], build.ProjectBuilder],
    root: Path,
    staging: Path,
    progress: Progress,
    install: Callable[[Sequence[str]], None] | None,
) -> tuple[Path, Path]:
    sdist = _build_one(make_builder(root), "sdist", staging, progress, install)
    source = _unpack_sdist(sdist, staging.parent / "source")
    wheel = _build_one(make_builder(source), "wheel", staging, progress, install)
    return sdist, wheel


def _build_one(
    builder: build.ProjectBuilder,
    kind: Literal["sdist", "wheel"],
    staging: Path,
    progress: Progress,
    install: Callable[[Sequence[str]], None] | None,
) -> Path:
    if install is not None:
        install(sorted(builder.build_system_requires))
        install(sorted(builder.get_requires_for_build(kind)))
    else:
        missing = sorted(" -> ".join(chain) for chain in builder.check_dependencies(kind))
        if missing:
            raise BuildError(
                f"the {kind} build needs packages missing from this environment: {', '.join(missing)}",
                hint="install them, or build with isolation (drop --no-isolation)",
            )
    progress(f"building {kind}" + (" from the sdist" if kind == "wheel" else ""))
    return Path(builder.build(kind, staging))


def _once(
    install: Callable[[Sequence[str]], None], progress: Progress
) -> Callable[[Sequence[str]], None]:
    """The wheel is built in the same environment as the sdist: install each requirement once."""
    done: set[str] = set()

    def install_new(requirements: Sequence[str]) -> None:
        new = [r for r in requirements if r not in done]
        if new:
            progress(f"installing build requirements: {', '.join(new)}")
            install(new)
            done.update(new)

    return install_new


def _move_into(path: Path, outdir: Path) -> Path:
    """Copy next to the target, then rename: the scratch directory may be on another filesystem."""
    target = outdir / path.name
    partial = outdir / f".{path.name}.part"
    shutil.copyfile(path, partial)
    partial.replace(target)
    return target


def _unpack_sdist(sdist: Path, into: Path) -> Path:
    """Extract the sdist and return its single top-level directory."""
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data")
    tops = [path for path in into.iterdir() if (path / "pyproject.toml").is_file()]
    if len(tops) != 1:
        raise BuildError(
            f"{sdist.name} has no single top-level directory with pyproject.toml",
            hint="the build backend must include pyproject.toml in the sdist",
        )
    return tops[0]


def _run_quietly(
    cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
) -> None:
    """Run a backend hook with its output captured: shown only when the hook fails."""
    env = {**os.environ, **(extra_environ or {})}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise subprocess.CalledProcessError(
            result.returncode, cmd, output=result.stdout, stderr=result.stderr
        )


def _backend_error(exc: build.BuildBackendException, isolation: bool) -> BuildError:
    cause = exc.exception
    detail = (
        _tail(cause)
        if isinstance(cause, subprocess.CalledProcessError)
        else str(getattr(cause, "traceback", "") or cause).strip()
    )
    hint = "fix the error above in the project or its build backend and build again"
    if not isolation and "is not available" in str(exc):
        hint = "install the build backend into this environment, or drop --no-isolation"
    return BuildError(f"the build backend failed: {exc}\n{detail}".rstrip(), hint=hint)


def _tail(error: subprocess.CalledProcessError) -> str:
    """The last lines a failing process wrote (stdout and stderr), for the error message."""
    parts = []
    for stream in (error.stdout, error.stderr):
        if stream:
            parts.append(stream.decode(errors="replace") if isinstance(stream, bytes) else stream)
    lines = "\n".join(parts).strip().splitlines()
    return "\n".join(lines[-_TAIL_LINES:])


def _render_description(filename: str, package: PackageFile) -> list[str]:
    """twine check's long_description rule: RST must render; returns twine's warnings."""
    metadata = package.metadata_dictionary()
    description = metadata.get("description")
    if not description or description.rstrip() == "UNKNOWN":
        return [f"{filename}: no long_description"]
    warnings = []
    content_type = metadata.get("description_content_type")
    if content_type is None:
        warnings.append(f"{filename}: no long_description_content_type, assuming text/x-rst")
        content_type = "text/x-rst"
    message = email.message.EmailMessage()
    message["content-type"] = content_type
    if message.get_content_type() not in ("text/plain", "text/markdown"):
        stream = io.StringIO()
        if readme_renderer.rst.render(description, stream=stream) is None:
            raise BuildError(
                f"the long_description of {filename} has RST errors and would not render:\n"
                + stream.getvalue().strip(),
                hint="fix the README (or set its content type to text/markdown)",
            )
    return warnings


def parse_distribution_filename(filename: str) -> tuple[str, Version] | None:
    """(normalized name, version) of a wheel or sdist filename; None for anything else."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return name, version
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _parse_version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise BuildError(
            f"{text!r} is not a PEP 440 version", hint="pass a version such as 1.2.0"
        ) from None
