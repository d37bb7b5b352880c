"""A browser session for the codec endpoint, so the Temporal UI can decode payloads.

The Temporal UI sends an Authorization header to a codec server only behind OIDC. Without
it, an operator opens ``/codec/session`` on the API once, gives an operator token, and
gets a short-lived token of their own in an HttpOnly cookie scoped to ``/codec``; the UI,
with "include cross-origin credentials" on, sends it with every decode.
"""

from __future__ import annotations

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
endpoint only; in the Temporal UI, open the codec server settings, set this endpoint and
turn on "include cross-origin credentials".</p>
<form method="post"><input name="token" type="password" size="80" autocomplete="off">
<button>Start session</button></form>"""


def codec_credentials(request: Request) -> str | None:
    """The bearer token of a codec call: the Authorization header, else the session."""
    return bearer_of(request) or request.cookies.get(COOKIE)


def codec_session_router(accounts: Accounts) -> APIRouter:
    router = APIRouter(prefix="/codec", tags=["codec"])

    @router.get("/session", response_class=HTMLResponse, include_in_schema=False)
    async def session_form() -> HTMLResponse:
        return HTMLResponse(_FORM, headers={"Cache-Control": "no-store"})

    @router.post("/session", status_code=204, summary="Start a codec session (cookie)",
                 description="Body: `token=<operator token>` (a form post).",
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/x-www-form-urlencoded": {"schema": {
                         "type": "object", "required": ["token"],
                         "properties": {"token": {"type": "string", "minLength": 1,
                                                  "maxLength": 200}}}}}}})
    async def start_session(request: Request) -> Response:
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
        issued = await accounts.create_token(principal.user_id, SESSION_LIFETIME)
        response = Response(status_code=204)
        response.set_cookie(COOKIE, issued.bearer, max_age=int(SESSION_LIFETIME.total_seconds()),
                            path="/codec", httponly=True, samesite="lax")
        return response

    return router
