"""`bundle fetch`, `sign` and `verify`: every file once, hashes checked, resume, corruption caught."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from releasekit.bundle.fetch import fetch_bundle
from releasekit.bundle.manifest import SUMS, read_manifest, render_sums
from releasekit.bundle.plan import read_plan
from releasekit.bundle.sign import generate_key, sign_bundle
from releasekit.bundle.verify import verify_bundle
from releasekit.cli import cli
from releasekit.errors import BundleError
from tests.bundle.conftest import Built

pytestmark = pytest.mark.e2e
APP = "app-1.0-py3-none-any.whl"


@pytest.fixture
def bundle(built: Built, tmp_path: Path) -> Path:
    """A private copy of the module's signed bundle, free to damage."""
    return Path(shutil.copytree(built.bundle, tmp_path / "bundle"))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_bundle_carries_files_metadata_locks_times_yanks_and_sums(built: Built) -> None:
    manifest = read_manifest(built.bundle)
    assert len(manifest.files) == 9
    for name, record in manifest.files.items():
        assert (built.bundle / "files" / name).is_file()
        assert record.has_metadata and (built.bundle / "files" / f"{name}.metadata").is_file()
        assert record.upload_time is not None and record.upload_time.startswith("2023-11-14T")
        assert record.yanked is None
    lock = (built.bundle / "pylock.win_amd64-py313.toml").read_text()
    assert 'path = "files/winhelper-1.0-py3-none-win_amd64.whl"' in lock and "url =" not in lock
    sums = (built.bundle / SUMS).read_text()
    assert f"  files/{APP}\n" in sums and "  bundle.json\n" in sums
    report = verify_bundle(built.bundle, built.public)
    assert report.hashed == 22 and report.packages_checked == 16 and not report.unchecked


def test_verify_catches_a_flipped_byte(bundle: Path, built: Built) -> None:
    path = bundle / "files" / APP
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError) as caught:
        verify_bundle(bundle)
    assert f"files/{APP}: sha256 does not match SHA256SUMS" in caught.value.message


def test_verify_catches_a_missing_file(bundle: Path) -> None:
    (bundle / "files" / "srconly-0.5.tar.gz").unlink()
    with pytest.raises(BundleError) as caught:
        verify_bundle(bundle)
    assert "files/srconly-0.5.tar.gz is listed in SHA256SUMS but missing" in caught.value.message


def test_verify_catches_a_missing_dependency_even_with_consistent_sums(bundle: Path) -> None:
    """A lock without winhelper, re-summed so every hash agrees: only the closure check sees it."""
    lock = bundle / "pylock.win_amd64-py313.toml"
    text = lock.read_text()
    start = text.index('[[packages]]\nname = "winhelper"')
    end = text.index("[tool.releasekit]")
    lock.write_text(text[:start] + text[end:])
    names = [n for n in (bundle / SUMS).read_text().split("\n") if n]
    (bundle / SUMS).write_text(render_sums(bundle, [n.split("  ", 1)[1] for n in names]))
    with pytest.raises(BundleError) as caught:
        verify_bundle(bundle)
    message = caught.value.message
    assert "pylock.win_amd64-py313.toml" in message
    assert "app 1.0 requires 'winhelper; sys_platform == \"win32\"'" in message
    assert f"{APP}.metadata" in message and "the lock has no winhelper" in message


def test_verify_catches_a_wrong_key_and_a_changed_sums_file(
    bundle: Path, built: Built, tmp_path: Path
) -> None:
    other = generate_key(tmp_path / "other")
    with pytest.raises(BundleError) as caught:
        verify_bundle(bundle, other)
    assert (
        "SHA256SUMS.sig is not a valid signature of SHA256SUMS by this key" in caught.value.message
    )
    verify_bundle(bundle, built.public)
    (bundle / SUMS).write_text((bundle / SUMS).read_text() + "")
    extra = bundle / "files" / "evil-1.0-py3-none-any.whl"
    extra.write_bytes(b"x")
    with pytest.raises(
        BundleError, match=re.escape("evil-1.0-py3-none-any.whl is not listed in SHA256SUMS")
    ):
        verify_bundle(bundle, built.public)


