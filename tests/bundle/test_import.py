"""`bundle import`: verify first, idempotent, upload times and yanks kept, deltas, both ways in."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from releasekit.bundle.fetch import fetch_bundle
from releasekit.bundle.importer import import_over_api, import_to_directory
from releasekit.bundle.manifest import read_manifest
from releasekit.bundle.plan import plan_bundle
from releasekit.cli import cli
from releasekit.errors import BundleError
from releasekit.server.localstore import LocalStorage
from releasekit.server.maintenance import set_yanked
from tests.bundle.conftest import (
    BASE_TIME,
    REQUIREMENTS,
    TARGETS,
    Built,
    Index,
    add_wheel,
    fill_upstream,
    wait_for,
)
from tests.server.conftest import Users

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def offline(tmp_path: Path) -> Path:
    path = tmp_path / "offline"
    path.mkdir()
    return path


def test_import_keeps_upload_times_serves_locks_and_is_idempotent(
    built: Built, offline: Path
) -> None:
    dry = import_to_directory(built.bundle, offline, key=built.public, dry_run=True)
    assert len(dry.add) == 9 and snapshot(offline) == {}
    done = import_to_directory(built.bundle, offline, key=built.public)
    assert done.add == dry.add
    manifest = read_manifest(built.bundle)
    for name in done.add:
        upstream = (built.upstream.packages / name).stat().st_mtime
        assert (offline / name).stat().st_mtime == upstream  # the index's upload time
        assert oct((offline / name).stat().st_mode & 0o777) == "0o644"
        assert manifest.files[name].sha256
    served = offline / ".releasekit" / "bundles" / "latest" / "win_amd64-py313.txt"
    assert "winhelper==1.0 --hash=sha256:" in served.read_text()
    before = snapshot(offline)
    again = import_to_directory(built.bundle, offline)
    assert again.add == () and len(again.present) == 9
    assert snapshot(offline) == before


def test_a_damaged_bundle_or_a_name_clash_imports_nothing(
    built: Built, offline: Path, tmp_path: Path
) -> None:
    bundle = Path(shutil.copytree(built.bundle, tmp_path / "b"))
    (bundle / "files" / "oldlib-1.0-py3-none-any.whl").write_bytes(b"tampered")
    with pytest.raises(
        BundleError, match=re.escape("oldlib-1.0-py3-none-any.whl: sha256 does not match")
    ):
        import_to_directory(bundle, offline)
    assert snapshot(offline) == {}
    add_wheel(offline, "oldlib", "1.0", "py3-none-any", ("other",))  # same name, other bytes
    before = snapshot(offline)
    with pytest.raises(BundleError) as caught:
        import_to_directory(built.bundle, offline)
    assert (
        "oldlib-1.0-py3-none-any.whl: the index already has a different file"
        in caught.value.message
    )
    assert snapshot(offline) == before


def run(*command: str | Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    env = {**env, "PIP_CONFIG_FILE": os.devnull, "UV_NO_CONFIG": "1", "HOME": str(home),
           "UV_CACHE_DIR": str(home / "uv-cache"), "PIP_NO_CACHE_DIR": "1"}  # fmt: skip
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, env=env, check=False
    )


def installed_tag(directory: Path, module: str) -> str:
    text = (directory / module / "__init__.py").read_text()
    return text.split("TAG = ")[1].strip().strip('"')


def test_targets_install_from_the_imported_index_with_pip_and_uv(
    built: Built, offline: Path, tmp_path: Path, start_index: Callable[..., Index]
) -> None:
    import_to_directory(built.bundle, offline)
    index = start_index(offline, "-a", ".")
    expected = {
        "manylinux": "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "musllinux": "cp312-cp312-musllinux_1_2_aarch64",
        "win": "cp313-cp313-win_amd64",
    }
    for target in TARGETS:
        kind = target.platform.split("_")[0]
        pip_dir, uv_dir = tmp_path / f"pip-{kind}", tmp_path / f"uv-{kind}"
        lock_url = f"{index.url}/bundles/latest/{target.slug}.txt"
        # pip neither expands --platform to older manylinux tags nor evaluates markers for the
        # target (it would drop winhelper): it installs the served lock, which is the closure.
        platforms = [a for p in target.platforms() for a in ("--platform", p)]
        pip = run(BIN / "pip", "install", "--only-binary", ":all:", "--no-binary", "srconly",
                  "--no-deps", *platforms, "--python-version", target.python, "--target", pip_dir,
                  "-i", index.simple, "-r", lock_url, home=tmp_path)  # fmt: skip
        assert pip.returncode == 0, pip.stderr
        assert installed_tag(pip_dir, "fastcore") == expected[kind]
        uv = run(BIN / "uv", "pip", "install", "--python-platform", target.uv_platform(),
                 "--python-version", target.python, "--target", uv_dir, "--default-index",
                 index.simple, "-r", lock_url, home=tmp_path)  # fmt: skip
        assert uv.returncode == 0, uv.stderr
        assert installed_tag(uv_dir, "fastcore") == expected[kind]
        assert (uv_dir / "srconly").is_dir()  # the sdist, built offline by its in-tree backend
        assert (uv_dir / "winhelper").is_dir() == (kind == "win")
        assert (pip_dir / "winhelper").is_dir() == (kind == "win")


def test_bundle_pylock_installs_with_no_index(built: Built, tmp_path: Path) -> None:
    """The bundle's own locks (`path` entries): uv for any target, pip for this machine's."""
    windows = TARGETS[2]
    uv = run(BIN / "uv", "pip", "install", "--offline", "--python-platform", windows.uv_platform(),
             "--python-version", windows.python, "--target", tmp_path / "w",
             "-r", built.bundle / f"pylock.{windows.slug}.toml", home=tmp_path)  # fmt: skip
    assert uv.returncode == 0, uv.stderr
    assert installed_tag(tmp_path / "w", "fastcore") == "cp313-cp313-win_amd64"
    native = TARGETS[0]  # pip refuses --platform with a pylock; this machine is manylinux 3.11
    pip = run(BIN / "pip", "install", "--no-index", "--target", tmp_path / "n",
              "-r", built.bundle / f"pylock.{native.slug}.toml", home=tmp_path)  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    assert installed_tag(tmp_path / "n", "purefall") == "cp311-cp311-manylinux_2_28_x86_64"


def test_delta_carries_only_new_files_and_tombstones_and_needs_its_parent(
    tmp_path: Path, start_index: Callable[..., Index], offline: Path
) -> None:
    packages = tmp_path / "upstream"
    packages.mkdir()
    fill_upstream(packages)
    upstream = start_index(packages, "-a", ".")
    base_plan = plan_bundle(REQUIREMENTS, TARGETS, upstream.simple)
    base = fetch_bundle(base_plan, tmp_path / "base")
    set_yanked(LocalStorage(packages), "oldlib", "1.0", "CVE-2026-0001")
    add_wheel(packages, "oldlib", "1.1", "py3-none-any", when=7200)
    wait_for(lambda: "1.1" in upstream.page("oldlib")["versions"])
    result = CliRunner().invoke(cli, ["bundle", "plan", *REQUIREMENTS, "--index", upstream.simple,
        *[a for t in TARGETS for a in ("--target", str(t))], "--since", str(tmp_path / "base"),
        "-o", str(tmp_path / "delta-plan")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 files to fetch, 1 tombstones" in result.output
    result = CliRunner().invoke(
        cli, ["bundle", "fetch", str(tmp_path / "delta-plan"), "-o", str(tmp_path / "delta")]
    )
    assert result.exit_code == 0, result.output
    delta = read_manifest(tmp_path / "delta")
    assert list(delta.files) == ["oldlib-1.1-py3-none-any.whl"] and delta.parent == base.bundle_id
    assert delta.tombstones == (("oldlib-1.0-py3-none-any.whl", "CVE-2026-0001"),)

    refused = CliRunner().invoke(
        cli, ["bundle", "import", str(tmp_path / "delta"), "--packages-dir", str(offline)]
    )
    assert refused.exit_code == 1
    assert f"is a delta on bundle {base.bundle_id}, which was not imported here" in refused.output
    assert snapshot(offline) == {}

    import_to_directory(tmp_path / "base", offline)
    result = CliRunner().invoke(
        cli, ["bundle", "import", str(tmp_path / "delta"), "--packages-dir", str(offline)]
    )
    assert result.exit_code == 0, result.output
    assert "did add oldlib-1.1-py3-none-any.whl" in result.output
    assert "did yank oldlib-1.0-py3-none-any.whl (CVE-2026-0001)" in result.output
    assert (offline / "oldlib-1.1-py3-none-any.whl").stat().st_mtime == BASE_TIME + 7200
    index = start_index(offline, "-a", ".")
    files = {f["filename"]: f for f in index.page("oldlib")["files"]}
    assert files["oldlib-1.0-py3-none-any.whl"]["yanked"] == "CVE-2026-0001"
    assert files["oldlib-1.1-py3-none-any.whl"]["upload-time"].startswith("2023-11-15T00:13:20")
    served = requests.get(f"{index.url}/bundles/latest/win_amd64-py313.txt", timeout=10).text
    assert "oldlib==1.1" in served

    # a file the delta only inherits (from the base) is yanked upstream: the next delta says so
    add_wheel(packages, "purefall", "1.1", "py3-none-any", when=9000)
    set_yanked(LocalStorage(packages), "purefall", "1.0", "broken")
    wait_for(lambda: len(upstream.page("purefall")["files"]) == 3)
    wait_for(lambda: sum(bool(f["yanked"]) for f in upstream.page("purefall")["files"]) == 2)
    second = plan_bundle(REQUIREMENTS, TARGETS, upstream.simple, since=tmp_path / "delta")
    assert ("purefall-1.0-py3-none-any.whl", "broken") in second.tombstones
    assert ("oldlib-1.0-py3-none-any.whl", "CVE-2026-0001") not in second.tombstones


def test_import_over_the_upload_api_needs_credentials_and_is_idempotent(
    built: Built, offline: Path, users: Users, start_index: Callable[..., Index]
) -> None:
    index = start_index(offline, "-P", str(users.passwords), "-a", "update")
    with pytest.raises(BundleError) as caught:
        import_over_api(built.bundle, index.url, auth=None)
    assert "401" in caught.value.message and caught.value.hint and "--user" in caught.value.hint
    assert not [p for p in offline.iterdir() if not p.name.startswith(".")]
    plan = import_over_api(built.bundle, index.url, auth=users.credentials["ci"], key=built.public)
    assert len(plan.add) == 9
    again = import_over_api(built.bundle, index.url, auth=users.credentials["ci"])
    assert again.add == () and len(again.present) == 9
