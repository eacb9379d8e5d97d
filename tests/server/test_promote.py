"""Promotion between indexes on the stores themselves: exact bytes, upload time, sidecar,
provenance and yank kept; every refusal names the reason and changes nothing in either store."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from releasekit.server.indexes import IndexConfig, create_index
from releasekit.server.localstore import LocalStorage
from releasekit.server.maintenance import reindex, set_project_status, set_yanked
from releasekit.server.metadata import parse_filename, read_metadata
from releasekit.server.process import make_storage
from releasekit.server.promote import (
    PromoteRefused,
    PromoteStep,
    Promotion,
    promote,
    promote_between,
)
from releasekit.server.s3 import S3Settings
from releasekit.server.s3store import S3Storage
from releasekit.server.settings import Settings, load_settings
from releasekit.server.status import ProjectStatus
from releasekit.server.storage import Storage, Upload
from tests.server.conftest import make_sdist, make_wheel, snapshot
from tests.server.moto_s3 import MotoS3

UPLOADED_NS = 1_700_000_000_123_456_789
WHEEL = "alpha-1.0-py3-none-any.whl"
SDIST = "alpha-1.0.tar.gz"


@dataclass(frozen=True)
class Indexes:
    """A packages directory with the indexes staging and prod (alpha 1.0 in staging)."""

    packages: Path
    settings: Settings
    dists: Path

    def store(self, name: str) -> Storage:
        store: Storage = make_storage(self.settings, name)
        return store

    def directory(self, name: str) -> Path:
        return self.packages if name == "root" else self.packages / ".indexes" / name

    def put(self, index: str, path: Path, mtime_ns: int = UPLOADED_NS) -> None:
        target = self.directory(index) / path.name
        target.write_bytes(path.read_bytes())
        os.utime(target, ns=(mtime_ns, mtime_ns))

    def promote(self, source: str = "staging", target: str = "prod", **options: Any) -> Promotion:
        return promote_between(
            self.store("root"), self.store, "alpha", "1.0", source, target, **options
        )


@pytest.fixture
def indexes(tmp_path: Path) -> Indexes:
    packages = tmp_path / "packages"
    packages.mkdir()
    settings = load_settings({"packages_dir": packages}, env={})
    root = make_storage(settings)
    root.prepare()
    for name in ("staging", "prod"):
        create_index(root, IndexConfig(name))
        make_storage(settings, name).prepare()
    dists = tmp_path / "dists"
    dists.mkdir()
    made = Indexes(packages, settings, dists)
    made.put("staging", make_wheel(dists, "alpha", "1.0"))
    made.put("staging", make_sdist(dists, "alpha", "1.0"))
    reindex(made.store("staging"))  # as a served index: catalogue and pages
    return made


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_exact_files_move_with_upload_time_sidecars_and_provenance(indexes: Indexes) -> None:
    staging, prod = indexes.directory("staging"), indexes.directory("prod")
    provenance = json.dumps({"sha256": _sha256(staging / WHEEL), "provenance": {"version": 1}})
    staging_store = indexes.store("staging")
    staging_store.write_state(f"provenance/{WHEEL}.json", provenance.encode())
    staging_store.write_state(
        "provenance/index.json", json.dumps({WHEEL: _sha256(staging / WHEEL)}).encode()
    )
    steps: list[PromoteStep] = []

    promotion = indexes.promote(progress=steps.append)

    assert [(f.filename, f.action) for f in promotion.files] == [
        (WHEEL, "copied"),
        (SDIST, "copied"),
    ]
    assert [(s.done, s.total) for s in steps] == [(1, 2), (2, 2)]
    for name in (WHEEL, SDIST):
        assert (prod / name).read_bytes() == (staging / name).read_bytes()
        assert (prod / name).stat().st_mtime_ns == UPLOADED_NS
        assert {f.filename: f.sha256 for f in promotion.files}[name] == _sha256(staging / name)
        # The source writes its own sidecar at its first request: compare with its METADATA.
        metadata = read_metadata(staging / name, parse_filename(name)).raw
        assert (prod / f".releasekit/metadata/{name}.metadata").read_bytes() == metadata
    assert (prod / f".releasekit/provenance/{WHEEL}.json").read_text() == provenance
    index = json.loads((prod / ".releasekit/provenance/index.json").read_text())
    assert index == {WHEEL: _sha256(staging / WHEEL)}
    assert not (prod / f".releasekit/provenance/{SDIST}.json").exists()

    before = snapshot(indexes.packages)
    again = indexes.promote()
    assert [f.action for f in again.files] == ["present", "present"]
    assert [f.sha256 for f in again.files] == [f.sha256 for f in promotion.files]
    assert snapshot(indexes.packages) == before


def test_yanked_files_only_with_include_yanked_and_then_yanked_alike(indexes: Indexes) -> None:
    set_yanked(indexes.store("staging"), "alpha", "1.0", "broken on 3.13")
    _refused(
        indexes,
        409,
        f"{WHEEL}, {SDIST} are yanked on the source index",
        "pass --include-yanked",
    )

    indexes.promote(include_yanked=True)

    yanked = json.loads((indexes.directory("prod") / ".releasekit/yanked.json").read_text())
    assert yanked == {WHEEL: "broken on 3.13", SDIST: "broken on 3.13"}


def test_other_bytes_under_the_same_name_refuse_the_whole_release(indexes: Indexes) -> None:
    other = indexes.dists / "other"
    other.mkdir()
    indexes.put("prod", make_sdist(other, "alpha", "1.0", requires_python=">=3.12"))
    theirs = _sha256(other / SDIST)

    body = _refused(indexes, 409, f"{SDIST} (target {theirs}, source ", "nothing was promoted")

    assert body.code == "file-exists"
    assert not (indexes.directory("prod") / WHEEL).exists()


def _refused(indexes: Indexes, status: int, *messages: str, **options: Any) -> PromoteRefused:
    """Promote; check the refusal's status and words, and that no store changed."""
    before = snapshot(indexes.packages)
    with pytest.raises(PromoteRefused) as refusal:
        call: Callable[[], Promotion] = options.pop("call", None) or (
            lambda: indexes.promote(**options)
        )
        call()
    assert refusal.value.status == status, refusal.value
    for message in messages:
        assert message in str(refusal.value), refusal.value
    assert snapshot(indexes.packages) == before
    return refusal.value


