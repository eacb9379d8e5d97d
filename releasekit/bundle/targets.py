"""Install targets (`PLATFORM/PYTHON`): their wheel tags, marker environment and uv platform.

A target is what the offline machine runs, not the machine that plans: every decision about
files and markers is made from these values, never from the running interpreter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging import tags

from releasekit.errors import BundleError

_PYTHON = re.compile(r"^3\.(\d{1,2})$")
_MANYLINUX = re.compile(r"^manylinux_2_(\d+)_(x86_64|aarch64|i686|ppc64le|s390x)$")
_LEGACY_MANYLINUX = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
_MUSLLINUX = re.compile(r"^musllinux_1_(\d+)_(x86_64|aarch64|i686|ppc64le|s390x|armv7l)$")
_MACOS = re.compile(r"^macosx_(\d+)_(\d+)_(x86_64|arm64|universal2)$")
_WINDOWS = {
    "win_amd64": ("AMD64", "x86_64"),
    "win_arm64": ("ARM64", "aarch64"),
    "win32": ("x86", "i686"),
}
# The glibc levels uv 0.13 accepts in `--python-platform <arch>-manylinux_2_<n>`.
_UV_GLIBC = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
EXAMPLES = "manylinux_2_28_x86_64/3.11, musllinux_1_2_aarch64/3.12, win_amd64/3.13"


@dataclass(frozen=True)
class Target:
    """One platform tag and one CPython minor version, e.g. `manylinux_2_28_x86_64/3.11`."""

    platform: str
    python: str

    @property
    def slug(self) -> str:
        """A file-name-safe name without dots (PEP 751 lock names): `manylinux_2_28_x86_64-py311`."""
        return f"{self.platform}-py{self.python.replace('.', '')}"

    def __str__(self) -> str:
        return f"{self.platform}/{self.python}"

    @property
    def minor(self) -> int:
        return int(self.python.split(".")[1])

    def platforms(self) -> list[str]:
        """Platform tags this target installs, most specific first (as pip would order them)."""
        if match := _MANYLINUX.match(self.platform):
            level, arch = int(match.group(1)), match.group(2)
            found = []
            for glibc in range(level, 4, -1):
                found.append(f"manylinux_2_{glibc}_{arch}")
                for legacy, legacy_glibc in _LEGACY_MANYLINUX.items():
                    if glibc == legacy_glibc and (
                        legacy == "manylinux2014" or arch in ("x86_64", "i686")
                    ):
                        found.append(f"{legacy}_{arch}")
            return found
        if match := _MUSLLINUX.match(self.platform):
            level, arch = int(match.group(1)), match.group(2)
            return [f"musllinux_1_{minor}_{arch}" for minor in range(level, -1, -1)]
        if match := _MACOS.match(self.platform):
            version = (int(match.group(1)), int(match.group(2)))
            return list(tags.mac_platforms(version, match.group(3)))
        return [self.platform]

    def tags(self) -> list[tags.Tag]:
        """Every wheel tag this target accepts, best first."""
        version = (3, self.minor)
        interpreter = f"cp3{self.minor}"
        platforms = self.platforms()
        found = list(tags.cpython_tags(version, [interpreter], platforms))
        found += list(tags.compatible_tags(version, interpreter, platforms))
        return found

    def environment(self) -> dict[str, str]:
        """PEP 508 marker values of the target (CPython), for evaluating Requires-Dist."""
        if self.platform in _WINDOWS:
            system, sys_platform, os_name = "Windows", "win32", "nt"
            machine = _WINDOWS[self.platform][0]
        elif self.platform.startswith("macosx_"):
            system, sys_platform, os_name = "Darwin", "darwin", "posix"
            machine = self.platform.rsplit("_", 1)[1]
        else:
            system, sys_platform, os_name = "Linux", "linux", "posix"
            machine = _arch(self.platform)
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": os_name,
            "platform_machine": machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": f"{self.python}.0",
            "python_version": self.python,
            "sys_platform": sys_platform,
        }

    def uv_platform(self) -> str:
        """The `uv pip compile --python-platform` value for this target."""
        if match := _MANYLINUX.match(self.platform):
            level, arch = int(match.group(1)), match.group(2)
            usable = [g for g in _UV_GLIBC if g <= level]
            if arch in ("x86_64", "aarch64") and usable:
                return f"{arch}-manylinux_2_{usable[-1]}"
        elif match := _MUSLLINUX.match(self.platform):
            if match.group(2) in ("x86_64", "aarch64"):
                return f"{match.group(2)}-unknown-linux-musl"
        elif self.platform in _WINDOWS:
            return f"{_WINDOWS[self.platform][1]}-pc-windows-msvc"
        elif match := _MACOS.match(self.platform):
            return "aarch64-apple-darwin" if match.group(3) == "arm64" else "x86_64-apple-darwin"
        raise BundleError(
            f"target {self}: uv cannot resolve for platform {self.platform!r}",
            hint=f"use a manylinux_2_17+ / musllinux_1_x (x86_64, aarch64), win or macosx target, e.g. {EXAMPLES}",
        )


def _arch(platform: str) -> str:
    for arch in ("x86_64", "aarch64", "i686", "ppc64le", "s390x", "armv7l"):
        if platform.endswith(arch):
            return arch
    return ""


def parse_target(text: str) -> Target:
    """Parse `PLATFORM/PYTHON`; a bad value is a BundleError that shows valid examples."""
    platform, sep, python = text.strip().partition("/")
    known = (
        _MANYLINUX.match(platform)
        or _MUSLLINUX.match(platform)
        or _MACOS.match(platform)
        or platform in _WINDOWS
    )
    if platform in _LEGACY_MANYLINUX or any(
        platform.startswith(f"{p}_") for p in _LEGACY_MANYLINUX
    ):
        raise BundleError(
            f"target {text!r}: use the PEP 600 name (manylinux2014_x86_64 is manylinux_2_17_x86_64)",
            hint=f"examples: {EXAMPLES}",
        )
    if not sep or not known or not _PYTHON.match(python):
        raise BundleError(
            f"target {text!r} is not PLATFORM/PYTHON with a known wheel platform and a 3.x version",
            hint=f"examples: {EXAMPLES}",
        )
    return Target(platform, python)
