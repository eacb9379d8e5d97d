"""`make offline-bundle` / `make offline-import` from releasekit.mk, run for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from releasekit.bundle.manifest import read_manifest
from tests.bundle.conftest import REQUIREMENTS, TARGETS, Built

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
]
MK = Path(__file__).resolve().parents[2] / "mk" / "releasekit.mk"


def make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAKEFLAGS": ""}
    releasekit = Path(sys.executable).parent / "releasekit"
    return subprocess.run(
        ["make", "-f", str(MK), f"RELEASEKIT={releasekit}", *args],
        cwd=project, capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip


def test_make_targets_replace_the_seed_scripts(built: Built, tmp_path: Path) -> None:
    (tmp_path / "requirements-offline.txt").write_text("\n".join(REQUIREMENTS) + "\n# a comment\n")
    targets = " ".join(str(t) for t in TARGETS)
    built_run = make(tmp_path, "offline-bundle", f"BUNDLE_TARGETS={targets}",
                     f"BUNDLE_INDEX={built.upstream.simple}", f"BUNDLE_KEY={built.key}")  # fmt: skip
    assert built_run.returncode == 0, built_run.stdout + built_run.stderr
    bundle = tmp_path / ".releasekit-data" / "bundle"
    assert (bundle / "SHA256SUMS.sig").is_file() and bundle.with_suffix(".tar.gz").is_file()
    shutil.rmtree(bundle)  # the offline side gets the archive only
    packages = tmp_path / "offline"
    packages.mkdir()
    imported = make(tmp_path, "offline-import", f"BUNDLE_PUBKEY={built.public}",
                    f"BUNDLE_PACKAGES_DIR={packages}")  # fmt: skip
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert len(read_manifest(bundle).files) == 9
    assert "9 added, 0 already present" in imported.stdout
    again = make(tmp_path, "offline-import", f"BUNDLE_PACKAGES_DIR={packages}")
    assert "0 added, 9 already present" in again.stdout
