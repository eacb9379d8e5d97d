"""`/_/oidc/audience`, `/_/oidc/mint-token`, `/_/oidc/burn-token`: the endpoints twine and
`uv publish --trusted-publishing` call, answered the way PyPI answers them (`oidc.py` decides).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from releasekit.errors import IndexServerError
from releasekit.server.idtoken import MAX_TOKEN_BYTES, TokenInvalid
from releasekit.server.oidc import MINTED, KeysUnavailable, PublisherDenied
from releasekit.server.problems import CONTENT_TYPE, problem, problem_body
from releasekit.server.tokens import find_token, load_tokens, revoke_token

if TYPE_CHECKING:
    from releasekit.server.state import IndexState

logger = logging.getLogger("releasekit.server.oidc")
MAX_BODY = MAX_TOKEN_BYTES + 1024


def _refused(status: int, detail: str, code: str, hint: str | None = None) -> Response:
    """A problem+json body that also carries PyPI's `errors` list: twine prints only that."""
    body = json.loads(problem_body(status, f"{detail} ({hint})" if hint else detail, code, hint))
    body["message"] = "Token request failed"
    body["errors"] = [{"code": code, "description": body["detail"]}]
    return Response(json.dumps(body), status_code=status, media_type=CONTENT_TYPE)


def _disabled() -> Response:
    return problem(
        404,
        "trusted publishing is not enabled on this index",
        "trusted-publishing-disabled",
        hint="the admin sets trusted_publishing = FILE in the server settings",
    )


async def audience(request: Request) -> Response:
    """`{"audience": ...}`: what the client asks its CI's OIDC provider to put in `aud`."""
    state: IndexState = request.app.state.index
    if state.publisher is None:
        return _disabled()
    return JSONResponse({"audience": state.publisher.config.audience})


async def _token_field(request: Request) -> str | Response:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return _refused(413, f"the request is larger than {MAX_BODY} bytes", "too-large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        return _refused(
            400,
            'the body must be a JSON object {"token": "<OIDC ID token>"}',
            "bad-request",
        )
    return token


async def mint_token(request: Request) -> Response:
    """Exchange a verified OIDC token for a short-lived API token scoped to the rule's projects."""
    state: IndexState = request.app.state.index
    publisher = state.publisher
    if publisher is None:
        return _disabled()
    token = await _token_field(request)
    if isinstance(token, Response):
        return token
    try:
        claims = await run_in_threadpool(publisher.claims, token)
        rule, new = await run_in_threadpool(publisher.mint, claims)
    except TokenInvalid as exc:
        return _refused(401, f"the OIDC token was refused: {exc.detail}", "invalid-token")
    except KeysUnavailable as exc:
        logger.error("trusted publishing: %s", exc)
        return _refused(
            401,
            "the OIDC token cannot be verified now: the issuer's keys are unavailable",
            "issuer-keys-unavailable",
            hint="retry later; the index admin sees the reason in the server log",
        )
    except PublisherDenied as exc:
        return _refused(
            403,
            str(exc),
            "no-trusted-publisher",
            hint="ask the index admin to add a [[publisher]] rule for this workflow",
        )
    except IndexServerError as exc:
        logger.error("trusted publishing: minting failed: %s", exc.message)
        return problem(503, "the token could not be stored", "token-store-failed")
    state.authorizer.reload_tokens()
    logger.info(
        "minted token %s for %s (%s)",
        new.token.id,
        ",".join(rule.projects),
        claims.get("job_workflow_ref", ""),
    )
    expires = new.token.expires.timestamp() if new.token.expires else None
    return JSONResponse({"success": True, "token": new.value, "expires": expires})


async def burn_token(request: Request) -> Response:
    """Revoke a minted token once the upload is done (uv calls this); 202 in every case."""
    state: IndexState = request.app.state.index
    publisher = state.publisher
    if publisher is None:
        return _disabled()
    token = await _token_field(request)
    if isinstance(token, Response):
        return token

    def burn(value: str) -> None:
        with publisher.tokens_lock():
            stored = find_token(load_tokens(publisher.tokens_file), value)
            # Only minted tokens can be burned this way: an admin's token is not at risk.
            if stored is not None and stored.description.startswith(MINTED):
                revoke_token(publisher.tokens_file, stored.id)

    await run_in_threadpool(burn, token)
    state.authorizer.reload_tokens()
    return JSONResponse({"success": True}, status_code=202)


OIDC_ROUTES = (
    Route("/_/oidc/audience", audience, methods=["GET"]),
    Route("/_/oidc/mint-token", mint_token, methods=["POST"]),
    Route("/_/oidc/burn-token", burn_token, methods=["POST"]),
)
