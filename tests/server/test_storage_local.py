"""`LocalStorage` against the storage contract, plus what only a directory can show."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from releasekit.server.localstore import LocalStorage
from releasekit.server.storage import Storage
from tests.server.storage_contract import WHEEL, StorageContract


class TestLocalStorage(StorageContract):
    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> Callable[[], Storage]:
        root = tmp_path / "packages"
        root.mkdir()
        return lambda: LocalStorage(root)


def test_stored_files_are_world_readable_and_temp_files_private(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.prepare()
    with storage.new_upload() as upload:
        upload.write(b"x")
        (temp,) = tmp_path.glob(".releasekit-upload-*")
        assert stat.S_IMODE(temp.stat().st_mode) == 0o600
        upload.create(WHEEL)
    assert stat.S_IMODE((tmp_path / WHEEL).stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".releasekit-upload-*"))


def test_a_missing_directory_does_not_exist(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "nowhere")
    assert not storage.exists()
    assert str(tmp_path / "nowhere") in storage.describe()


def test_state_directories_are_traversable_whatever_the_umask(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    old = os.umask(0o077)
    try:
        storage.prepare()
        storage.write_state("simple/alpha/index.html", b"page", durable=False)
    finally:
        os.umask(old)
    for directory in (tmp_path / ".releasekit", tmp_path / ".releasekit/simple/alpha"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755, directory
