"""Bearer-token authentication for every HTTP endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from store.accounts import Accounts, AuthenticationFailed, Principal


def bearer_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials.strip()


def make_authenticator(accounts: Accounts) -> Callable[[Request], Awaitable[Principal | None]]:
    """Principal of the request's bearer token, or None when absent or refused."""

    async def authenticate(request: Request) -> Principal | None:
        bearer = bearer_of(request)
        if bearer is None:
            return None
        try:
            return await accounts.authenticate(bearer)
        except AuthenticationFailed:
            return None

    return authenticate
