"""The registry of named indexes: names, bases, cycles, and refusals that change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasekit.errors import IndexServerError
from releasekit.server.indexes import (
    REGISTRY_NAME,
    IndexConfig,
    create_index,
    parse_registry,
    read_registry,
    remove_index,
    resolution_order,
    update_index,
)
from releasekit.server.localstore import LocalStorage
from releasekit.server.process import make_storage
from releasekit.server.settings import load_settings


@pytest.fixture
def root(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path)
    storage.prepare()
    return storage


def test_create_list_remove_round_trip(root: LocalStorage) -> None:
    create_index(root, IndexConfig("prod"))
    staging = create_index(
        root, IndexConfig("staging", bases=("prod",), acl={"ci": frozenset({"upload"})})
    )
    assert staging.created.endswith("Z")
    configs = read_registry(root)
    assert sorted(configs) == ["prod", "staging"]
    assert configs["staging"].acl == {"ci": frozenset({"upload"})}
    assert resolution_order("staging", configs) == ["staging", "prod"]
    remove_index(root, "staging")
    assert sorted(read_registry(root)) == ["prod"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (IndexConfig("Prod"), "cannot name an index"),
        (IndexConfig("../x"), "cannot name an index"),
        (IndexConfig("simple"), "is reserved"),
        (IndexConfig("root"), "always exists"),
        (IndexConfig("prod"), "exists already"),
        (IndexConfig("qa", bases=("nowhere",)), "does not exist"),
    ],
)
def test_refused_creates_change_nothing(
    root: LocalStorage, config: IndexConfig, message: str
) -> None:
    create_index(root, IndexConfig("prod"))
    before = root.read_state(REGISTRY_NAME)
    with pytest.raises(IndexServerError, match=message):
        create_index(root, config)
    assert root.read_state(REGISTRY_NAME) == before


def test_a_base_cannot_be_removed_and_cycles_are_refused(root: LocalStorage) -> None:
    create_index(root, IndexConfig("prod"))
    create_index(root, IndexConfig("staging", bases=("prod",)))
    before = root.read_state(REGISTRY_NAME)
    with pytest.raises(IndexServerError, match="is a base of staging"):
        remove_index(root, "prod")
    with pytest.raises(IndexServerError, match="inherit in a circle: prod -> staging -> prod"):
        update_index(root, IndexConfig("prod", bases=("staging",)))
    with pytest.raises(IndexServerError, match="there is no index 'qa'"):
        remove_index(root, "qa")
    assert root.read_state(REGISTRY_NAME) == before


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"{", "is not JSON"),
        (b'{"indexes": {}}', "has no `indexes` list"),
        (b'{"indexes": [{"name": "a"}, {"name": "a"}]}', "names 'a' twice"),
        (b'{"indexes": [{"name": "a", "acl": {"bob": ["delete"]}}]}', "unknown actions"),
        (b'{"indexes": [{"name": "a", "bases": "b"}]}', "must be a list"),
    ],
)
def test_a_broken_registry_is_named(blob: bytes, message: str) -> None:
    with pytest.raises(IndexServerError, match=message):
        parse_registry(blob)


def test_each_named_index_has_its_own_store(tmp_path: Path) -> None:
    settings = load_settings({"packages_dir": str(tmp_path)}, env={})
    staging = make_storage(settings, "staging")
    assert staging.describe() == f"directory {tmp_path / '.indexes' / 'staging'}"
    assert make_storage(settings, "root").describe() == f"directory {tmp_path}"
    with pytest.raises(IndexServerError, match="cannot name an index"):
        make_storage(settings, "../etc")


def test_index_commands(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from releasekit.cli import cli

    runner = CliRunner()
    packages = str(tmp_path)

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["server", "index", *args, "-D", packages])
        return result.exit_code, result.output

    assert run("create", "prod") == (0, "created index prod: /prod/simple/\n")
    code, out = run("create", "staging", "--base", "prod", "--description", "CI builds")
    assert (code, out) == (0, "created index staging, inherits prod: /staging/simple/\n")
    assert (tmp_path / ".indexes" / "staging" / ".releasekit").is_dir()
    code, out = run("list")
    assert out.splitlines() == [
        "root\t(default: /simple/)\tacl=-",
        "prod\tbases=-\tacl=-",
        "staging\tbases=prod\tacl=-\tCI builds",
    ]
    (tmp_path / ".indexes" / "staging" / "demo-1.0.tar.gz").write_bytes(b"x")
    before = (tmp_path / ".releasekit" / REGISTRY_NAME).read_bytes()
    code, out = run("remove", "staging")
    assert code == 1 and "holds 1 files" in out and "--delete-files" in out
    code, out = run("remove", "prod")
    assert code == 1 and "is a base of staging" in out
    assert (tmp_path / ".releasekit" / REGISTRY_NAME).read_bytes() == before
    assert (tmp_path / ".indexes" / "staging" / "demo-1.0.tar.gz").exists()
    assert run("remove", "staging", "--delete-files") == (
        0,
        "removed index staging and its 1 files\n",
    )
    assert not (tmp_path / ".indexes" / "staging" / "demo-1.0.tar.gz").exists()
    # An index's upstream cache goes with it: a later index of that name must not serve it.
    assert run("create", "qa")[0] == 0
    cache = LocalStorage(tmp_path / ".upstream" / "qa")
    cache.prepare()
    with cache.new_upload() as upload:
        upload.write(b"cached bytes")
        assert upload.create("six-1.0.tar.gz") is not None
    cache.write_state("sha256/six-1.0.tar.gz", b"0" * 64)
    cache.write_state("pages/six.json", b"{}")
    assert run("remove", "qa") == (0, "removed index qa (1 cached upstream files dropped)\n")
    assert cache.scan() == [] and cache.read_state("pages/six.json") is None
    assert cache.read_state("sha256/six-1.0.tar.gz") is None
