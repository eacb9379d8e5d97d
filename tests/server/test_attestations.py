"""PEP 740: attestations uploaded by the real twine (`--attestations`) are checked, stored and
served as provenance; the JSON and HTML pages link to it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx2

from releasekit.server.attestations import ProvenanceStore
from releasekit.server.localstore import LocalStorage
from tests.adversarial.attestation_helpers import attest
from tests.adversarial.server_process import running_index
from tests.server.conftest import make_wheel

BIN = Path(sys.executable).parent
JSON = "application/vnd.pypi.simple.v1+json"


def test_twine_uploads_attestations_served_as_provenance(tmp_path: Path) -> None:
    dists = tmp_path / "dists"
    dists.mkdir()
    wheel = make_wheel(dists, "attested", "1.0")
    plain = make_wheel(dists, "attested", "1.1")
    attestation = attest(wheel)
    with running_index(tmp_path, "-a", ".") as index:
        command = [
            str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
            "--repository-url", f"{index.url}/legacy/", "-u", "x", "-p", "x",
        ]  # fmt: skip
        sent = subprocess.run(
            [*command, "--attestations", str(wheel), str(attestation)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert subprocess.run([*command, str(plain)], capture_output=True).returncode == 0

        page = httpx2.get(f"{index.url}/simple/attested/", headers={"accept": JSON}).json()
        entries = {f["filename"]: f for f in page["files"]}
        assert entries[plain.name]["provenance"] is None
        link = entries[wheel.name]["provenance"]
        assert link == f"../../integrity/attested/1.0/{wheel.name}/provenance"
        html = httpx2.get(f"{index.url}/simple/attested/").text
        assert f'data-provenance="{link}"' in html

        answer = httpx2.get(f"{index.url}/simple/attested/{link}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/vnd.pypi.integrity.v1+json"
        provenance = answer.json()
        assert provenance["version"] == 1
        (bundle,) = provenance["attestation_bundles"]
        assert bundle["publisher"]["kind"] == "releasekit"  # not trusted publishing: the user
        (sent_attestation,) = bundle["attestations"]
        assert sent_attestation == json.loads(attestation.read_text())
        missing = httpx2.get(f"{index.url}/integrity/attested/1.1/{plain.name}/provenance")
        assert missing.status_code == 404 and missing.json()["code"] == "no-provenance"
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert digest in (tmp_path / "packages/.releasekit/provenance/index.json").read_text()


def test_two_writers_of_the_provenance_index_lose_no_entry(tmp_path: Path) -> None:
    """A promotion (another process) and this server both add provenance: both entries stay."""
    store = LocalStorage(tmp_path)
    store.prepare()
    server, promotion = ProvenanceStore(store), ProvenanceStore(store)
    promotion.add("a-1.0-py3-none-any.whl", "1" * 64, {"version": 1})
    server.add("b-1.0-py3-none-any.whl", "2" * 64, {"version": 1})
    expected = {"a-1.0-py3-none-any.whl": "1" * 64, "b-1.0-py3-none-any.whl": "2" * 64}
    assert server.index == expected
    assert json.loads(store.read_state("provenance/index.json") or b"{}") == expected
    promotion.reload()
    assert promotion.index == expected
