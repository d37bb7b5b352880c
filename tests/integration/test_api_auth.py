"""Bearer tokens through HTTP: a missing, malformed, unknown, expired or revoked token is
a 401 with a machine-readable code; repeated failures from one address are a 429 with
Retry-After for that address only, never a lockout of the token they name. No Temporal
needed: the inbox is answered from the read models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from api_without_temporal import services_without_temporal

from api.app import create_app
from store.accounts import Accounts, OrgKind, UserRole


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def api(engine):
    clock = Clock()
    accounts = Accounts(engine, clock=clock, max_failures=3,
                        failure_window=timedelta(minutes=15))
    await accounts.add_org("mission-rs", OrgKind.SENDING_MISSION, "Sending", "RS")
    await accounts.add_user("coord.rs", "mission-rs", UserRole.COORDINATOR)
    services = services_without_temporal(engine, accounts)
    app = create_app(services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://homeward.test") as http:
        http.app = app
        yield http, accounts, clock


def client_at(app, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                             base_url="http://homeward.test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_missing_and_malformed_tokens_are_refused(api):
    http, _, _ = api
    for headers, code in (({}, "unauthenticated"),
                          ({"Authorization": "Basic abc"}, "unauthenticated"),
                          (bearer("not-a-token"), "token_malformed"),
                          (bearer("hw_" + "0" * 32 + "_" + "a" * 43), "token_unknown")):
        response = await http.get("/tasks", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == code
        assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_a_token_works_until_it_expires(api):
    http, accounts, clock = api
    issued = await accounts.create_token("coord.rs", timedelta(hours=1))
    assert (await http.get("/tasks", headers=bearer(issued.bearer))).status_code == 200
    clock.now += timedelta(hours=1)
    expired = await http.get("/tasks", headers=bearer(issued.bearer))
    assert expired.status_code == 401
    assert expired.json()["code"] == "token_expired"


async def test_a_revoked_token_is_refused_at_once(api):
    http, accounts, _ = api
    issued = await accounts.create_token("coord.rs")
    assert (await http.get("/tasks", headers=bearer(issued.bearer))).status_code == 200
    await accounts.revoke_token(issued.token_id)
    revoked = await http.get("/tasks", headers=bearer(issued.bearer))
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "token_revoked"


async def test_failures_from_one_address_throttle_that_address_not_the_user(api):
    """Issue 13: three wrong secrets used to lock the token's user out, valid token and
    all (this test asserted that lockout; it now asserts the opposite)."""
    http, accounts, clock = api
    issued = await accounts.create_token("coord.rs")
    wrong = issued.bearer[:-4] + ("AAAA" if not issued.bearer.endswith("AAAA") else "BBBB")
    async with client_at(http.app, "203.0.113.9") as attacker:
        for _ in range(3):
            response = await attacker.get("/tasks", headers=bearer(wrong))
            assert response.json()["code"] == "token_bad_secret"
        throttled = await attacker.get("/tasks", headers=bearer(wrong))
        assert throttled.status_code == 429
        assert throttled.json()["code"] == "too_many_failures"
        assert 1 <= int(throttled.headers["retry-after"]) <= 15 * 60
        async with client_at(http.app, "198.51.100.7") as user:
            assert (await user.get("/tasks", headers=bearer(issued.bearer))).status_code == 200
        clock.now += timedelta(minutes=16)
        assert (await attacker.get("/tasks", headers=bearer(issued.bearer))).status_code == 200


async def test_a_codec_session_lets_the_temporal_ui_decode_with_a_cookie(api):
    """The Temporal UI sends no Authorization header without OIDC: an operator starts a
    short codec session whose HttpOnly cookie, scoped to /codec, authenticates decodes."""
    http, accounts, _ = api
    await accounts.add_org("ops", OrgKind.OPERATOR_TEAM, "Operations", "CH")
    await accounts.add_user("operator", "ops", UserRole.OPERATOR)
    tokens = {u: (await accounts.create_token(u)).bearer for u in ("coord.rs", "operator")}
    body = {"payloads": []}
    assert (await http.post("/codec/decode", json=body)).status_code == 401

    refused = await http.post("/codec/session", data={"token": tokens["coord.rs"]})
    assert refused.status_code == 403  # a coordinator decodes nothing
    started = await http.post("/codec/session", data={"token": tokens["operator"]})
    assert started.status_code == 204, started.text
    cookie = started.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/codec" in cookie and "SameSite=lax" in cookie
    assert tokens["operator"] not in cookie  # a new, short-lived token, not the one given

    decoded = await http.post("/codec/decode", json=body)  # httpx keeps the cookie
    assert decoded.status_code == 200, decoded.text
    assert (await http.get("/tasks")).status_code == 401  # the cookie opens /codec only
