"""The HTTP side of PEP 740: the upload's `attestations` field, and the provenance endpoint
`/integrity/<project>/<version>/<filename>/provenance` the pages link to (as PyPI's does).
"""

from __future__ import annotations

import hashlib
from typing import IO, TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from releasekit.server.attestations import (
    AttestationRefused,
    Publisher,
    check_attestation,
    parse_field,
    provenance_object,
)
from releasekit.server.auth import AuthError, Principal
from releasekit.server.oidc import MINTED
from releasekit.server.problems import problem
from releasekit.server.state import auth_problem, authorize, state_of
from releasekit.server.status_route import quarantine_problem
from releasekit.server.tokens import load_tokens

if TYPE_CHECKING:
    from releasekit.server.records import FileRecord
    from releasekit.server.state import IndexState

PROVENANCE_TYPE = "application/vnd.pypi.integrity.v1+json"


def _sha256(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    for block in iter(lambda: stream.read(1024 * 1024), b""):
        digest.update(block)
    stream.seek(0)
    return digest.hexdigest()


async def checked_attestations(
    fields: dict[str, str], filename: str | None, stream: IO[bytes]
) -> list[dict[str, Any]] | Response | None:
    """The upload's attestations, checked against the file's bytes before anything is stored;
    None without the field, a 400 problem when any is refused."""
    raw = fields.get("attestations")
    if raw is None or filename is None:
        return None
    try:
        attestations = parse_field(raw)
        sha256 = await run_in_threadpool(_sha256, stream)
        for attestation in attestations:
            check_attestation(attestation, filename, sha256)
    except AttestationRefused as exc:
        return problem(
            400,
            f"attestation refused: {exc.detail}",
            "bad-attestation",
            hint="upload the attestations made for this very file (PEP 740), or none",
        )
    return attestations


def publisher_of(state: IndexState, principal: Principal) -> Publisher:
    """GitHub for a token minted by trusted publishing (from its workflow), else the user."""
    if principal.token_id is not None:
        token = load_tokens(state.settings.effective_tokens_file).get(principal.token_id)
        if token is not None and token.description.startswith(MINTED):
            workflow_ref = token.description.removeprefix(MINTED)
            path, _, ref = workflow_ref.partition("@")
            repository, _, workflow = path.partition("/.github/workflows/")
            return Publisher(
                {"kind": "GitHub", "repository": repository, "workflow": workflow, "ref": ref}
            )
    return Publisher({"kind": "releasekit", "user": principal.name})


def store_provenance(
    state: IndexState,
    record: FileRecord,
    attestations: list[dict[str, Any]],
    principal: Principal,
) -> None:
    """Keep the provenance of the stored bytes and re-render the project's pages."""
    provenance = provenance_object(attestations, publisher_of(state, principal))
    state.pages.provenance.add(record.filename, record.sha256, provenance)
    state.pages.rebuild({record.project})


async def provenance_endpoint(request: Request) -> Response:
    """A file's PEP 740 provenance object; 404 when the file or its provenance is unknown."""
    state = state_of(request)
    params = request.path_params
    filename = params["filename"]
    source, record, waiting = state.find_file(filename)  # a base's, on a named index
    project = record.project if record else waiting.project if waiting else None
    if project is None:
        return problem(404, f"no file named {filename!r} here", "not-found")
    try:
        await authorize(request, "download", project)
    except AuthError as exc:
        return auth_problem(exc)
    refusal = quarantine_problem(source.catalogue.statuses.get(project), project)
    if refusal is not None:
        return refusal
    if waiting is not None:  # just after a start: index its project, as its page would
        await run_in_threadpool(source.index_project, project)
        record = source.catalogue.files.get(filename)
    if record is None or (record.project, record.version) != (params["project"], params["version"]):
        return problem(404, f"no file named {filename!r} here", "not-found")
    provenance = await run_in_threadpool(
        source.pages.provenance.get, record.filename, record.sha256
    )
    if provenance is None:
        return problem(404, f"{record.filename} was uploaded without attestations", "no-provenance")
    return JSONResponse(provenance, media_type=PROVENANCE_TYPE)
