"""`bundle plan` against a real upstream index: each target gets its own correct closure."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from releasekit.bundle.fetch import fetch_bundle
from releasekit.bundle.lock import lock_name
from releasekit.bundle.plan import plan_bundle, read_plan, write_plan
from releasekit.bundle.targets import parse_target
from releasekit.cli import cli
from releasekit.errors import BundleError
from releasekit.server.localstore import LocalStorage
from releasekit.server.maintenance import set_yanked
from tests.bundle.conftest import TARGETS, Built, Index, fill_upstream
from tests.server.conftest import Users

pytestmark = pytest.mark.e2e


def locked(built: Built, platform: str) -> dict[str, str]:
    """{name: filename} of the plan's lock for the target whose platform starts so."""
    target = next(t for t in TARGETS if t.platform.startswith(platform))
    data = tomllib.loads((built.plan / lock_name(target)).read_text())
    return {
        p["name"]: (p["wheels"][0] if "wheels" in p else p["sdist"])["name"]
        for p in data["packages"]
    }


def test_three_targets_resolve_each_their_own_closure(built: Built) -> None:
    assert locked(built, "manylinux") == {
        "app": "app-1.0-py3-none-any.whl",
        "fastcore": "fastcore-2.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "oldlib": "oldlib-1.0-py3-none-any.whl",
        "purefall": "purefall-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "srconly": "srconly-0.5.tar.gz",
    }
    assert locked(built, "musllinux") == {
        "app": "app-1.0-py3-none-any.whl",
        "fastcore": "fastcore-2.0-cp312-cp312-musllinux_1_2_aarch64.whl",
        "oldlib": "oldlib-1.0-py3-none-any.whl",
        "purefall": "purefall-1.0-py3-none-any.whl",
        "srconly": "srconly-0.5.tar.gz",
    }
    windows = locked(built, "win")
    assert windows["fastcore"] == "fastcore-2.0-cp313-cp313-win_amd64.whl"
    assert windows["winhelper"] == "winhelper-1.0-py3-none-win_amd64.whl"
    assert windows["purefall"] == "purefall-1.0-py3-none-any.whl"


def test_plan_keeps_hashes_upload_times_and_shares_files(built: Built) -> None:
    plan = read_plan(built.plan)
    files = plan.files()
    assert len(files) == 9  # app, oldlib, srconly and the pure fallback are shared by targets
    page = {f["filename"]: f for f in built.upstream.page("fastcore")["files"]}
    for name, entry in files.items():
        if name.startswith("fastcore"):
            assert entry.sha256 == page[name]["hashes"]["sha256"]
            assert entry.upload_time == page[name]["upload-time"]
    assert [(str(t), p.name) for t, p in plan.sdists()] == [(str(t), "srconly") for t in TARGETS]


def test_cli_plan_says_which_targets_get_an_sdist(built: Built, tmp_path: Path) -> None:
    args = [
        "bundle",
        "plan",
        "srconly",
        "--index",
        built.upstream.simple,
        "-o",
        str(tmp_path / "p"),
    ]
    result = CliRunner().invoke(cli, [*args, "--target", "win_amd64/3.13"])
    assert result.exit_code == 0, result.output
    assert (
        "win_amd64/3.13: srconly 0.5 has no wheel for this target; carrying its sdist"
        in result.output
    )


def test_unsatisfiable_requirement_names_package_target_and_nearest_version(built: Built) -> None:
    target = parse_target("musllinux_1_2_aarch64/3.12")
    with pytest.raises(BundleError) as caught:
        plan_bundle(["fastcore==2.1"], [target], built.upstream.simple)
    message = caught.value.message
    assert "fastcore==2.1" in message and "musllinux_1_2_aarch64/3.12" in message
    assert "nearest available version is fastcore 2.0" in message


def test_a_project_with_no_file_for_the_target_is_named(built: Built) -> None:
    target = parse_target("musllinux_1_2_aarch64/3.12")
    with pytest.raises(BundleError) as caught:
        plan_bundle(["winhelper"], [target], built.upstream.simple)
    assert (
        "winhelper" in caught.value.message and "musllinux_1_2_aarch64/3.12" in caught.value.message
    )
    assert (
        "no version of winhelper that is not yanked has a file for this platform"
        in caught.value.message
    )


def test_unknown_project_and_refused_cli_input_write_nothing(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    base = ["bundle", "plan", "--index", built.upstream.simple, "-o", str(out)]
    result = CliRunner().invoke(cli, [*base, "no-such-project", "--target", "win_amd64/3.13"])
    assert result.exit_code == 1
    assert "no-such-project" in result.output and "win_amd64/3.13" in result.output
    result = CliRunner().invoke(cli, [*base, "app", "--target", "linux/3.11"])
    assert result.exit_code == 1 and "examples:" in result.output
    assert not out.exists()


def test_upstream_that_is_not_an_index_is_refused(tmp_path: Path, built: Built) -> None:
    index = Index(built.upstream.url + "/nothing", tmp_path, built.upstream.process, tmp_path)
    with pytest.raises(BundleError, match="is not on the upstream index"):
        plan_bundle(["app"], [TARGETS[0]], index.simple)


def test_credentials_are_used_but_never_written(
    tmp_path: Path, users: Users, start_index: Callable[..., Index]
) -> None:
    packages = tmp_path / "upstream"
    packages.mkdir()
    fill_upstream(packages)
    index = start_index(packages, "-P", str(users.passwords), "-a", "update,download,list")
    user, password = users.credentials["reader"]
    secret_url = index.simple.replace("http://", f"http://{user}:{password}@")
    with pytest.raises(BundleError, match="refused"):
        plan_bundle(["app"], [TARGETS[2]], index.simple)
    plan = plan_bundle(["app"], [TARGETS[2]], secret_url)
    written = write_plan(plan, tmp_path / "plan")
    assert all(password not in path.read_text() for path in written)
    with pytest.raises(BundleError, match="answered 401"):
        fetch_bundle(read_plan(tmp_path / "plan"), tmp_path / "b1")
    manifest = fetch_bundle(read_plan(tmp_path / "plan"), tmp_path / "b2", auth=(user, password))
    assert len(manifest.files) == 4  # app, fastcore, purefall, winhelper
    assert not any(
        password.encode() in p.read_bytes() for p in (tmp_path / "b2").rglob("*") if p.is_file()
    )


def test_a_dependency_with_only_yanked_versions_is_named(
    tmp_path: Path, start_index: Callable[..., Index]
) -> None:
    packages = tmp_path / "upstream"
    packages.mkdir()
    fill_upstream(packages)
    set_yanked(LocalStorage(packages), "purefall", "1.0", "broken")
    index = start_index(packages, "-a", ".")
    with pytest.raises(BundleError) as caught:
        plan_bundle(["app"], [TARGETS[2]], index.simple)
    message = caught.value.message
    assert message.startswith("purefall cannot be satisfied for target win_amd64/3.13")
    assert "not yanked" in message
