"""`releasekit client setup|check` on temporary HOMEs, driven by real pip, uv, twine and poetry."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from releasekit.build import Distributions, build_distributions
from releasekit.cli import cli
from releasekit.clients import index_urls, poetry_source_block, redact
from releasekit.errors import ConfigError
from releasekit.publish import publish
from tests.test_build import tiny_project
from tests.test_publish import ENV, PASSWORD, USER, Index, config_for, start_index

__all__ = ["start_index"]  # the fixture, imported so pytest finds it here

URL = "http://127.0.0.1:8080/simple/"
BIN = Path(sys.executable).parent


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["client", *args], catch_exceptions=False)


def setup(*args: str, url: str = URL) -> Result:
    return run("setup", "--index-url", url, *args)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `root` with its bytes and permission bits."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mode & 0o777)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("INDEX_PASSWORD", PASSWORD)
    return "INDEX_PASSWORD"


@pytest.fixture
def no_poetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH without any poetry, so poetry's part is the explanation, not a command."""
    monkeypatch.setenv("PATH", os.pathsep.join([str(BIN), "/usr/bin", "/bin"]))


CREDS = ("--username", USER, "--password-env", "INDEX_PASSWORD")


def test_dry_run_shows_every_change_and_changes_nothing(
    isolated_home: Path, secret_env: str, no_poetry: None
) -> None:
    before = snapshot(isolated_home)

    result = setup(*CREDS, "--dry-run")

    assert result.exit_code == 0, result.output
    assert snapshot(isolated_home) == before
    for path in ("~/.config/pip/pip.conf", "~/.netrc", "~/.config/uv/uv.toml", "~/.pypirc"):
        assert f"would write {path}:" in result.output
    assert "+index-url = http://127.0.0.1:8080/simple/" in result.output
    assert "+trusted-host = 127.0.0.1:8080" in result.output
    assert "+  password ***" in result.output
    assert "poetry config repositories.private-pypi http://127.0.0.1:8080/" in result.output
    assert "dry run: nothing changed" in result.output
    assert PASSWORD not in result.output


def test_setup_writes_each_client_and_a_second_run_changes_nothing(
    isolated_home: Path, secret_env: str, no_poetry: None
) -> None:
    first = setup(*CREDS)
    assert first.exit_code == 0, first.output
    after_first = snapshot(isolated_home)

    second = setup(*CREDS)

    assert second.exit_code == 0, second.output
    assert "already set up: nothing changed" in second.output
    assert snapshot(isolated_home) == after_first
    assert not list(isolated_home.rglob("*.releasekit-bak*"))  # nothing existed: no backups
    netrc = isolated_home / ".netrc"
    assert stat.S_IMODE(netrc.stat().st_mode) == 0o600
    assert netrc.read_text() == f"machine 127.0.0.1\n  login {USER}\n  password {PASSWORD}\n"
    pip_conf = (isolated_home / ".config/pip/pip.conf").read_text()
    assert pip_conf == f"[global]\nindex-url = {URL}\ntrusted-host = 127.0.0.1:8080\n"
    uv = tomllib.loads((isolated_home / ".config/uv/uv.toml").read_text())
    assert uv == {"index": [{"name": "private-pypi", "url": URL, "default": True}]}
    pypirc = (isolated_home / ".pypirc").read_text()
    assert pypirc == (
        "[distutils]\nindex-servers = private-pypi\n\n"
        f"[private-pypi]\nrepository = http://127.0.0.1:8080/\nusername = {USER}\n"
    )
    assert "poetry is not on PATH" in first.output
    assert poetry_source_block("private-pypi", URL, "primary") in _unindented(first.output)
    for output in (first.output, second.output):
        assert PASSWORD not in output


def _unindented(output: str) -> str:
    return "\n".join(line.removeprefix("    ") for line in output.splitlines()) + "\n"


PIP_CONF = """\
# managed by hand
[global]
timeout = 60
index_url = https://old.example/simple/

[install]
extra-index-url = https://other.example/simple/
"""
PYPIRC = """\
[distutils]
index-servers =
    pypi

# my PyPI account
[pypi]
username = __token__
"""
UV_TOML = '# uv settings\nnative-tls = true\n\n[[index]]\nname = "mirror"\nurl = "https://m.example/simple/"\n'
NETRC = "machine other.example\n  login bob\n  password hunter2\n"


