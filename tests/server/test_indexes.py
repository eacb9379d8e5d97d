"""Named indexes in process: the read API under /<index>/, bases, prefixes, ACL messages, tokens
scoped to indexes, and the admin commands with --index (each refusal changes nothing)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from releasekit.cli import cli
from releasekit.server.indexes import REGISTRY_NAME, IndexConfig, create_index, set_acl
from releasekit.server.localstore import LocalStorage
from releasekit.server.tokens import create_token, load_tokens
from tests.server.conftest import Dists, Users, make_wheel, snapshot, upload_form, wait_for

JSON = "application/vnd.pypi.simple.v1+json"
WHEEL = "alpha-1.0-py3-none-any.whl"


@pytest.fixture
def registry(packages: Path) -> LocalStorage:
    """prod, and staging inheriting prod, both without ACL entries."""
    root = LocalStorage(packages)
    root.prepare()
    create_index(root, IndexConfig("prod"))
    create_index(root, IndexConfig("staging", bases=("prod",)))
    return root


def post(client: TestClient, url: str, path: Path, **kwargs: object) -> int:
    data, files = upload_form(path)
    return client.post(url, data=data, files=files, **kwargs).status_code  # type: ignore[arg-type]


def test_a_named_index_serves_the_whole_read_api(
    registry: LocalStorage, make_client: Callable[..., TestClient], dists: Dists, packages: Path
) -> None:
    client = make_client()
    assert post(client, "/staging/legacy/", dists.path(WHEEL)) == 200
    assert post(client, "/staging/", dists.path("alpha-1.0.tar.gz")) == 200  # POST / works too
    assert post(client, "/staging", dists.path("alpha-1.1-py3-none-any.whl")) == 200  # no redirect
    assert sorted(p.name for p in (packages / ".indexes" / "staging").glob("alpha*")) == [
        "alpha-1.0-py3-none-any.whl",
        "alpha-1.0.tar.gz",
        "alpha-1.1-py3-none-any.whl",
    ]
    assert client.get("/simple/alpha/").status_code == 404  # the default index has none
    page = client.get("/staging/simple/alpha/", headers={"accept": JSON})
    assert page.headers["content-type"] == JSON and page.headers["vary"] == "Accept"
    files = {f["filename"]: f for f in page.json()["files"]}
    assert files[WHEEL]["url"] == f"../../packages/{WHEEL}"
    assert files[WHEEL]["core-metadata"]
    html = client.get("/staging/simple/alpha/", headers={"accept": "text/html"})
    assert f'href="../../packages/{WHEEL}#sha256=' in html.text
    assert client.get("/staging/simple/alpha/?format=text/plain").status_code == 406
    got = client.get(f"/staging/packages/{WHEEL}")
    assert got.content == dists.path(WHEEL).read_bytes()
    assert client.get(f"/staging/packages/{WHEEL}", headers={"if-none-match": got.headers["etag"]}).status_code == 304  # fmt: skip
    part = client.get(f"/staging/packages/{WHEEL}", headers={"range": "bytes=0-1"})
    assert (part.status_code, part.content) == (206, b"PK")
    metadata = client.get(f"/staging/packages/{WHEEL}.metadata")
    assert metadata.text.startswith("Metadata-Version: 2.1\nName: alpha\n")
    assert client.head(f"/staging/packages/{WHEEL}").headers["content-length"] == str(len(got.content))  # fmt: skip
    assert WHEEL in client.get("/staging/packages/").text  # --find-links
    assert "/staging/legacy/" in client.get("/staging/").text  # the welcome page
    assert client.get("/root/simple/").text == client.get("/simple/").text  # root by name


def test_redirects_keep_the_index_and_the_url_prefix(
    registry: LocalStorage, make_client: Callable[..., TestClient], dists: Dists
) -> None:
    client = make_client(url_prefix="/pypi/")
    assert post(client, "/pypi/staging/legacy/", dists.path(WHEEL)) == 200
    moved = client.get("/pypi/staging/simple/Alpha", follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (301, "/pypi/staging/simple/alpha/")
    bare = client.get("/pypi/staging", follow_redirects=False)
    assert (bare.status_code, bare.headers["location"]) == (301, "/pypi/staging/")
    assert client.get("/pypi/staging/simple/alpha/").status_code == 200
    assert client.get("/staging/simple/alpha/").status_code == 404  # outside the prefix
    assert "http://testserver/pypi/staging/legacy/" in client.get("/pypi/staging/").text


def test_bases_answer_only_for_names_the_index_lacks(
    registry: LocalStorage, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client()
    old, new, other = (
        make_wheel(tmp_path, "alpha", "1.0"),
        make_wheel(tmp_path, "alpha", "2.0"),
        make_wheel(tmp_path, "gamma", "1.0"),
    )
    assert post(client, "/prod/legacy/", old) == 200
    assert post(client, "/prod/legacy/", other) == 200
    names = client.get("/staging/simple/", headers={"accept": JSON}).json()["projects"]
    assert names == [{"name": "alpha"}, {"name": "gamma"}]
    assert client.get(f"/staging/packages/{old.name}").content == old.read_bytes()
    assert post(client, "/staging/legacy/", new) == 200
    page = client.get("/staging/simple/alpha/", headers={"accept": JSON}).json()
    assert [f["filename"] for f in page["files"]] == [new.name]  # never falls through
    assert client.get(f"/staging/packages/{old.name}").status_code == 404
    assert client.get(f"/staging/packages/{other.name}").status_code == 200  # gamma still is
    assert client.get(f"/prod/packages/{new.name}").status_code == 404  # no way back up


def test_an_unknown_index_is_a_404_naming_the_known_ones(
    registry: LocalStorage, make_client: Callable[..., TestClient], dists: Dists, packages: Path
) -> None:
    client = make_client()
    indexes = client.app.state.indexes  # type: ignore[attr-defined]
    for state in (indexes.root, *indexes.states.values()):
        state.catalogue.flush()  # the poller's own save must not land between the snapshots
    before = snapshot(packages)
    for method, path in (("GET", "/qa/simple/"), ("GET", "/qa/packages/x.whl"), ("POST", "/qa/legacy/")):  # fmt: skip
        response = client.request(method, path)
        assert response.status_code == 404
        assert (
            response.json()["detail"]
            == "there is no index 'qa'; known indexes: root, prod, staging"
        )
    data, files = upload_form(dists.path(WHEEL))
    assert client.post("/qa/legacy/", data=data, files=files).status_code == 404
    long = client.get("/" + "a" * 3000 + "/simple/").json()["detail"]
    assert len(long) < 200 and "..." in long  # never echoes a huge name
    assert client.get("/favicon.ico").json()["detail"] == "nothing at /favicon.ico"
    assert client.get("/staging/metrics").status_code == 404  # root routes stay at the root
    assert snapshot(packages) == before


def test_a_token_scoped_to_one_index_is_refused_on_another(
    registry: LocalStorage, make_client: Callable[..., TestClient], users: Users, packages: Path
) -> None:
    tokens = packages / ".releasekit" / "tokens.json"
    token = create_token(tokens, owner="ci", actions=["list", "download"], indexes=["staging"])
    # A token made before indexes (no `indexes` field) works on every index.
    old = create_token(tokens, owner="ci", actions=["list"])
    stored = json.loads(tokens.read_text())["tokens"]
    assert [("indexes" in t) for t in stored] == [True, False]
    client = make_client(passwords=users.passwords, authenticate="list,download,update")
    for path in ("/simple/", "/prod/simple/", "/staging/simple/"):
        assert client.get(path, auth=("__token__", old.value)).status_code == 200
    auth = ("__token__", token.value)
    assert client.get("/staging/simple/", auth=auth).status_code == 200
    for path in ("/prod/simple/", "/simple/"):
        refused = client.get(path, auth=auth)
        assert refused.status_code == 403
        index = "prod" if path.startswith("/prod") else "root"
        assert refused.json()["detail"] == (
            f"token {token.token.id} is scoped to the indexes staging; it cannot list projects "
            f"on the index {index!r}"
        )
    set_acl(registry, "prod", "reader", frozenset({"read"}))
    # The running app picks the ACL up from the registry within a poll.
    wait_for(lambda: client.get("/prod/simple/", auth=users.credentials["ci"]).status_code == 403)
    assert client.get("/prod/simple/").status_code == 401
    refused = client.get("/prod/simple/", auth=users.credentials["ci"])
    assert refused.json()["detail"] == (
        "user 'ci' may not list projects on the index 'prod' (its ACL grants read to reader); "
        "an admin can grant it with `releasekit server index acl prod ci read`"
    )
    assert client.get("/prod/simple/", auth=users.credentials["reader"]).status_code == 200
    assert client.get("/prod/simple/", auth=users.credentials["root"]).status_code == 200


def test_acl_and_token_commands(registry: LocalStorage, packages: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["server", *args, "-D", str(packages)])
        return result.exit_code, result.output

    code, out = run("index", "acl", "staging", "ci", "read,upload")
    assert (code, out) == (0, "index staging: ci may now read,upload; acl=ci=read,upload\n")
    assert run("index", "acl", "staging", ":anonymous:", "read")[0] == 0
    assert run("index", "acl", "root", ":authenticated:", "read")[0] == 0
    assert run("index", "list")[1].splitlines() == [
        "root\t(default: /simple/)\tacl=:authenticated:=read",
        "prod\tbases=-\tacl=-",
        "staging\tbases=prod\tacl=:anonymous:=read; ci=read,upload",
    ]
    assert run("index", "acl", "staging", ":anonymous:", "none")[0] == 0
    registry_file = packages / ".releasekit" / REGISTRY_NAME
    before = registry_file.read_bytes()
    for args, message in (
        (("staging", "ci", "read,write"), "unknown index actions write"),
        (("staging", "__token__", "read"), "'__token__' cannot be named in an ACL"),
        (("staging", "a b", "read"), "'a b' cannot be named in an ACL"),
        (("qa", "ci", "read"), "there is no index 'qa'"),
        (("../x", "ci", "read"), "'../x' cannot name an index"),
    ):
        code, out = run("index", "acl", *args)
        assert code == 1 and message in out, out
    assert registry_file.read_bytes() == before
    assert json.loads(before)["indexes"][2]["acl"] == {"ci": ["read", "upload"]}

    code, out = run("token", "create", "--owner", "ci", "--index", "staging", "--index", "root")
    assert code == 0, out
    (token,) = load_tokens(packages / ".releasekit" / "tokens.json").values()
    assert token.indexes == ("root", "staging")
    assert "indexes=root,staging" in run("token", "list")[1]
    tokens_before = (packages / ".releasekit" / "tokens.json").read_bytes()
    code, out = run("token", "create", "--owner", "ci", "--index", "Bad/..")
    assert code == 1 and "'Bad/..' cannot name an index" in out
    assert (packages / ".releasekit" / "tokens.json").read_bytes() == tokens_before


def test_admin_commands_take_an_index(
    registry: LocalStorage, make_client: Callable[..., TestClient], dists: Dists, packages: Path
) -> None:
    client = make_client()
    assert post(client, "/staging/legacy/", dists.path(WHEEL)) == 200
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["server", *args, "-D", str(packages)])
        return result.exit_code, result.output

    indexes = client.app.state.indexes  # type: ignore[attr-defined]
    for state in (indexes.root, *indexes.states.values()):
        state.catalogue.flush()  # the poller's own save must not land between the snapshots
    before = snapshot(packages)
    code, out = run("yank", "alpha", "1.0", "--index", "qa")
    assert code == 1 and "there is no index 'qa'" in out and "root, prod, staging" in out
    code, out = run("yank", "alpha", "1.0")  # the default index has no alpha
    assert code == 1
    assert snapshot(packages) == before
    assert run("yank", "alpha", "1.0", "--index", "staging", "--reason", "broken") == (
        0,
        f"yanked {WHEEL}\n",
    )

    def yanked() -> object:
        page = client.get("/staging/simple/alpha/", headers={"accept": JSON}).json()
        return page["files"][0]["yanked"]

    wait_for(lambda: yanked() == "broken")
    assert run("status", "alpha", "archived", "--index", "staging")[0] == 0
    assert run("reindex", "--index", "staging")[1].endswith("indexed 1 files in 1 projects\n")
    assert run("remove", "alpha", "1.0", "--index", "staging") == (0, f"removed {WHEEL}\n")
    wait_for(lambda: client.get("/staging/simple/alpha/").status_code == 404)


def test_a_route_wins_over_an_index_of_the_same_name(
    registry: LocalStorage, make_client: Callable[..., TestClient]
) -> None:
    create_index(registry, IndexConfig("qa"))  # allowed: only this server answers /qa itself
    client = make_client(health_endpoint="/qa")
    assert client.get("/qa").text == "ok\n"
    assert client.get("/qa/simple/").json()["detail"] == "nothing at /qa/simple/"
    assert client.get("/prod/simple/").status_code == 200


def test_index_aware_routes_get_the_state_or_a_404_naming_the_indexes(
    registry: LocalStorage, make_client: Callable[..., TestClient]
) -> None:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from releasekit.server.acl import authorize_index, index_state

    async def probe(request: Request) -> Response:
        # What a route such as the promote one does: the state, then the ACL.
        name = request.query_params["index"]
        state = index_state(request, name)
        principal = await authorize_index(request, name, "read", None)
        return JSONResponse({"index": state.name, "who": principal.kind})

    client = make_client()
    client.app.add_route("/probe", probe)  # type: ignore[attr-defined]
    assert client.get("/probe?index=staging").json() == {"index": "staging", "who": "anonymous"}
    assert client.get("/probe?index=root").json() == {"index": "root", "who": "anonymous"}
    unknown = client.get("/probe?index=qa")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown-index"
    assert unknown.json()["detail"] == (
        "there is no index 'qa'; known indexes: root, prod, staging "
        "(create it with `releasekit server index create NAME`)"
    )


def test_nginx_routes_know_named_indexes(
    registry: LocalStorage, make_client: Callable[..., TestClient], users: Users, dists: Dists
) -> None:
    set_acl(registry, "staging", "reader", frozenset({"read"}))
    set_acl(registry, "prod", "ci", frozenset({"read", "upload"}))
    client = make_client(
        authenticate="update,download,list",
        passwords=users.passwords,
        accel_redirect="/_releasekit_files/",
    )
    assert post(client, "/prod/legacy/", dists.path(WHEEL), auth=users.credentials["ci"]) == 200

    def gate(uri: str, who: str | None) -> int:
        auth = users.credentials[who] if who else None
        return client.get("/-/auth", headers={"X-Original-URI": uri}, auth=auth).status_code

    assert gate("/staging/simple/alpha/", "reader") == 204
    assert gate("/staging/simple/", None) == 401
    assert gate("/staging/simple/", "ci") == 403  # staging's ACL, not the server-wide role
    assert gate("/prod/simple/", "reader") == 403
    for hostile in ("/qa/simple/", "/staging/packages/x.whl", "/Staging/simple/", "/../simple/"):
        assert gate(hostile, "reader") == 403, hostile
    # A file inherited from prod: nginx is sent to prod's directory under the packages one.
    served = client.get(f"/staging/packages/{WHEEL}", auth=users.credentials["reader"])
    assert served.headers["x-accel-redirect"] == f"/_releasekit_files/.indexes/prod/{WHEEL}"


def test_overwrite_is_an_index_setting(
    registry: LocalStorage, make_client: Callable[..., TestClient], packages: Path, tmp_path: Path
) -> None:
    """staging may take a rebuilt file under the same name; prod (following the server's
    default, no --overwrite) refuses it and keeps the first bytes."""
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = make_wheel(tmp_path / "first", "alpha", "1.0")
    second = make_wheel(tmp_path / "second", "alpha", "1.0", payload=b"# rebuilt\n")
    result = CliRunner().invoke(
        cli, ["server", "index", "overwrite", "staging", "on", "-D", str(packages)]
    )
    assert (result.exit_code, result.output) == (0, "index staging: overwrite on\n")
    client = make_client()
    for index in ("staging", "prod"):
        assert post(client, f"/{index}/legacy/", first) == 200
    assert post(client, "/staging/legacy/", second) == 200
    served = packages / ".indexes" / "staging" / first.name
    assert served.read_bytes() == second.read_bytes()
    before = snapshot(packages / ".indexes" / "prod")
    data, files = upload_form(second)
    refused = client.post("/prod/legacy/", data=data, files=files)
    assert refused.status_code == 409, refused.text
    assert "releasekit server index overwrite NAME on" in refused.json()["hint"]
    assert snapshot(packages / ".indexes" / "prod") == before
    result = CliRunner().invoke(
        cli, ["server", "index", "overwrite", "nowhere", "on", "-D", str(packages)]
    )
    assert result.exit_code == 1 and "there is no index 'nowhere'" in result.output
    assert (
        json.loads((packages / ".releasekit" / REGISTRY_NAME).read_bytes())["indexes"][1][
            "overwrite"
        ]
        is True
    )