def test_cli_verify_reports_the_file_and_exits_1(bundle: Path, built: Built) -> None:
    (bundle / "files" / APP).write_bytes(b"")
    result = CliRunner().invoke(cli, ["bundle", "verify", str(bundle), "--key", str(built.public)])
    assert result.exit_code == 1
    assert f"files/{APP}: sha256 does not match" in result.output


def test_an_interrupted_fetch_resumes_with_a_range_request(built: Built, tmp_path: Path) -> None:
    plan = read_plan(built.plan)
    out = tmp_path / "bundle"
    (out / "files").mkdir(parents=True)
    whole = (built.bundle / "files" / APP).read_bytes()
    (out / "files" / f"{APP}.part").write_bytes(whole[:300])  # what a dropped connection leaves
    shutil.copy(built.bundle / "files" / "srconly-0.5.tar.gz", out / "files")  # already done
    progress: list[tuple[str, bool]] = []
    fetch_bundle(plan, out, jobs=2, progress=lambda p: progress.append((p.filename, p.reused)))
    assert (out / "files" / APP).read_bytes() == whole
    assert not list(out.rglob("*.part"))
    assert ("srconly-0.5.tar.gz", True) in progress and (APP, False) in progress
    log = built.upstream.log.read_text()
    assert f'path="/packages/{APP}" status=206 bytes={len(whole) - 300}' in log
    verify_bundle(out)


def test_a_part_file_with_wrong_bytes_is_caught_and_dropped(built: Built, tmp_path: Path) -> None:
    plan = read_plan(built.plan)
    out = tmp_path / "bundle"
    (out / "files").mkdir(parents=True)
    (out / "files" / f"{APP}.part").write_bytes(b"garbage" * 20)
    with pytest.raises(BundleError) as caught:
        fetch_bundle(plan, out)
    assert (
        f"{APP}: sha256" in caught.value.message
        and "does not match the index's" in caught.value.message
    )
    assert not (out / SUMS).exists() and not (out / "files" / f"{APP}.part").exists()
    fetch_bundle(plan, out)  # the next run starts the file over and finishes
    verify_bundle(out)


def test_sign_refuses_an_unfinished_bundle_and_keygen_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "k"
    generate_key(key)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    before = key.read_bytes()
    with pytest.raises(BundleError, match=re.escape("already exists")):
        generate_key(key)
    assert key.read_bytes() == before
    (tmp_path / "b").mkdir()
    with pytest.raises(BundleError, match=re.escape("SHA256SUMS does not exist")):
        sign_bundle(tmp_path / "b", key)
    assert snapshot(tmp_path / "b") == {}


def test_verify_refuses_a_tampered_manifest(bundle: Path) -> None:
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["files"][APP]["yanked"] = "pretend"
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(
        BundleError, match=re.escape("bundle.json: sha256 does not match SHA256SUMS")
    ):
        verify_bundle(bundle)


def test_verify_refuses_symlinks_and_path_names_in_the_manifest(
    bundle: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s")
    target = bundle / "files" / APP
    target.unlink()
    target.symlink_to(secret)
    with pytest.raises(BundleError, match="is a symbolic link"):
        verify_bundle(bundle)
    target.unlink()
    target.write_bytes(b"")
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["tombstones"]["../../etc/passwd"] = "x"
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    names = [n.split("  ", 1)[1] for n in (bundle / SUMS).read_text().splitlines()]
    (bundle / SUMS).write_text(render_sums(bundle, names))
    with pytest.raises(BundleError, match="not a distribution file name"):
        verify_bundle(bundle)


def test_fetch_refuses_a_directory_that_is_not_a_bundle(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "home"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="is not a bundle directory"):
        fetch_bundle(read_plan(built.plan), out)
    assert snapshot(out) == {"notes.txt": b"mine"}