def test_existing_files_are_edited_in_place_and_backed_up(
    isolated_home: Path, secret_env: str, no_poetry: None
) -> None:
    files = {
        ".config/pip/pip.conf": PIP_CONF,
        ".pypirc": PYPIRC,
        ".config/uv/uv.toml": UV_TOML,
        ".netrc": NETRC,
    }
    for relpath, text in files.items():
        (isolated_home / relpath).parent.mkdir(parents=True, exist_ok=True)
        (isolated_home / relpath).write_text(text)
    (isolated_home / ".netrc").chmod(0o600)

    result = setup(*CREDS, url="https://pypi.internal.example/")

    assert result.exit_code == 0, result.output
    for relpath, text in files.items():
        assert (isolated_home / f"{relpath}.releasekit-bak").read_text() == text
    simple = "https://pypi.internal.example/simple/"
    assert (isolated_home / ".config/pip/pip.conf").read_text() == PIP_CONF.replace(
        "index_url = https://old.example/simple/", f"index-url = {simple}"
    )
    assert "replacing index-url https://old.example/simple/" in result.output
    assert "[install] extra-index-url in ~/.config/pip/pip.conf overrides [global]" in result.output
    assert (isolated_home / ".pypirc").read_text() == PYPIRC.replace(
        "    pypi\n", "    pypi\n    private-pypi\n"
    ) + f"\n[private-pypi]\nrepository = https://pypi.internal.example/\nusername = {USER}\n"
    uv_toml = (isolated_home / ".config/uv/uv.toml").read_text()
    assert uv_toml.startswith(UV_TOML)
    assert tomllib.loads(uv_toml)["index"][1] == {
        "name": "private-pypi",
        "url": simple,
        "default": True,
    }
    assert (isolated_home / ".netrc").read_text() == (
        f"{NETRC}\nmachine pypi.internal.example\n  login {USER}\n  password {PASSWORD}\n"
    )
    assert "trusted-host" not in (isolated_home / ".config/pip/pip.conf").read_text()
    assert "hunter2" not in result.output

    # New credentials replace the old entry; the other machine and the first backup stay.
    os.environ["INDEX_PASSWORD"] = "n3w-Secret"
    again = setup(*CREDS, "--pip", url="https://pypi.internal.example/")
    assert again.exit_code == 0, again.output
    assert (isolated_home / ".netrc").read_text().endswith(f"login {USER}\n  password n3w-Secret\n")
    assert (isolated_home / ".netrc").read_text().startswith(NETRC)
    assert (isolated_home / ".netrc.releasekit-bak").read_text() == NETRC
    newer = list(isolated_home.glob(".netrc.releasekit-bak.*"))
    assert len(newer) == 1 and stat.S_IMODE(newer[0].stat().st_mode) == 0o600
    assert "n3w-Secret" not in again.output


def test_extra_mode_adds_to_the_existing_extras_and_warns(
    isolated_home: Path, no_poetry: None
) -> None:
    conf = isolated_home / ".pip/pip.conf"  # a legacy location pip still reads
    conf.parent.mkdir()
    conf.write_text("[global]\nextra-index-url = https://a.example/simple/\n")

    result = setup("--mode", "extra", url="https://pypi.internal.example/simple/")

    assert result.exit_code == 0, result.output
    assert conf.read_text() == (
        "[global]\nextra-index-url =\n    https://a.example/simple/\n"
        "    https://pypi.internal.example/simple/\n"
    )
    assert not (isolated_home / ".config/pip/pip.conf").exists()
    assert "dependency confusion" in result.output
    uv = tomllib.loads((isolated_home / ".config/uv/uv.toml").read_text())
    assert uv["index"] == [{"name": "private-pypi", "url": "https://pypi.internal.example/simple/"}]
    assert 'priority = "explicit"' in result.output
    assert "pip.conf holds no secrets" in result.output


PYPROJECT = '# my project\n[project]\nname = "app"  # the name\nversion = "1.0"\n\n[tool.uv]\nnative-tls = true\n'


