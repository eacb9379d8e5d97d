"""The contract every storage backend passes: subclass `StorageContract`, provide `make_storage`.

Backend-neutral on purpose: only the `Storage` interface is used (no paths, no directory
listing), so the S3 backend runs these same cases unchanged. `make_storage` returns a new
handle on the *same* store each call (a second replica or process sees the same files).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from releasekit.server.storage import Storage, StoredFile

WHEEL = "alpha-1.0-py3-none-any.whl"
RACERS = 8


def _store(storage: Storage, filename: str, data: bytes) -> StoredFile | None:
    with storage.new_upload() as upload:
        for at in range(0, len(data), 1000):
            upload.write(data[at : at + 1000])
        return upload.create(filename)


def _read(storage: Storage, filename: str) -> bytes:
    return b"".join(storage.read_range(filename))


def _die_mid_upload(make_storage: Callable[[], Storage]) -> None:
    """A process killed while writing an upload (no abort, no cleanup)."""
    upload = make_storage().new_upload()
    upload.write(b"half of a wheel" * 1000)
    os._exit(0)


class StorageContract:
    """The cases; a backend's test module subclasses this and defines `make_storage`."""

    @pytest.fixture
    def make_storage(self) -> Callable[[], Storage]:
        raise NotImplementedError("a backend's test class provides make_storage")

    @pytest.fixture
    def storage(self, make_storage: Callable[[], Storage]) -> Storage:
        store = make_storage()
        store.prepare()
        return store

    # -- files -----------------------------------------------------------------------------
    def test_a_created_file_is_listed_stat_and_read_back(self, storage: Storage) -> None:
        data = os.urandom(300_000)
        stored = _store(storage, WHEEL, data)
        assert stored is not None and stored.size == len(data)
        assert storage.stat(WHEEL) == stored
        assert [f.filename for f in storage.scan()] == [WHEEL]
        assert _read(storage, WHEEL) == data
        with storage.open(WHEEL) as handle:
            handle.seek(1000)
            assert handle.read(10) == data[1000:1010]

    def test_ranges_are_exact_and_clipped_at_the_end(self, storage: Storage) -> None:
        data = os.urandom(700_000)  # more than one chunk
        _store(storage, WHEEL, data)
        assert b"".join(storage.read_range(WHEEL, 10, 20)) == data[10:30]
        assert b"".join(storage.read_range(WHEEL, 300_000)) == data[300_000:]
        assert b"".join(storage.read_range(WHEEL, len(data) - 5, 100)) == data[-5:]
        assert b"".join(storage.read_range(WHEEL, len(data) + 5, 10)) == b""
        assert b"".join(storage.read_range(WHEEL, 0, 0)) == b""

    def test_reading_a_missing_file_is_file_not_found(self, storage: Storage) -> None:
        assert storage.stat("missing-1.0.tar.gz") is None
        with pytest.raises(FileNotFoundError):
            storage.open("missing-1.0.tar.gz")
        with pytest.raises(FileNotFoundError):
            storage.read_range("missing-1.0.tar.gz")

    def test_names_never_reach_state_temp_files_or_other_places(self, storage: Storage) -> None:
        storage.write_state("catalogue.json", b"{}")
        with storage.new_upload() as upload:
            upload.write(b"live")
            for name in ("../x", ".releasekit", "a/b", "", ".hidden", "catalogue.json"):
                assert storage.stat(name) is None, name
                with pytest.raises(FileNotFoundError):
                    storage.open(name)
            assert storage.scan() == []

    def test_an_upload_is_invisible_until_created_and_readable_meanwhile(
        self, storage: Storage
    ) -> None:
        with storage.new_upload() as upload:
            upload.write(b"abc")
            upload.write(b"def")
            with upload.reader() as reader:
                assert reader.read() == b"abcdef"
            assert storage.scan() == [] and storage.stat(WHEEL) is None
            assert upload.create(WHEEL) is not None
        assert _read(storage, WHEEL) == b"abcdef"

    def test_an_aborted_upload_leaves_nothing(self, storage: Storage) -> None:
        with storage.new_upload() as upload:
            upload.write(b"x" * 5000)
        upload.abort()  # a second abort is harmless
        assert storage.scan() == []
        assert storage.collect_temp() == (0, 0)

    def test_create_keeps_the_requested_upload_time(self, storage: Storage) -> None:
        when = 1_600_000_000_123_456_000
        with storage.new_upload() as upload:
            upload.write(b"old")
            stored = upload.create(WHEEL, mtime_ns=when)
        assert stored is not None and stored.mtime_ns == when
        assert storage.stat(WHEEL) == stored

    # -- conditional create and overwrite ------------------------------------------------------
    def test_create_never_replaces_and_says_it_lost(self, storage: Storage) -> None:
        assert _store(storage, WHEEL, b"first") is not None
        assert _store(storage, WHEEL, b"second") is None
        assert _read(storage, WHEEL) == b"first"
        assert storage.scan()[0].size == 5

    def test_racing_creates_have_exactly_one_winner(
        self, make_storage: Callable[[], Storage]
    ) -> None:
        stores = [make_storage() for _ in range(RACERS)]  # as many replicas as racers
        stores[0].prepare()
        payloads = [bytes([n]) * (50_000 + n) for n in range(RACERS)]
        barrier = threading.Barrier(RACERS)

        def race(n: int) -> StoredFile | None:
            with stores[n].new_upload() as upload:
                upload.write(payloads[n])
                barrier.wait()
                return upload.create(WHEEL)

        with ThreadPoolExecutor(RACERS) as pool:
            results = list(pool.map(race, range(RACERS)))
        winners = [n for n, r in enumerate(results) if r is not None]
        assert len(winners) == 1
        won = results[winners[0]]
        assert won is not None and won.size == len(payloads[winners[0]])
        assert _read(stores[0], WHEEL) == payloads[winners[0]]
        assert stores[0].collect_temp()[0] == 0  # the losers' bytes are gone already

    def test_overwrites_under_the_lock_are_serialized(
        self, make_storage: Callable[[], Storage]
    ) -> None:
        """Check-then-replace under `lock`: every writer sees the previous writer's bytes."""
        stores = [make_storage() for _ in range(RACERS)]
        stores[0].prepare()
        _store(stores[0], WHEEL, b"0")
        seen: list[bytes] = []

        def bump(n: int) -> StoredFile:
            store = stores[n]
            with store.lock(WHEEL):
                current = _read(store, WHEEL)
                seen.append(current)
                with store.new_upload() as upload:
                    upload.write(str(int(current) + 1).encode())
                    return upload.replace(WHEEL)

        with ThreadPoolExecutor(RACERS) as pool:
            records = list(pool.map(bump, range(RACERS)))
        assert _read(stores[0], WHEEL) == str(RACERS).encode()  # no update was lost
        assert sorted(int(s) for s in seen) == list(range(RACERS))
        assert stores[0].stat(WHEEL) in records

    def test_an_open_reader_keeps_the_bytes_it_opened(self, storage: Storage) -> None:
        _store(storage, WHEEL, b"old bytes")
        with storage.open(WHEEL) as handle:
            with storage.new_upload() as upload:
                upload.write(b"new bytes!")
                replaced = upload.replace(WHEEL)
            assert handle.read() == b"old bytes"
        assert replaced.size == 10 and _read(storage, WHEEL) == b"new bytes!"

    def test_delete(self, storage: Storage) -> None:
        _store(storage, WHEEL, b"x")
        before = storage.stamp()
        assert storage.delete(WHEEL) is True
        assert storage.delete(WHEEL) is False
        assert storage.stat(WHEEL) is None and storage.scan() == []
        assert storage.stamp() != before

    def test_the_stamp_moves_when_files_change(self, storage: Storage) -> None:
        # Yanks and statuses travel in the change log (test_workers.py, test_s3_log.py).
        first = storage.stamp()
        _store(storage, WHEEL, b"x")
        assert storage.stamp() != first

    def test_stores_and_deletes_are_logged_in_order(self, storage: Storage) -> None:
        log = storage.changes()
        start = log.tail()
        _store(storage, WHEEL, b"x")
        storage.delete(WHEEL)
        entries, gaps = log.read_after(start)
        assert gaps == []
        assert [(e.change or {}).get("op") for e in entries] == ["put", "del"]
        assert [e.number for e in entries] == [start + 1, start + 2]

    def test_hashes_of_what_is_read_match_what_was_written(self, storage: Storage) -> None:
        data = os.urandom(1_000_003)
        _store(storage, WHEEL, data)
        digest = hashlib.sha256()
        for chunk in storage.read_range(WHEEL):
            digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()

    # -- state blobs ---------------------------------------------------------------------------
    def test_state_blobs_write_read_replace_delete(self, storage: Storage) -> None:
        assert storage.read_state("catalogue.json") is None
        storage.write_state("catalogue.json", b"one")
        storage.write_state("catalogue.json", b"two")
        assert storage.read_state("catalogue.json") == b"two"
        storage.write_state("metadata/a.whl.metadata", b"meta", durable=False)
        storage.write_state("catalogue.json", b"three")  # a durable write after a cache one
        assert storage.read_state("metadata/a.whl.metadata") == b"meta"
        storage.delete_state("catalogue.json")
        storage.delete_state("catalogue.json")  # absent: no error
        assert storage.read_state("catalogue.json") is None
        assert storage.scan() == []  # state is never a distribution file

    def test_clear_state_removes_one_prefix_only(self, storage: Storage) -> None:
        storage.write_state("simple/alpha/index.html", b"a", durable=False)
        storage.write_state("simple/index.html", b"r", durable=False)
        storage.write_state("metadata/x.metadata", b"m", durable=False)
        storage.clear_state("simple")
        storage.clear_state("nothing-here")
        assert storage.read_state("simple/alpha/index.html") is None
        assert storage.read_state("simple/index.html") is None
        assert storage.read_state("metadata/x.metadata") == b"m"

    def test_a_second_handle_sees_the_same_store(
        self, storage: Storage, make_storage: Callable[[], Storage]
    ) -> None:
        _store(storage, WHEEL, b"shared")
        storage.write_state("yanked.json", b"{}")
        other = make_storage()
        assert _read(other, WHEEL) == b"shared"
        assert other.read_state("yanked.json") == b"{}"

    # -- crashes, space, the store itself ------------------------------------------------------
    def test_a_dead_uploads_leftovers_are_collected_and_a_live_ones_are_not(
        self, storage: Storage, make_storage: Callable[[], Storage]
    ) -> None:
        child = multiprocessing.get_context("fork").Process(
            target=_die_mid_upload, args=(make_storage,)
        )
        child.start()
        child.join(60)
        assert child.exitcode == 0
        with storage.new_upload() as live:
            live.write(b"still writing")
            files, size = storage.collect_temp()
            assert files == 1 and size == len(b"half of a wheel" * 1000)
            assert storage.collect_temp() == (0, 0)  # the live one is untouched
            assert live.create(WHEEL) is not None
        assert _read(storage, WHEEL) == b"still writing"
        assert [f.filename for f in storage.scan()] == [WHEEL]

    def test_the_store_reports_itself(self, storage: Storage) -> None:
        assert storage.exists()
        assert storage.describe()
        assert storage.writable()
        free = storage.free_bytes()
        assert free is None or free > 0

    def test_a_local_path_when_offered_holds_the_bytes(self, storage: Storage) -> None:
        """Optional capability: a backend without local files answers None."""
        _store(storage, WHEEL, b"local")
        local = storage.local_path(WHEEL)
        if local is not None:
            with open(local, "rb") as handle:  # noqa: PTH123 - a str, not a Path, by design
                assert handle.read() == b"local"
