"""An upstream on a named index with a base: the base's names shadow upstream, the default
index (no upstream) stays closed. Needs named indexes served (branch `indexes`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx2
import pytest

from tests.server.conftest import launch_server, make_wheel, stop_server
from tests.server.test_e2e import run
from tests.server.test_upstream_e2e import JSON, pip_install, upstream_wheel

pytestmark = pytest.mark.e2e
OLD = time.time() - 30 * 86400


def releasekit(*args: str | Path) -> None:
    result = run(sys.executable, "-m", "releasekit", *args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_named_index_reads_through_its_own_upstream_and_its_base_shadows_it(
    tmp_path: Path,
) -> None:
    upstream_packages = tmp_path / "upstream"
    upstream_packages.mkdir()
    upstream_wheel(upstream_packages, "oldlib", "1.0", uploaded=OLD)
    upstream_wheel(upstream_packages, "corelib", "9.0", uploaded=OLD)
    packages = tmp_path / "packages"
    releasekit("server", "index", "create", "prod", "-D", packages)
    releasekit("server", "index", "create", "mirror", "--base", "prod", "-D", packages)
    make_wheel(packages / ".indexes" / "prod", "corelib", "1.0")
    upstream, upstream_url = launch_server(upstream_packages, tmp_path / "upstream.log", "-a", ".")
    try:
        releasekit("server", "index", "upstream", "mirror", "--url", f"{upstream_url}/simple/",
                   "--cooldown", "7d", "-D", packages)  # fmt: skip
        ours, url = launch_server(packages, tmp_path / "ours.log", "-a", ".")
        try:
            if httpx2.get(f"{url}/mirror/simple/").status_code == 404:
                pytest.skip("named indexes are not served here yet: /mirror/simple/ is a 404")
            mirror = f"{url}/mirror"
            page = httpx2.get(f"{mirror}/simple/oldlib/", headers={"accept": JSON})
            assert [f["filename"] for f in page.json()["files"]] == ["oldlib-1.0-py3-none-any.whl"]
            core = httpx2.get(f"{mirror}/simple/corelib/", headers={"accept": JSON}).json()
            assert [f["filename"] for f in core["files"]] == ["corelib-1.0-py3-none-any.whl"]
            assert httpx2.get(f"{url}/simple/oldlib/").status_code == 404  # root: no upstream
            assert httpx2.get(f"{url}/prod/simple/oldlib/").status_code == 404  # nor prod
            result = pip_install(url + "/mirror", tmp_path / "pip", "oldlib", "corelib")
            assert result.returncode == 0, result.stdout + result.stderr
            assert (
                (tmp_path / "pip" / "corelib" / "__init__.py")
                .read_text()
                .startswith('__version__ = "1.0"')
            )
            assert (packages / ".upstream" / "mirror" / "oldlib-1.0-py3-none-any.whl").is_file()
            log = (tmp_path / "upstream.log").read_text()
            assert 'path="/simple/corelib/"' not in log
        finally:
            stop_server(ours)
    finally:
        stop_server(upstream)
