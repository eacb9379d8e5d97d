"""The compose stack's TLS nginx for real, with the setup script's self-signed certificate, and
pip trusting it through `releasekit client setup --ca-cert` (no `trusted-host`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from releasekit.cli import cli
from tests.deploy.conftest import ACCEL, build_dists, nginx_in_front, twine_upload
from tests.test_publish import Index
from tests.test_seed_commands import script

pytestmark = pytest.mark.e2e
# Environment variables that override pip.conf's `cert` (requests reads the last two itself).
OVERRIDING_CA = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_pip_trusts_the_self_signed_index_through_client_setup(
    start_index: Callable[..., Index], tmp_path: Path, isolated_home: Path
) -> None:
    data = tmp_path / "data"
    made = script(tmp_path, "setup-private-pypi.sh", "--tls", "127.0.0.1", str(data))
    assert made.returncode == 0, made.stderr
    index = start_index(extra=("--accel-redirect", ACCEL))
    twine_upload(index.url, build_dists(tmp_path, "1.0.0"))
    with nginx_in_front(index, tmp_path, tls=data / "tls") as url:
        assert url.startswith("https://")
        setup = CliRunner().invoke(
            cli,
            [
                "client",
                "setup",
                "--pip",
                "--index-url",
                url + "simple/",
                "--ca-cert",
                str(data / "tls" / "cert.pem"),
            ],
        )
        assert setup.exit_code == 0, setup.output
        pip_conf = (isolated_home / ".config" / "pip" / "pip.conf").read_text()
        assert f"cert = {data / 'tls' / 'cert.pem'}" in pip_conf and "trusted-host" not in pip_conf
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir"]
        # This machine points pip at its own bundle through the environment, which would
        # override pip.conf; a user's machine does not.
        env = {k: v for k, v in os.environ.items() if k not in OVERRIDING_CA}
        install = subprocess.run(
            [*pip, "tiny-lib"], capture_output=True, text=True, check=False, timeout=300, env=env
        )
        assert install.returncode == 0, install.stdout + install.stderr
        assert "Successfully installed tiny-lib-1.0.0" in install.stdout
        # Without the CA pip refuses the certificate: the trust really comes from --ca-cert.
        (isolated_home / ".config" / "pip" / "pip.conf").write_text(
            f"[global]\nindex-url = {url}simple/\n"
        )
        refused = subprocess.run(
            [*pip, "--force-reinstall", "tiny-lib"],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert (
            refused.returncode != 0
            and "CERTIFICATE_VERIFY_FAILED" in refused.stdout + refused.stderr
        )


def test_ca_cert_that_is_not_a_certificate_is_refused(tmp_path: Path, isolated_home: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    for path, message in (
        (bogus, "holds no PEM certificate"),
        (tmp_path / "missing.pem", "cannot read"),
    ):
        result = CliRunner().invoke(
            cli,
            [
                "client",
                "setup",
                "--pip",
                "--index-url",
                "https://pypi.internal/simple/",
                "--ca-cert",
                str(path),
            ],
        )
        assert result.exit_code != 0
        assert message in str(result.exception) + result.output
    assert not (isolated_home / ".config" / "pip").exists()  # nothing written
