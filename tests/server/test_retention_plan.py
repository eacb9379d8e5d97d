"""Retention planning (pure) on the version shapes real projects publish, and its rules."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from releasekit.errors import IndexServerError
from releasekit.server.retention import (
    RetentionRules,
    make_rules,
    parse_duration,
    parse_rules,
)
from releasekit.server.retention_plan import RetentionFile, plan_retention, render_plan

DAY = 86400
NOW = 1_800_000_000.0  # 2027-01-15
OLD = int((NOW - 400 * DAY) * 1e9)


def wheels(project: str, *versions: str, uploaded_ns: int = OLD) -> list[RetentionFile]:
    return [
        RetentionFile(f"{project}-{v}-py3-none-any.whl", project, v, 100, uploaded_ns)
        for v in versions
    ]


def deleted(
    files: Iterable[RetentionFile], now: float = NOW, **rules: object
) -> list[tuple[str, str]]:
    plan = plan_retention(files, make_rules(**{"keep_dev": None, "keep_pre": None, **rules}), now)  # type: ignore[arg-type]
    return [(d.project, d.version) for d in plan.deletions]


def test_keeps_the_newest_dev_releases_by_pep440_not_by_upload_time() -> None:
    # dev1 uploaded last, dev30 first: the order is the version's, so dev10 > dev9 > dev2.
    versions = [f"1.0.dev{n}" for n in range(1, 31)]
    files = [
        RetentionFile(f"app-{v}-py3-none-any.whl", "app", v, 10, OLD - n * 10**9)
        for n, v in enumerate(reversed(versions))
    ]
    files += wheels("app", "0.9")
    plan = plan_retention(files, make_rules(keep_dev=5, keep_pre=None), NOW)
    assert [d.version for d in plan.deletions] == [f"1.0.dev{n}" for n in range(1, 26)]
    assert plan.deletions[0].rank == 30 and plan.deletions[0].count == 30
    assert plan.deletions[-1].why == "#6 of 30 dev releases, newest first [keep-dev 5]"
    assert (len(plan.files), plan.bytes, plan.projects) == (25, 250, 1)


def test_finals_and_post_releases_are_never_deleted() -> None:
    files = wheels("app", "0.9", "1.0", "1.0.post1", "1.0.post2", "1.0+build7", "1.1.dev1", "2.0")
    assert deleted(files, keep_dev=0, keep_pre=0) == [("app", "1.1.dev1")]


def test_the_newest_version_of_a_project_always_stays() -> None:
    only_dev = wheels("app", "1.0.dev1", "1.0.dev2", "1.0.dev3")
    assert deleted(only_dev, keep_dev=0) == [("app", "1.0.dev1"), ("app", "1.0.dev2")]
    newest_pre = wheels("lib", "1.0", "2.0b1", "2.0rc1")
    assert deleted(newest_pre, keep_pre=0) == [("lib", "2.0b1")]


def test_a_dev_release_of_a_pre_release_is_a_dev_release() -> None:
    files = wheels("app", "2.0rc1.dev3", "2.0rc1", "2.0rc2.dev1", "2.0rc2", "2.0")
    assert deleted(files, keep_pre=0) == [("app", "2.0rc1"), ("app", "2.0rc2")]
    assert deleted(files, keep_dev=0) == [("app", "2.0rc1.dev3"), ("app", "2.0rc2.dev1")]


def test_alpha_beta_rc_and_post_of_a_pre_release_are_pre_releases() -> None:
    files = wheels("app", "1.0a1", "1.0a2", "1.0b1", "1.0rc1", "1.0rc1.post1", "1.0")
    plan = plan_retention(files, make_rules(keep_dev=None, keep_pre=1), NOW)
    assert [d.version for d in plan.deletions] == ["1.0a1", "1.0a2", "1.0b1", "1.0rc1"]
    assert {d.kind for d in plan.deletions} == {"pre"}


def test_a_dev_release_of_a_post_release_is_a_dev_release() -> None:
    files = wheels("app", "1.0", "1.0.post1.dev1", "1.0.post1.dev2", "1.0.post1", "1.1.dev1")
    assert deleted(files, keep_dev=1) == [("app", "1.0.post1.dev1"), ("app", "1.0.post1.dev2")]
    assert deleted(files, keep_dev=2) == [("app", "1.0.post1.dev1")]


def test_epochs_order_before_everything_else() -> None:
    # 1!2.0.dev1 is newer than 3.0.dev5 (and than 5.0): it is the project's newest version.
    files = wheels("app", "3.0.dev5", "1!2.0.dev1", "5.0", "1!1.0.dev1")
    assert deleted(files, keep_dev=1) == [("app", "3.0.dev5"), ("app", "1!1.0.dev1")]


def test_local_versions_are_releases_of_their_own_in_pep440_order() -> None:
    files = wheels("app", "1.0.dev1+abc", "1.0.dev1", "1.0.dev1+def", "1.0.dev2", "1.0")
    assert deleted(files, keep_dev=1) == [
        ("app", "1.0.dev1"),
        ("app", "1.0.dev1+abc"),
        ("app", "1.0.dev1+def"),
    ]


def test_a_releases_files_go_together_whatever_their_spelling() -> None:
    files = wheels("app", "1.0.dev1", "1.0.dev2", "1.0")
    files.append(RetentionFile("app-1.0-dev1.tar.gz", "app", "1.0-dev1", 50, OLD))
    plan = plan_retention(files, make_rules(keep_dev=1, keep_pre=None), NOW)
    assert [f.filename for f in plan.files] == [
        "app-1.0-dev1.tar.gz",
        "app-1.0.dev1-py3-none-any.whl",
    ]
    assert plan.deletions[0].version == "1.0.dev1"


def test_older_than_keeps_a_release_with_any_recent_file() -> None:
    recent = int((NOW - 3 * DAY) * 1e9)
    files = wheels("app", "1.0.dev1", "1.0.dev2", "1.0.dev3", "1.0.dev4")
    files.append(RetentionFile("app-1.0.dev2.tar.gz", "app", "1.0.dev2", 50, recent))
    files += wheels("app", "1.0.dev5", uploaded_ns=recent)
    plan = plan_retention(files, make_rules(keep_dev=0, keep_pre=None, older_than="30d"), NOW)
    assert [d.version for d in plan.deletions] == ["1.0.dev1", "1.0.dev3", "1.0.dev4"]
    assert plan.deletions[0].rank == 5  # the recent releases still count towards the rank
    assert plan.deletions[0].rule == "keep-dev 0, older-than 30d"


def test_invalid_versions_are_never_touched_and_listed() -> None:
    files = wheels("app", "1.0.dev1", "1.0.dev2", "2.0")
    files.append(RetentionFile("app-1.0_dev1_custom.tar.gz", "app", "1.0_dev1_custom", 9, OLD))
    plan = plan_retention(files, make_rules(keep_dev=0, keep_pre=None), NOW)
    assert [d.version for d in plan.deletions] == ["1.0.dev1", "1.0.dev2"]
    assert plan.skipped == (
        ("app-1.0_dev1_custom.tar.gz", "'1.0_dev1_custom' is not a PEP 440 version"),
    )


def test_an_unreadable_file_keeps_its_whole_release() -> None:
    files = wheels("app", "1.0.dev1", "1.0.dev2", "1.0")
    files.append(RetentionFile("app-1.0.dev1.tar.gz", "app", "1.0.dev1", 0, 0, "bad gzip"))
    plan = plan_retention(files, make_rules(keep_dev=0, keep_pre=None), NOW)
    assert [d.version for d in plan.deletions] == ["1.0.dev2"]
    assert plan.skipped == (("app-1.0.dev1.tar.gz", "kept with its release 1.0.dev1: bad gzip"),)


def test_excluded_projects_are_left_alone() -> None:
    files = wheels("aegis-core", "1.0.dev1", "1.0.dev2") + wheels("app", "1.0.dev1", "1.0.dev2")
    plan = plan_retention(files, make_rules(keep_dev=0, keep_pre=None, exclude=["Aegis_*"]), NOW)
    assert [(d.project, d.version) for d in plan.deletions] == [("app", "1.0.dev1")]
    assert plan.excluded == ("aegis-core",)


def test_a_rule_left_out_deletes_nothing_of_its_kind() -> None:
    files = wheels("app", "1.0a1", "1.0a2", "1.0.dev1", "1.0.dev2", "1.0")
    assert deleted(files, keep_dev=0) == [("app", "1.0.dev1"), ("app", "1.0.dev2")]
    assert deleted(files, keep_pre=0) == [("app", "1.0a1"), ("app", "1.0a2")]


def test_the_dry_run_listing() -> None:
    files = wheels("app", "1.0.dev1", "1.0.dev2", "1.0rc1", "1.0")
    files.append(RetentionFile("app-9.x.tar.gz", "app", "9.x", 1, OLD))
    rules = make_rules(keep_dev=1, keep_pre=0, exclude=["aegis-*"], every="24h")
    plan = plan_retention(files + wheels("aegis-core", "1.0.dev1"), rules, NOW)
    assert render_plan("root", rules, plan) == [
        "index root: keep-dev 1, keep-pre 0, exclude aegis-*, every 24h",
        "would delete app-1.0.dev1-py3-none-any.whl (100 bytes): app 1.0.dev1 is "
        "#2 of 2 dev releases, newest first [keep-dev 1]",
        "would delete app-1.0rc1-py3-none-any.whl (100 bytes): app 1.0rc1 is "
        "#1 of 1 pre-releases, newest first [keep-pre 0]",
        "skipped app-9.x.tar.gz: '9.x' is not a PEP 440 version",
        "excluded aegis-core",
        "index root: would delete 2 files (200 bytes) of 2 releases in 1 project",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * DAY),
        ("24h", DAY),
        ("90m", 5400),
        ("2w", 14 * DAY),
        ("45S", 45),
        (" 7d ", 7 * DAY),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, "older-than") == seconds


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"keep_dev": -1, "keep_pre": None}, "--keep-dev must be 0 or more, not -1"),
        ({"keep_dev": None, "keep_pre": -3}, "--keep-pre must be 0 or more, not -3"),
        ({"keep_dev": True, "keep_pre": None}, "--keep-dev must be a whole number"),
        ({"keep_dev": "5", "keep_pre": None}, "--keep-dev must be a whole number"),
        ({"keep_dev": None, "keep_pre": None}, "no retention rule given"),
        ({"keep_dev": 1, "keep_pre": 1, "older_than": "30y"}, "has an unknown unit 'y'"),
        ({"keep_dev": 1, "keep_pre": 1, "older_than": "30"}, "has no unit"),
        ({"keep_dev": 1, "keep_pre": 1, "older_than": "-5d"}, "is not a duration"),
        ({"keep_dev": 1, "keep_pre": 1, "older_than": "1.5d"}, "is not a duration"),
        ({"keep_dev": 1, "keep_pre": 1, "every": "0h"}, "--every '0h' is zero"),
        ({"keep_dev": 1, "keep_pre": 1, "every": "30s"}, "shorter than a minute"),
        ({"keep_dev": 1, "keep_pre": 1, "exclude": [""]}, "is not a project name pattern"),
        ({"keep_dev": 1, "keep_pre": 1, "exclude": ["a\nb"]}, "is not a project name pattern"),
    ],
)
def test_bad_rule_values_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(IndexServerError, match=message):
        make_rules(**values)  # type: ignore[arg-type]


def test_registry_form_round_trips_and_bad_entries_name_the_index() -> None:
    rules = make_rules(keep_dev=3, keep_pre=1, older_than="30D", exclude=["A.B*"], every="24h")
    assert rules == RetentionRules(3, 1, "30d", ("a-b*",), "24h")
    assert parse_rules(rules.to_json(), "index 'root'") == rules
    assert parse_rules(None, "index 'root'") is None
    with pytest.raises(IndexServerError, match=r"index 'qa': unknown retention keys \['keep'\]"):
        parse_rules({"keep": 3}, "index 'qa'")
    with pytest.raises(IndexServerError, match="index 'qa': --keep-dev must be 0 or more"):
        parse_rules({"keep_dev": -2}, "index 'qa'")
    with pytest.raises(IndexServerError, match="index 'qa': retention `every` must be"):
        parse_rules({"keep_dev": 2, "every": 86400}, "index 'qa'")
    with pytest.raises(IndexServerError, match="`exclude` must be a list"):
        parse_rules({"keep_dev": 2, "exclude": "a*"}, "index 'qa'")
