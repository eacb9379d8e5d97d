"""Targets: parsing, wheel tags, marker environment and the uv platform, all without a network."""

from __future__ import annotations

import pytest
from packaging.tags import Tag

from releasekit.bundle.targets import parse_target
from releasekit.errors import BundleError


def test_manylinux_target_accepts_older_glibc_and_legacy_aliases_best_first() -> None:
    target = parse_target("manylinux_2_28_x86_64/3.11")
    platforms = target.platforms()
    assert platforms[0] == "manylinux_2_28_x86_64"
    assert "manylinux2014_x86_64" in platforms and "manylinux1_x86_64" in platforms
    assert "manylinux_2_31_x86_64" not in platforms
    tags = target.tags()
    assert tags[0] == Tag("cp311", "cp311", "manylinux_2_28_x86_64")
    assert Tag("py3", "none", "any") in tags
    assert Tag("cp312", "cp312", "manylinux_2_28_x86_64") not in tags
    assert target.uv_platform() == "x86_64-manylinux_2_28"
    assert target.slug == "manylinux_2_28_x86_64-py311"


def test_musllinux_and_windows_targets() -> None:
    musl = parse_target("musllinux_1_2_aarch64/3.12")
    assert musl.platforms() == [
        "musllinux_1_2_aarch64",
        "musllinux_1_1_aarch64",
        "musllinux_1_0_aarch64",
    ]
    assert musl.uv_platform() == "aarch64-unknown-linux-musl"
    assert musl.environment()["platform_machine"] == "aarch64"
    windows = parse_target("win_amd64/3.13")
    assert windows.environment()["sys_platform"] == "win32"
    assert windows.environment()["python_version"] == "3.13"
    assert windows.uv_platform() == "x86_64-pc-windows-msvc"
    assert Tag("cp313", "abi3", "win_amd64") in windows.tags()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("manylinux_2_28_x86_64", "PLATFORM/PYTHON"),
        ("linux/3.11", "PLATFORM/PYTHON"),
        ("win_amd64/2.7", "PLATFORM/PYTHON"),
        ("manylinux2014_x86_64/3.11", "PEP 600"),
    ],
)
def test_bad_targets_are_refused_with_examples(text: str, says: str) -> None:
    with pytest.raises(BundleError) as caught:
        parse_target(text)
    assert says in caught.value.message
    assert caught.value.hint is not None and "manylinux_2_28_x86_64/3.11" in caught.value.hint


def test_a_platform_uv_cannot_resolve_for_is_named() -> None:
    with pytest.raises(BundleError, match="uv cannot resolve for platform 'manylinux_2_28_s390x'"):
        parse_target("manylinux_2_28_s390x/3.11").uv_platform()