def test_uv_index_in_a_project_keeps_every_other_byte(tmp_path: Path, isolated_home: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)

    result = setup("--uv", "--mode", "extra", "--project", str(tmp_path))

    assert result.exit_code == 0, result.output
    text = (tmp_path / "pyproject.toml").read_text()
    assert text.startswith(PYPROJECT)
    entry = {"name": "private-pypi", "url": URL, "explicit": True}
    assert tomllib.loads(text)["tool"]["uv"]["index"] == [entry]
    assert "[tool.uv.sources]" in result.output
    assert (tmp_path / "pyproject.toml.releasekit-bak").read_text() == PYPROJECT
    assert not (isolated_home / ".config/uv").exists()

    primary = setup("--uv", "--project", str(tmp_path))
    assert primary.exit_code == 0, primary.output
    entry = {"name": "private-pypi", "url": URL, "default": True}
    assert tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["uv"]["index"] == [
        entry
    ]


def test_token_goes_with_the_token_username(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, no_poetry: None
) -> None:
    monkeypatch.setenv("INDEX_TOKEN", "tok-Abc123")

    result = setup("--token-env", "INDEX_TOKEN", "--pip", "--pypirc")

    assert result.exit_code == 0, result.output
    assert "login __token__\n  password tok-Abc123" in (isolated_home / ".netrc").read_text()
    assert "username = __token__" in (isolated_home / ".pypirc").read_text()
    assert "tok-Abc123" not in result.output


