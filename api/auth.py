"""Bearer tokens in the Authorization header."""

from __future__ import annotations

from fastapi import Request


def bearer_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials.strip()
