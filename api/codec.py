"""The Temporal codec-server endpoints, so the Temporal UI can show decoded payloads to
authenticated operators: ``POST /codec/encode`` and ``POST /codec/decode``.

Protocol: the body is a ``temporal.api.common.v1.Payloads`` message in protobuf JSON
(``{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}``), the
answer the same shape. The UI calls from its own origin, so CORS is answered here for
the configured origins only (the router cannot install app-wide middleware). Point the
UI at it with ``codec.endpoint: http(s)://<api>/codec`` (``TEMPORAL_CODEC_ENDPOINT``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from api.errors import error_response

DEFAULT_UI_ORIGINS = ["http://localhost:8233"]
_ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"


class CodecForbidden(Exception):
    """Raised by an ``Authenticate`` for a caller who is authenticated but whose role may
    not see decoded payloads: answered 403, not 401 (a new token would not help)."""


# Returns who is calling (anything not None), None when unauthenticated (401), or raises
# ``CodecForbidden`` (403).
Authenticate = Callable[[Request], Awaitable[Any | None]]

log = structlog.get_logger(__name__)

_BASE64 = {"type": "string", "contentEncoding": "base64"}
PAYLOADS_SCHEMA = {
    "type": "object",
    "description": "temporal.api.common.v1.Payloads in protobuf JSON",
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "metadata": {"type": "object", "additionalProperties": _BASE64},
                    "data": _BASE64,
                },
            },
        },
    },
}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PAYLOADS_SCHEMA}},
    },
    "responses": {
        "200": {"description": "the converted payloads",
                "content": {"application/json": {"schema": PAYLOADS_SCHEMA}}},
        "400": {"description": "not a Payloads message (`not_payloads`), or a payload no key "
                               "decrypts (`undecryptable`)"},
        "401": {"description": "no valid token or codec session"},
        "403": {"description": "a valid token, but not an operator's or an administrator's"},
    },
}


def codec_router(
    codec: PayloadCodec,
    authenticate: Authenticate,
    allowed_origins: Sequence[str] = DEFAULT_UI_ORIGINS,
) -> APIRouter:
    origins = frozenset(o.rstrip("/") for o in allowed_origins)
    router = APIRouter(prefix="/codec", tags=["codec"])

    def cors_headers(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin", "").rstrip("/")
        if origin not in origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    async def preflight(request: Request) -> Response:
        headers = cors_headers(request)
        if not headers:
            return error_response(request, 403, "origin_not_allowed",
                                  "this origin may not call the codec endpoints")
        headers.update(
            {
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
                "Access-Control-Max-Age": "600",
            }
        )
        return Response(status_code=204, headers=headers)

    def endpoint(operation: str) -> Callable[[Request], Awaitable[Response]]:
        convert = codec.encode if operation == "encode" else codec.decode

        async def handle(request: Request) -> Response:
            headers = cors_headers(request)
            try:
                who = await authenticate(request)
            except CodecForbidden as refused:
                return error_response(request, 403, "forbidden", str(refused),
                                      headers=headers)
            if who is None:
                return error_response(request, 401, "unauthenticated",
                                      "authentication required: a bearer token or a codec "
                                      "session (/codec/session)", headers=headers)
            try:
                payloads = json_format.Parse(await request.body(), Payloads())
            except (json_format.ParseError, UnicodeDecodeError):
                return error_response(request, 400, "not_payloads",
                                      "the body is not a Payloads message in protobuf JSON",
                                      headers=headers)
            try:
                converted = await convert(list(payloads.payloads))
            except ValueError as error:  # PayloadDecryptionError: names key ids, no data
                return error_response(request, 400, "undecryptable", str(error),
                                      headers=headers)
            log.info(
                f"codec_{operation}",
                namespace=request.headers.get("x-namespace"),
                payloads=len(converted),
            )
            body = json_format.MessageToDict(Payloads(payloads=converted))
            return JSONResponse(body, headers=headers)

        return handle

    for operation in ("encode", "decode"):
        router.add_api_route(
            f"/{operation}", endpoint(operation), methods=["POST"], name=f"codec_{operation}",
            summary=f"{operation.capitalize()} Temporal payloads (operators, administrators)",
            openapi_extra=_OPENAPI)
        router.add_api_route(
            f"/{operation}", preflight, methods=["OPTIONS"], include_in_schema=False
        )
    return router