@pytest.mark.parametrize(
    ("args", "env", "message", "code"),
    [
        (("--username", "u", "--password-env", "MISSING"), {}, "MISSING is not set", 1),
        ((), {}, "must not carry credentials", 1),
        (("--name", "bad name"), {}, "index name 'bad name'", 1),
        (
            ("--password-env", "P", "--token-env", "T", "--username", "u"),
            {},
            "exclude each other",
            2,
        ),
        (
            (
                "--password-env",
                "P",
            ),
            {"P": "x"},
            "--password-env needs --username",
            2,
        ),
        (("--username", "u", "--password-env", "P"), {"P": "with space"}, "netrc cannot hold", 1),
    ],
)
def test_refusals_say_why_and_change_nothing(
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_poetry: None,
    args: tuple[str, ...],
    env: dict[str, str],
    message: str,
    code: int,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    url = "http://u:pw@127.0.0.1/" if "carry" in message else URL
    before = snapshot(isolated_home)

    result = setup(*args, url=url)

    assert result.exit_code == code
    assert message in result.output
    assert snapshot(isolated_home) == before


def test_malformed_config_is_refused_without_quoting_it(
    isolated_home: Path, no_poetry: None
) -> None:
    (isolated_home / ".pypirc").write_text("password = leaked-Secret\n[x\n")
    before = snapshot(isolated_home)

    result = setup()

    assert result.exit_code == 1
    assert "~/.pypirc is malformed" in result.output
    assert "leaked-Secret" not in result.output
    assert snapshot(isolated_home) == before  # pip and uv were planned first but not written


def test_a_project_without_pyproject_and_a_non_http_url_are_refused(
    tmp_path: Path, isolated_home: Path
) -> None:
    result = setup("--uv", "--project", str(tmp_path))
    assert result.exit_code == 1
    assert "pyproject.toml does not exist" in result.output
    result = setup("--uv", url="ftp://example.com/")
    assert result.exit_code == 1
    assert "is not an http(s) URL" in result.output
    assert not list(tmp_path.iterdir())
    assert not (isolated_home / ".config").exists()


@pytest.mark.parametrize(
    ("url", "simple", "upload"),
    [
        ("https://h/", "https://h/simple/", "https://h/"),
        ("https://h/simple", "https://h/simple/", "https://h/"),
        ("https://h/pypi/legacy/", "https://h/pypi/simple/", "https://h/pypi/legacy/"),
        ("http://h:8080/root/simple/", "http://h:8080/root/simple/", "http://h:8080/root/"),
    ],
)
def test_index_urls(url: str, simple: str, upload: str) -> None:
    urls = index_urls(url)
    assert (urls.simple, urls.upload) == (simple, upload)
    with pytest.raises(ConfigError):
        index_urls("file:///srv/simple/")


def test_redact_masks_secrets_fields_and_url_passwords() -> None:
    text = "machine h login u password p1\npassword = p2\nhttps://u:p3@h/ s3cret"
    assert redact(text, ["s3cret"]) == (
        "machine h login u password ***\npassword = ***\nhttps://u:***@h/ ***"
    )


# --- real clients against the bundled index ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_wheel(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    root = tiny_project(tmp_path_factory.mktemp("tiny"), "1.0.0")
    return build_distributions(
        root, "1.0.0", outdir=root / "dist", isolation=False, progress=lambda _: None
    )


@pytest.fixture
def private_index(
    start_index: Callable[..., Index], tiny_wheel: Distributions, monkeypatch: pytest.MonkeyPatch
) -> Index:
    """The bundled index needing credentials for everything, holding tiny-lib 1.0.0."""
    index = start_index(authenticate="update,download,list")
    publish(
        config_for(index.url), tiny_wheel, repository=None, force=False, progress=print, env=ENV
    )
    monkeypatch.setenv("INDEX_PASSWORD", PASSWORD)
    # The machine's own pip settings would add other package sources.
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{index.url}simple/")
    assert refused.value.code == 401
    refused.value.close()
    return index


def _run(
    command: list[str], cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.e2e
def test_pip_reads_the_config_and_downloads_with_netrc_credentials(
    private_index: Index, tmp_path: Path, no_poetry: None
) -> None:
    result = setup(*CREDS, "--pip", url=private_index.url)
    assert result.exit_code == 0, result.output

    listed = _run([sys.executable, "-m", "pip", "config", "list"]).stdout
    assert f"global.index-url='{private_index.url}simple/'" in listed
    assert f"global.trusted-host='{private_index.url.split('/')[2]}'" in listed
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-d"]
    _run([*pip, str(tmp_path / "out"), "tiny-lib"])
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["tiny_lib-1.0.0-py3-none-any.whl"]


@pytest.mark.e2e
def test_uv_installs_with_the_written_config_and_printed_variables(
    private_index: Index, tmp_path: Path, no_poetry: None
) -> None:
    result = setup(*CREDS, "--uv", url=private_index.url)
    assert result.exit_code == 0, result.output
    assert 'UV_INDEX_PRIVATE_PYPI_PASSWORD="$INDEX_PASSWORD"' in result.output
    assert not (Path(os.environ["HOME"]) / ".netrc").exists()  # uv gets them from the variables

    uv = str(BIN / "uv")
    _run([uv, "venv", "--quiet", str(tmp_path / "venv")])
    _run(
        [uv, "pip", "install", "--no-cache", "--python", str(tmp_path / "venv"), "tiny-lib"],
        UV_INDEX_PRIVATE_PYPI_USERNAME=USER,
        UV_INDEX_PRIVATE_PYPI_PASSWORD=PASSWORD,
    )
    assert list((tmp_path / "venv").glob("lib/python*/site-packages/tiny_lib/__init__.py"))


@pytest.mark.e2e
def test_twine_uploads_with_the_written_pypirc(
    start_index: Callable[..., Index], tiny_wheel: Distributions, no_poetry: None
) -> None:
    index = start_index()
    result = setup("--pypirc", "--username", USER, url=index.url)
    assert result.exit_code == 0, result.output

    twine = [sys.executable, "-m", "twine", "upload", "--non-interactive", "-r", "private-pypi"]
    _run([*twine, *map(str, tiny_wheel.files)], TWINE_PASSWORD=PASSWORD)
    assert sorted(index.stored()) == sorted(path.name for path in tiny_wheel.files)


@pytest.mark.e2e
def test_check_reports_api_auth_and_each_client(private_index: Index, no_poetry: None) -> None:
    result = run("check", "--index-url", private_index.url, "--package", "tiny-lib", *CREDS)

    assert result.exit_code == 0, result.output
    assert "api version: 1." in result.output
    assert "auth: required (HTTP 401 without); credentials accepted" in result.output
    assert "package tiny-lib: 1.0.0" in result.output
    assert "pip: ok: downloads tiny_lib-1.0.0-py3-none-any.whl" in result.output
    assert "uv: ok: resolves tiny-lib==1.0.0" in result.output
    assert "poetry: skipped" in result.output
    assert PASSWORD not in result.output

    anonymous = run("check", "--index-url", private_index.url, "--package", "tiny-lib")
    assert anonymous.exit_code == 1
    assert "auth: required (HTTP 401)" in anonymous.output
    assert "pip: failed" in anonymous.output
    missing = run("check", "--index-url", private_index.url, "--package", "nope", *CREDS)
    assert missing.exit_code == 1
    assert "package nope: not on the index" in missing.output
    assert "pip: failed: ERROR: " in missing.output
    assert "the index check failed: nope, pip, uv" in missing.output


def test_check_of_an_unreachable_index_is_a_clear_error() -> None:
    result = run("check", "--index-url", "http://127.0.0.1:9/")
    assert result.exit_code == 1
    assert "error: cannot reach http://127.0.0.1:9/simple/" in result.output
    assert "hint: check the URL" in result.output


@pytest.fixture(scope="session")
def poetry_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only `poetry` 2.5.1, installed once per session into its own venv."""
    root = tmp_path_factory.mktemp("poetry")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    install = [str(root / "venv/bin/python"), "-m", "pip", "install", "-q", "poetry==2.5.1"]
    subprocess.run(install, check=True, capture_output=True)
    (root / "bin").mkdir()
    (root / "bin/poetry").symlink_to(root / "venv/bin/poetry")
    return root / "bin"


@pytest.fixture
def with_poetry(poetry_bin: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PATH", os.pathsep.join([str(poetry_bin), str(BIN), "/usr/bin", "/bin"]))
    yield


@pytest.mark.e2e
def test_poetry_installs_from_the_index_with_the_written_config(
    private_index: Index, tmp_path: Path, isolated_home: Path, with_poetry: None
) -> None:
    before = snapshot(isolated_home)
    dry = setup(*CREDS, "--poetry", "--dry-run", url=private_index.url)
    assert f"config http-basic.private-pypi {USER} < (secret on stdin)" in dry.output
    assert snapshot(isolated_home) == before
    result = setup(*CREDS, "--poetry", url=private_index.url)
    assert result.exit_code == 0, result.output
    assert "ran " in result.output and "http-basic.private-pypi" in result.output
    assert PASSWORD not in result.output
    again = setup(*CREDS, "--poetry", url=private_index.url)
    assert "already set up: nothing changed" in again.output and "ran " not in again.output

    block = poetry_source_block("private-pypi", f"{private_index.url}simple/", "primary")
    assert block in _unindented(result.output)
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tiny-lib"]\n\n[tool.poetry]\npackage-mode = false\n\n' + block
    )
    env = {"POETRY_VIRTUALENVS_IN_PROJECT": "true", "POETRY_CACHE_DIR": str(tmp_path / "cache")}
    _run(["poetry", "lock", "--no-interaction"], project, **env)
    _run(["poetry", "install", "--no-interaction"], project, **env)
    assert list(project.glob(".venv/lib/python*/site-packages/tiny_lib/__init__.py"))

    check = run("check", "--index-url", private_index.url, "--package", "tiny-lib", *CREDS)
    assert "poetry: ok: locks tiny-lib==1.0.0" in check.output, check.output


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://127.0.0.1:8080/simple/", "http://127.0.0.1:8080/legacy"],
)
def test_a_named_index_gets_its_own_urls(url: str) -> None:
    urls = index_urls(url, "staging")
    assert urls.simple == "http://127.0.0.1:8080/staging/simple/"
    assert urls.upload == "http://127.0.0.1:8080/staging/legacy/"


@pytest.mark.parametrize("name", ["Staging", "simple", "legacy", "", "a/b", "../x", "x" * 64])
def test_bad_index_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="is not an index name"):
        index_urls("http://h/", name)


def test_setup_for_a_named_index_writes_its_urls(
    isolated_home: Path, secret_env: str, no_poetry: None
) -> None:
    result = setup(*CREDS, "--index", "staging")
    assert result.exit_code == 0, result.output
    staging = "http://127.0.0.1:8080/staging/simple/"
    pip_conf = (isolated_home / ".config/pip/pip.conf").read_text()
    assert f"index-url = {staging}\n" in pip_conf
    uv = tomllib.loads((isolated_home / ".config/uv/uv.toml").read_text())
    assert uv["index"][0]["url"] == staging
    pypirc = (isolated_home / ".pypirc").read_text()
    assert "repository = http://127.0.0.1:8080/staging/legacy/\n" in pypirc
    assert "poetry config repositories.private-pypi http://127.0.0.1:8080/staging/legacy/" in (
        result.output
    )


def test_setup_refuses_a_bad_index_name_and_changes_nothing(
    isolated_home: Path, secret_env: str, no_poetry: None
) -> None:
    before = snapshot(isolated_home)
    result = setup(*CREDS, "--index", "Prod/../x")
    assert result.exit_code != 0
    assert "'Prod/../x' is not an index name" in result.output
    assert snapshot(isolated_home) == before
