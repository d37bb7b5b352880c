"""A browser session for the codec endpoint, so the Temporal UI can decode payloads.

The Temporal UI sends an Authorization header to a codec server only behind OIDC. Without
it, an operator opens ``/codec/session`` on the API once, gives an operator token, and
gets a short-lived token of their own in an HttpOnly cookie scoped to ``/codec``; the UI,
with "include cross-origin credentials" on, sends it with every decode. A browser's form
post gets a page that confirms it and says what to do next in the UI; an API client
gets 204.
"""

from __future__ import annotations

import html
from datetime import timedelta
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import authenticate, bearer_of
from api.errors import ApiError
from store.accounts import Accounts, AuthenticationFailed, UserRole

COOKIE = "homeward_codec"
SESSION_LIFETIME = timedelta(hours=8)
CODEC_ROLES = frozenset({UserRole.OPERATOR, UserRole.ADMINISTRATOR})

_FORM = """<!doctype html><title>homeward: decode payloads in the Temporal UI</title>
<h1>Decode payloads in the Temporal UI</h1>
<p>Paste an operator or administrator token. You get an 8-hour session for the codec
endpoint only, and the next page says what to do in the Temporal UI.</p>
<form method="post"><input name="token" type="password" size="80" autocomplete="off">
<button>Start session</button></form>"""

_REFUSED = """<!doctype html><title>homeward: codec session refused</title>
<h1>No codec session</h1><p>{reason}</p><p><a href="session">Try again</a></p>"""

# Temporal UI 2.54 shows the credentials switch only once the browser setting is chosen.
_STARTED = """<!doctype html><title>homeward: codec session started</title>
<h1>Codec session started</h1>
<p>Until {until} UTC the Temporal UI in this browser can decode payloads through
<code>{endpoint}</code>; the session opens nothing else.</p>
<h2>Next, in the Temporal UI</h2>
<p>Reload a workflow's page: its inputs and results show decoded. If they still show
encrypted (the UI was not started with this endpoint and its credentials setting), open
the codec server settings, choose "Use my browser setting and ignore Cluster-level
setting", enter <code>{endpoint}</code> as the endpoint, turn on "Include cross-origin
credentials" and apply.</p>"""


def _wants_page(request: Request) -> bool:
    """A browser's form post (it asks for HTML); API clients ask for anything else."""
    return "text/html" in request.headers.get("accept", "")


def codec_credentials(request: Request) -> str | None:
    """The bearer token of a codec call: the Authorization header, else the session."""
    return bearer_of(request) or request.cookies.get(COOKIE)


def codec_session_router(accounts: Accounts) -> APIRouter:
    router = APIRouter(prefix="/codec", tags=["codec"])

    @router.get("/session", response_class=HTMLResponse, include_in_schema=False)
    async def session_form() -> HTMLResponse:
        return HTMLResponse(_FORM, headers={"Cache-Control": "no-store"})

    @router.post("/session", status_code=204, summary="Start a codec session (cookie)",
                 description="Body: `token=<operator token>` (a form post). A request "
                 "that accepts `text/html` (a browser) gets a page saying what to do next "
                 "instead: 200 on success, the error's status with the reason otherwise.",
                 responses={200: {"description": "the session started (browsers)",
                                  "content": {"text/html": {}}}},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/x-www-form-urlencoded": {"schema": {
                         "type": "object", "required": ["token"],
                         "properties": {"token": {"type": "string", "minLength": 1,
                                                  "maxLength": 200}}}}}}})
    async def start_session(request: Request) -> Response:
        try:
            principal = await _operator(request)
        except ApiError as error:
            if not _wants_page(request) or error.status == 429:
                raise
            page = _REFUSED.format(reason=html.escape(error.message))
            return HTMLResponse(page, status_code=error.status,
                                headers={"Cache-Control": "no-store"})
        issued = await accounts.create_token(principal.user_id, SESSION_LIFETIME)
        if _wants_page(request):
            endpoint = str(request.url_for("start_session")).removesuffix("/session")
            page = _STARTED.format(until=f"{issued.expires_at:%Y-%m-%d %H:%M}",
                                   endpoint=html.escape(endpoint))
            response: Response = HTMLResponse(page, headers={"Cache-Control": "no-store"})
        else:
            response = Response(status_code=204)
        response.set_cookie(COOKIE, issued.bearer, max_age=int(SESSION_LIFETIME.total_seconds()),
                            path="/codec", httponly=True, samesite="lax")
        return response

    async def _operator(request: Request):
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token or len(token) > 200:
            raise ApiError(422, "invalid_request", "send the form field token=<your token>")
        try:
            principal = await authenticate(accounts, request, token)
        except AuthenticationFailed as refused:
            raise ApiError(401, "unauthenticated", str(refused)) from None
        if principal.role not in CODEC_ROLES:
            raise ApiError(403, "forbidden", "only operators and administrators decode "
                                             "payloads")
        return principal

    return router
