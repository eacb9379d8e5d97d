"""POST `/` and `/legacy/`: the HTTP side of uploads (`upload.py` holds the rules) and remove_pkg.

The body is counted as it arrives: a Content-Length over the limit is refused before reading,
and a chunked or lying body is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from releasekit.server.attestation_route import checked_attestations, store_provenance
from releasekit.server.auth import AuthError
from releasekit.server.maintenance import remove_files
from releasekit.server.metadata import ArchiveError, canonical_version, normalize, parse_filename
from releasekit.server.problems import problem
from releasekit.server.state import auth_problem, authorize, state_of
from releasekit.server.status_route import closed_problem
from releasekit.server.upload import (
    UploadRefused,
    check_fields,
    collect_fields,
    receive_upload,
    storage_refusal,
)

if TYPE_CHECKING:
    from starlette.types import Message

    from releasekit.server.state import IndexState

logger = logging.getLogger("releasekit.server")

# Room for the form fields that travel with the file (metadata, description...).
FORM_OVERHEAD = 1024 * 1024


class _BodyTooLarge(Exception):
    pass


class _WholeFormParser(MultiPartParser):
    """Starlette's parser, refusing a body cut before its closing boundary: Starlette would
    return the parts so far and leave the temp file of the cut part open (found by the
    hostile-upload suite: an unclosed file per truncated request)."""

    ended = False

    def on_end(self) -> None:
        self.ended = True

    async def parse(self) -> FormData:
        form = await super().parse()
        if not self.ended:
            await form.close()
            for spooled in self._files_to_close_on_error:
                spooled.close()
            raise MultiPartException("the body ends before the closing boundary")
        return form


async def _read_form(request: Request) -> FormData:
    """The form of an upload: a multipart body must be complete; other bodies as Starlette."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        return await request.form(max_files=2, max_fields=2000)
    async with contextlib.aclosing(request.stream()) as stream:
        parser = _WholeFormParser(request.headers, stream, max_files=2, max_fields=2000)
        return await parser.parse()


def _too_large(limit: int) -> Response:
    return problem(
        413,
        f"the upload is larger than this server's limit of {limit} bytes",
        "too-large",
        hint="ask the admin to raise --max-upload-size",
    )


async def upload_endpoint(request: Request) -> Response:
    """Dispatch on `:action`: file_upload or remove_pkg. Never redirects (twine aborts)."""
    state = state_of(request)
    limit = state.settings.max_upload_size
    declared = request.headers.get("content-length", "")
    if re.fullmatch(r"[0-9]{1,20}", declared) and int(declared) > limit + FORM_OVERHEAD:
        return _too_large(limit)
    try:
        await authorize(request, "update", None)
    except AuthError as exc:
        if exc.status != 403:  # no point reading a body we will refuse anyway
            return auth_problem(exc)
    received = 0
    inner_receive = request.receive

    async def counting_receive() -> Message:
        nonlocal received
        message = await inner_receive()
        received += len(message.get("body", b""))
        if received > limit + FORM_OVERHEAD:
            raise _BodyTooLarge
        return message

    counted = Request(request.scope, counting_receive)
    try:
        form = await _read_form(counted)
    except MultiPartException as exc:
        return problem(
            400,
            f"the upload is not a valid multipart form: {exc.message}",
            "bad-form",
            hint="send multipart/form-data as twine, uv publish or curl -F do",
        )
    except _BodyTooLarge:
        return _too_large(limit)
    except OSError as exc:  # the form spools files to the temp directory, which may be full
        refusal = storage_refusal(exc)
        if isinstance(refusal, OSError):
            raise
        return problem(refusal.status, refusal.message, refusal.code, refusal.hint)
    except HTTPException as exc:
        return problem(
            400,
            f"the upload is not a valid multipart form: {exc.detail}",
            "bad-form",
            hint="send multipart/form-data as twine, uv publish or curl -F do",
        )
    try:
        try:
            fields = collect_fields((k, v) for k, v in form.multi_items() if isinstance(v, str))
        except UploadRefused as exc:
            return problem(exc.status, exc.message, exc.code, exc.hint)
        action = fields.get(":action", "")
        if action == "file_upload":
            content = form.get("content")
            return await _file_upload(
                request, state, fields, content if isinstance(content, UploadFile) else None
            )
        if action == "remove_pkg":
            return await _remove_pkg(request, state, fields)
        if action in ("submit", "doc_upload", "verify"):
            return problem(
                410,
                f":action={action} is not supported by this index",
                "gone",
                hint="upload distributions with :action=file_upload",
            )
        return problem(
            400,
            f"unknown :action {action!r}",
            "bad-action",
            hint="use :action=file_upload (or remove_pkg as an admin)",
        )
    finally:
        await form.close()


