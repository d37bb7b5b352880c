"""`POST /codec/session` from a browser's form lands on a page that confirms the session
and says the next step in the Temporal UI (2.54: the credentials switch shows once "Use my
browser setting" is chosen); an API client still gets 204; a refused token gets a page
with the reason, and the cookie is set only on success."""

from __future__ import annotations

import httpx
import pytest
from api_without_temporal import services_without_temporal

from api.app import create_app
from store.accounts import Accounts, OrgKind, UserRole

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
async def session_api(engine):
    accounts = Accounts(engine)
    await accounts.add_org("ops", OrgKind.OPERATOR_TEAM, "Operations", "CH")
    await accounts.add_user("operator", "ops", UserRole.OPERATOR)
    await accounts.add_org("mission-rs", OrgKind.SENDING_MISSION, "Sending", "RS")
    await accounts.add_user("coord.rs", "mission-rs", UserRole.COORDINATOR)
    tokens = {u: (await accounts.create_token(u)).bearer for u in ("operator", "coord.rs")}
    app = create_app(services_without_temporal(engine, accounts))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://localhost:8000") as http:
        yield http, tokens


async def test_a_browser_form_post_gets_a_confirmation_with_the_next_step(session_api):
    http, tokens = session_api
    page = await http.post("/codec/session", data={"token": tokens["operator"]},
                           headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "HttpOnly" in page.headers["set-cookie"]
    text = " ".join(page.text.split())
    assert "Codec session started" in text
    assert "http://localhost:8000/codec" in text  # the endpoint to enter in the UI
    assert "Use my browser setting and ignore Cluster-level setting" in text
    assert "Include cross-origin credentials" in text
    assert tokens["operator"] not in page.text
    decoded = await http.post("/codec/decode", json={"payloads": []})
    assert decoded.status_code == 200, decoded.text  # the cookie the page came with works


async def test_an_api_client_still_gets_204(session_api):
    http, tokens = session_api
    started = await http.post("/codec/session", data={"token": tokens["operator"]},
                              headers={"Accept": "application/json"})
    assert started.status_code == 204
    assert started.content == b""
    assert "set-cookie" in started.headers


async def test_a_refused_browser_post_gets_a_page_with_the_reason_and_no_cookie(session_api):
    http, tokens = session_api
    refused = await http.post("/codec/session", data={"token": tokens["coord.rs"]},
                              headers={"Accept": BROWSER_ACCEPT})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "only operators and administrators decode payloads" in " ".join(refused.text.split())
    assert "set-cookie" not in refused.headers
    as_api = await http.post("/codec/session", data={"token": tokens["coord.rs"]})
    assert as_api.status_code == 403
    assert as_api.json()["code"] == "forbidden"  # problem details for API clients
