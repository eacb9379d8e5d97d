"""`releasekit server index retention` and `releasekit server retention`: output, refusals, races."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from releasekit.cli import cli
from releasekit.server.indexes import REGISTRY_NAME, IndexConfig, create_index, read_registry
from releasekit.server.localstore import LocalStorage
from releasekit.server.retention import make_rules
from releasekit.server.retention_run import (
    Step,
    Target,
    apply_plan,
    open_store,
    plan_store,
    set_retention,
)
from tests.server.conftest import make_sdist, make_wheel, snapshot

OLD = time.time() - 90 * 86400
VERSIONS = ("1.0", "1.1.dev1", "1.1.dev2", "1.1.dev3", "1.1rc1", "1.1rc2")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["server", *args])


def fill(directory: Path) -> Path:
    """alpha: a final, three dev releases (the oldest with an sdist too), two rcs; all 90 days old."""
    directory.mkdir(parents=True, exist_ok=True)
    for version in VERSIONS:
        make_wheel(directory, "alpha", version)
    make_sdist(directory, "alpha", "1.1.dev1")
    for path in directory.iterdir():
        os.utime(path, (OLD, OLD))
    return directory


@pytest.fixture
def filled(packages: Path) -> Path:
    fill(packages)
    assert run("reindex", "-D", str(packages)).exit_code == 0  # caches made, as on a live index
    return packages


def size(packages: Path, filename: str) -> int:
    return (packages / filename).stat().st_size


def registry(packages: Path) -> object:
    return json.loads((packages / ".releasekit" / REGISTRY_NAME).read_bytes())


def test_set_show_and_turn_off_rules(packages: Path) -> None:
    set_rules = ["index", "retention", "root", "--keep-dev", "2", "--keep-pre", "1"]
    result = run(
        *set_rules,
        "--older-than",
        "30D",
        "--exclude",
        "Aegis_*",
        "--every",
        "24h",
        "-D",
        str(packages),
    )
    assert result.exit_code == 0, result.output
    assert result.output == (
        "index root: keep-dev 2, keep-pre 1, older-than 30d, exclude aegis-*, every 24h\n"
    )
    assert read_registry(LocalStorage(packages))["root"].retention == {
        "keep_dev": 2,
        "keep_pre": 1,
        "older_than": "30d",
        "exclude": ["aegis-*"],
        "every": "24h",
    }
    result = run("index", "retention", "root", "--off", "-D", str(packages))
    assert result.output == "index root: retention off\n"
    assert read_registry(LocalStorage(packages))["root"].retention is None


def test_rules_on_a_named_index_keep_its_other_settings(packages: Path) -> None:
    root = LocalStorage(packages)
    root.prepare()
    create_index(root, IndexConfig("staging", acl={"ci": frozenset({"upload"})}, description="d"))
    result = run("index", "retention", "staging", "--keep-dev", "3", "-D", str(packages))
    assert result.output == "index staging: keep-dev 3, on demand only\n"
    config = read_registry(root)["staging"]
    assert (config.acl, config.description) == ({"ci": frozenset({"upload"})}, "d")
    assert config.retention is not None and config.retention["keep_dev"] == 3


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["root", "--keep-dev", "-1"], 1, "error: --keep-dev must be 0 or more, not -1\n"),
        (["root", "--keep-pre", "-5"], 1, "error: --keep-pre must be 0 or more, not -5\n"),
        (["root", "--keep-dev", "1", "--older-than", "3y"], 1, "has an unknown unit 'y'"),
        (["root", "--keep-dev", "1", "--every", "10"], 1, "error: --every '10' has no unit"),
        (["root", "--keep-dev", "1", "--every", "30s"], 1, "is shorter than a minute"),
        (["root", "--keep-dev", "x"], 2, "'x' is not a valid integer"),
        (["root"], 1, "error: no retention rule given\n  hint: give --keep-dev N"),
        (["root", "--off", "--keep-dev", "1"], 2, "--off turns retention off: give it alone"),
        (
            ["qa", "--keep-dev", "1"],
            1,
            "error: there is no index 'qa'\n  hint: known indexes: root",
        ),
    ],
)
def test_refused_rules_change_nothing(
    filled: Path, args: list[str], code: int, message: str
) -> None:
    run("index", "retention", "root", "--keep-pre", "4", "-D", str(filled))
    before = snapshot(filled)
    result = run("index", "retention", *args, "-D", str(filled))
    assert result.exit_code == code
    assert message in result.output
    assert snapshot(filled) == before


def test_nothing_configured_is_an_error_that_says_what_to_do(filled: Path) -> None:
    before = snapshot(filled)
    result = run("retention", "--index", "root", "--dry-run", "-D", str(filled))
    assert (result.exit_code, result.output) == (
        1,
        "error: index 'root' has no retention rules\n"
        "  hint: set them with `releasekit server index retention root --keep-dev N "
        "--keep-pre M`, then preview them with `releasekit server retention --index root "
        "--dry-run`\n",
    )
    result = run("retention", "--all", "-D", str(filled))
    assert result.exit_code == 1
    assert result.output.startswith("error: no index has retention rules\n")
    result = run("retention", "-D", str(filled))
    assert result.exit_code == 2
    assert "name the index: --index NAME, or --all for every index with rules" in result.output
    result = run("retention", "--index", "qa", "-D", str(filled))
    assert result.exit_code == 1
    assert result.output.startswith("error: there is no index 'qa'\n")
    assert snapshot(filled) == before


def test_a_bad_rule_in_the_registry_is_named(filled: Path) -> None:
    path = filled / ".releasekit" / REGISTRY_NAME
    entry = {"name": "root", "retention": {"keep_dev": -2}}
    path.write_text(json.dumps({"version": 1, "indexes": [entry]}))
    before = snapshot(filled)
    result = run("retention", "--all", "-D", str(filled))
    assert result.exit_code == 1
    assert result.output.startswith("error: index 'root': --keep-dev must be 0 or more, not -2\n")
    assert snapshot(filled) == before


def test_dry_run_lists_every_file_with_its_rule_and_changes_nothing(filled: Path) -> None:
    run("index", "retention", "root", "--keep-dev", "1", "--keep-pre", "1", "-D", str(filled))
    before = snapshot(filled)
    result = run("retention", "--index", "root", "--dry-run", "-D", str(filled))
    assert result.exit_code == 0, result.output
    wheel = "alpha-{}-py3-none-any.whl".format
    dev1, sdist, dev2, rc1 = (
        wheel("1.1.dev1"),
        "alpha-1.1.dev1.tar.gz",
        wheel("1.1.dev2"),
        wheel("1.1rc1"),
    )
    total = sum(size(filled, f) for f in (dev1, sdist, dev2, rc1))
    assert result.output == (
        "index root: keep-dev 1, keep-pre 1, on demand only\n"
        f"would delete {dev1} ({size(filled, dev1)} bytes): alpha 1.1.dev1 is "
        "#3 of 3 dev releases, newest first [keep-dev 1]\n"
        f"would delete {sdist} ({size(filled, sdist)} bytes): alpha 1.1.dev1 is "
        "#3 of 3 dev releases, newest first [keep-dev 1]\n"
        f"would delete {dev2} ({size(filled, dev2)} bytes): alpha 1.1.dev2 is "
        "#2 of 3 dev releases, newest first [keep-dev 1]\n"
        f"would delete {rc1} ({size(filled, rc1)} bytes): alpha 1.1rc1 is "
        "#2 of 2 pre-releases, newest first [keep-pre 1]\n"
        f"index root: would delete 4 files ({total} bytes) of 3 releases in 1 project\n"
    )
    assert snapshot(filled) == before


def test_a_run_on_a_named_index_leaves_the_root_alone(packages: Path) -> None:
    fill(packages)
    root = LocalStorage(packages)
    root.prepare()
    create_index(root, IndexConfig("staging"))
    fill(packages / ".indexes" / "staging")
    run("index", "retention", "staging", "--keep-dev", "0", "-D", str(packages))
    sizes = {p.name: p.stat().st_size for p in (packages / ".indexes" / "staging").iterdir()}
    result = run("retention", "--index", "staging", "-D", str(packages))
    assert result.exit_code == 0, result.output
    doomed = [f"alpha-1.1.dev{n}-py3-none-any.whl" for n in (1, 2, 3)]
    total = sum(sizes[f] for f in [*doomed, "alpha-1.1.dev1.tar.gz"])
    assert result.stdout == (
        f"index staging: deleted 4 of 4 files ({total} of {total} bytes) in 3 releases "
        "of 1 project\n"
    )
    assert result.stderr.splitlines() == [
        "[1/4] deleted alpha-1.1.dev1-py3-none-any.whl",
        "[2/4] deleted alpha-1.1.dev1.tar.gz",
        "[3/4] deleted alpha-1.1.dev2-py3-none-any.whl",
        "[4/4] deleted alpha-1.1.dev3-py3-none-any.whl",
    ]
    staged = sorted(p.name for p in (packages / ".indexes" / "staging").glob("alpha*"))
    assert staged == [f"alpha-{v}-py3-none-any.whl" for v in ("1.0", "1.1rc1", "1.1rc2")]
    assert len(list(packages.glob("alpha*"))) == 7


def test_a_file_gone_between_plan_and_delete_is_reported(filled: Path) -> None:
    root = LocalStorage(filled)
    rules = make_rules(keep_dev=0, keep_pre=None)
    set_retention(root, "root", rules)
    catalogue, pages = open_store(root)
    plan = plan_store(catalogue, rules, time.time())
    (filled / "alpha-1.1.dev1.tar.gz").unlink()  # another admin got there first
    steps: list[Step] = []
    target = Target("root", rules, rules.to_json())
    outcome = apply_plan(root, target, root, catalogue, pages, plan, steps.append)
    assert outcome.gone == ("alpha-1.1.dev1.tar.gz",)
    assert len(outcome.deleted) == 3 and outcome.stopped is None
    assert [(s.done, s.total, s.gone) for s in steps] == [
        (1, 4, False),
        (2, 4, True),
        (3, 4, False),
        (4, 4, False),
    ]
    assert outcome.describe("root").endswith("in 3 releases of 1 project; 1 already gone")
    assert sorted(p.name for p in filled.glob("alpha*")) == [
        f"alpha-{v}-py3-none-any.whl" for v in ("1.0", "1.1rc1", "1.1rc2")
    ]
    page = json.loads((filled / ".releasekit" / "simple" / "alpha" / "index.v1_json").read_bytes())
    assert len(page["files"]) == 3


@pytest.mark.parametrize("change", ["rules", "removed"])
def test_a_registry_change_during_a_run_stops_it(packages: Path, change: str) -> None:
    root = LocalStorage(packages)
    root.prepare()
    create_index(root, IndexConfig("staging"))
    store = LocalStorage(fill(packages / ".indexes" / "staging"))
    rules = make_rules(keep_dev=0, keep_pre=0)
    set_retention(root, "staging", rules)
    catalogue, pages = open_store(store)
    plan = plan_store(catalogue, rules, time.time())
    assert len(plan.deletions) == 4

    def meanwhile(step: Step) -> None:  # an admin edits the registry after the first release
        if step.done == 2:
            if change == "rules":
                set_retention(root, "staging", make_rules(keep_dev=5, keep_pre=5))
            else:
                from releasekit.server.indexes import remove_index

                remove_index(root, "staging")

    target = Target("staging", rules, rules.to_json())
    outcome = apply_plan(root, target, store, catalogue, pages, plan, meanwhile)
    assert outcome.deleted == ("alpha-1.1.dev1-py3-none-any.whl", "alpha-1.1.dev1.tar.gz")
    expected = (
        "the retention rules of index 'staging' changed during the run"
        if change == "rules"
        else "index 'staging' was removed during the run"
    )
    assert outcome.stopped == expected
    assert outcome.describe("staging").endswith(f"; stopped: {expected}")
    assert (packages / ".indexes" / "staging" / "alpha-1.1.dev2-py3-none-any.whl").exists()
