"""Bearer tokens in the Authorization header, and the one way the API authenticates
them: failures throttled by the client's address, never by the token they name."""

from __future__ import annotations

from fastapi import Request

from api.errors import ApiError
from store.accounts import Accounts, Principal, TooManyFailures


def bearer_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials.strip()


def source_of(request: Request) -> str:
    """The client's address, as the server sees it (behind a proxy, run uvicorn with
    ``--proxy-headers`` and ``--forwarded-allow-ips`` so that it is the client's)."""
    return request.client.host if request.client else "unknown"


async def authenticate(accounts: Accounts, request: Request, credentials: str) -> Principal:
    """``Accounts.authenticate`` for this request; a throttled source is a 429 with
    ``Retry-After``, other failures raise ``AuthenticationFailed`` for the caller to
    answer."""
    try:
        return await accounts.authenticate(credentials, source=source_of(request))
    except TooManyFailures as throttled:
        raise ApiError(429, "too_many_failures", str(throttled),
                       retry_after=throttled.retry_after.total_seconds()) from None