async def _file_upload(
    request: Request, state: IndexState, fields: dict[str, str], content: UploadFile | None
) -> Response:
    name = fields.get("name")
    filename = raw_filename(content) if content is not None else None
    try:
        check_fields(fields)
        project = normalize(name) if name else None
        if project is None and filename:
            project = parse_filename(filename).project
    except (ArchiveError, UploadRefused):
        project = None  # receive_upload refuses the form with the full message
    try:
        principal = await authorize(request, "update", project)
    except AuthError as exc:
        return auth_problem(exc)
    closed = closed_problem(state.catalogue.statuses.get(project or ""), project or "")
    if closed is not None:
        return closed
    if content is None:
        filename = None
    attestations = await checked_attestations(
        fields, filename, content.file if content is not None else io.BytesIO()
    )
    if isinstance(attestations, Response):
        return attestations
    try:
        outcome = await run_in_threadpool(
            receive_upload,
            state.storage,
            state.catalogue,
            fields,
            filename,
            content.file if content is not None else io.BytesIO(),
            max_size=state.settings.max_upload_size,
            overwrite=state.overwrite,
        )
    except UploadRefused as exc:
        state.metrics.uploads.labels(project or "-", exc.code).inc()
        return problem(exc.status, exc.message, exc.code, exc.hint)
    record = outcome.record
    if attestations is not None:  # before the pages: another worker's next render links it
        await run_in_threadpool(store_provenance, state, record, attestations, principal)
    if outcome.created:
        await run_in_threadpool(_publish, state, {record.project})
    state.metrics.uploads.labels(record.project, "stored" if outcome.created else "identical").inc()
    return JSONResponse(
        {
            "filename": record.filename,
            "project": record.project,
            "version": record.version,
            "sha256": record.sha256,
            "stored": outcome.created,
            "detail": "stored" if outcome.created else "identical file already stored",
        }
    )


async def _remove_pkg(request: Request, state: IndexState, fields: dict[str, str]) -> Response:
    name, version = fields.get("name"), fields.get("version")
    if not name or not version:
        return problem(400, "remove_pkg needs the name and version fields", "bad-form")
    project = normalize(name)
    try:
        await authorize(request, "admin", project)
    except AuthError as exc:
        return auth_problem(exc)
    try:
        wanted = canonical_version(version)
    except ArchiveError as exc:
        return problem(400, exc.message, "bad-version", exc.hint)
    if project in state.catalogue.pending_projects:
        await run_in_threadpool(state.index_project, project)  # its files' versions are known then
    records = [r for r in state.catalogue.projects.get(project, ()) if r.version == wanted]
    if not records:
        return problem(404, f"{project} {wanted} has no files on this index", "not-found")
    filenames = [r.filename for r in records]
    await run_in_threadpool(remove_files, state.storage, state.catalogue, state.pages, filenames)
    await run_in_threadpool(state.sync)  # to past the removals' own log entries
    return JSONResponse({"removed": [r.filename for r in records]})


def _publish(state: IndexState, changed: set[str]) -> None:
    """Re-render after a stored upload; the pages on disk are a cache, so failing to write
    them (a full disk) leaves the upload stored and listed from memory, and answered 200."""
    # Up to the end of the change log first: the pages written include every file logged
    # before this one, so they never take off a page a file another worker just stored.
    state.sync(changed)


# `filename="..."` (quoted, with backslash escapes) or a bare token, in a Content-Disposition.
_FILENAME_PARAM = re.compile(r';\s*filename\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.IGNORECASE)


def raw_filename(content: UploadFile) -> str | None:
    """The filename exactly as the client sent it. python-multipart keeps only the last part
    of `C:\\dir\\file` (an old browser habit); a path must be refused, never stripped."""
    disposition = content.headers.get("content-disposition", "")
    match = _FILENAME_PARAM.search(disposition)
    if match is None:
        return content.filename
    value = match.group(1).strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace("\\\\", "\\").replace('\\"', '"')
    try:  # Starlette decodes header bytes as latin-1; the form's charset is UTF-8
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