@pytest.mark.parametrize(
    ("source", "target", "status", "message"),
    [
        ("staging", "staging", 400, "cannot promote index 'staging' into itself"),
        ("staging", "qa", 404, "there is no index 'qa'"),
        ("nightly", "prod", 404, "known indexes: root, prod, staging"),
        ("..", "prod", 400, "'..' cannot name an index"),
        ("staging", "../prod", 400, "'../prod' cannot name an index"),
        ("staging", "Prod", 400, "'Prod' cannot name an index"),
    ],
)
def test_index_names_are_checked_first(
    indexes: Indexes, source: str, target: str, status: int, message: str
) -> None:
    _refused(indexes, status, message, source=source, target=target)


def test_a_version_without_files_names_the_versions_there(indexes: Indexes) -> None:
    root = indexes.store("root")
    missing = _refused(
        indexes,
        404,
        "alpha 9.9 has no files on the source index",
        "versions of alpha there: 1.0",
        call=lambda: promote_between(root, indexes.store, "alpha", "9.9", "staging", "prod"),
    )
    assert missing.code == "not-found"
    _refused(
        indexes,
        404,
        "nothing 1.0 has no files on the source index",
        "versions of nothing there: none",
        call=lambda: promote_between(root, indexes.store, "nothing", "1.0", "staging", "prod"),
    )
    _refused(
        indexes,
        400,
        "'1.0/../x' is not a valid PEP 440 version",
        call=lambda: promote_between(root, indexes.store, "alpha", "1.0/../x", "staging", "prod"),
    )


def test_quarantined_source_and_archived_target_refuse(indexes: Indexes) -> None:
    set_project_status(indexes.store("staging"), "alpha", ProjectStatus("quarantined", "cve"))
    _refused(indexes, 403, "project 'alpha' is quarantined on the source index")
    set_project_status(indexes.store("staging"), "alpha", ProjectStatus("active"))

    indexes.put("prod", make_wheel(indexes.dists, "alpha", "0.9"))
    set_project_status(indexes.store("prod"), "alpha", ProjectStatus("archived"))
    refusal = _refused(indexes, 403, "project 'alpha' is archived on the target index")
    assert refusal.code == "project-archived"


class _FullAfterOne(LocalStorage):
    """A real directory store whose disk is full for the sdist (ENOSPC at its commit)."""

    def new_upload(self) -> Upload:
        upload = super().new_upload()
        create = upload.create

        def full(
            filename: str,
            *,
            mtime_ns: int | None = None,
            note: Mapping[str, object] | None = None,
        ) -> Any:
            if filename == SDIST:
                raise OSError(errno.ENOSPC, "No space left on device")
            return create(filename, mtime_ns=mtime_ns, note=note)

        upload.create = full  # type: ignore[method-assign]
        return upload


def test_a_failure_half_way_says_what_is_in_the_target_and_a_rerun_finishes(
    indexes: Indexes,
) -> None:
    prod = indexes.directory("prod")
    with pytest.raises(PromoteRefused) as refusal:
        promote(indexes.store("staging"), _FullAfterOne(prod), "alpha", "1.0")
    assert refusal.value.status == 507
    assert refusal.value.in_target == (WHEEL,)
    assert (
        f"the target index is full: {SDIST} was not stored; stopped half-way: in the target: "
        f"{WHEEL}; not promoted: {SDIST}"
    ) in str(refusal.value)
    assert "run the same promotion again to finish it" in str(refusal.value)
    assert sorted(p.name for p in prod.iterdir()) == [".releasekit", WHEEL]  # no temp file

    finished = indexes.promote()
    assert [(f.filename, f.action) for f in finished.files] == [
        (WHEEL, "present"),
        (SDIST, "copied"),
    ]


def test_between_two_s3_stores(moto_s3: MotoS3, indexes: Indexes, tmp_path: Path) -> None:
    bucket = moto_s3.create_bucket()

    def store(prefix: str) -> S3Storage:
        settings = S3Settings(
            bucket=bucket,
            prefix=prefix,
            endpoint=moto_s3.endpoint,
            access_key_id="testing",
            secret_access_key="testing",
        )
        made = S3Storage(settings, spool=tmp_path / f"spool-{prefix.replace('/', '-')}")
        made.prepare()
        return made

    staging, prod = store("indexes/staging"), store("indexes/prod")
    for name in (WHEEL, SDIST):
        with staging.new_upload() as upload:
            upload.write((indexes.dists / name).read_bytes())
            assert upload.create(name, mtime_ns=UPLOADED_NS) is not None

    promotion = promote(staging, prod, "Alpha", "1.0")

    assert [f.action for f in promotion.files] == ["copied", "copied"]
    for name in (WHEEL, SDIST):
        assert b"".join(prod.read_range(name)) == (indexes.dists / name).read_bytes()
        stored = prod.stat(name)
        assert stored is not None and stored.mtime_ns == UPLOADED_NS
    assert [f.action for f in promote(staging, prod, "alpha", "1.0").files] == ["present"] * 2
