"""Every list is a cursor page (decision 0058): a small ``limit`` walks the whole list in
pages without a row twice or left out, the last page says ``next_cursor: null``, and a
cursor that is not one the list gave out is a 422 ``invalid_cursor``. And OpenAPI says
what every success answer holds: no 2xx body is an untyped object."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from unittest.mock import MagicMock

import httpx
import pytest
from api_without_temporal import services_without_temporal
from test_read_models import T0, new, referral

from api.app import create_app
from domain.journey import events as ev
from store.accounts import Accounts, OrgKind, UserRole

CASES = 5
IDLE = 3
GRANTS = ("ngo-md-border", "ngo-md-health", "ngo-rs-shelter")
CURRENT = {"X-Read-Model-Max-Lag": "0"}


@pytest.fixture
async def api(engine):
    accounts = Accounts(engine)
    await accounts.add_org("mission-rs", OrgKind.SENDING_MISSION, "Sending", "RS")
    await accounts.add_org("ops", OrgKind.OPERATOR_TEAM, "Operations", "CH")
    await accounts.add_user("coord.rs", "mission-rs", UserRole.COORDINATOR)
    await accounts.add_user("admin.rs", "mission-rs", UserRole.ADMINISTRATOR)
    await accounts.add_user("operator", "ops", UserRole.OPERATOR)
    tokens = {u: (await accounts.create_token(u, timedelta(hours=1))).bearer
              for u in ("coord.rs", "admin.rs", "operator")}
    services = services_without_temporal(engine, accounts)
    store = services.store
    case_ids = []
    for n in range(CASES):
        case_id = f"c-pages-{n:02d}-{uuid.uuid4().hex[:6]}"
        case_ids.append(case_id)
        await store.append(case_id, None, [new(referral(), n, "mission-rs")])
        for k in range(2):  # two open tasks per case, overdue: every case is stuck
            await store.append(case_id, None, [new(ev.TaskOpened(
                task_id=uuid.uuid4(), kind="screening_interview" if k == 0 else
                "options_decision", assignee_org="mission-rs",
                assignee_role="sending_mission",
                due_at=T0 + timedelta(days=1, minutes=n * 10 + k)), n + 1)])
    for n in range(IDLE):  # escalated, waiting on nothing: stuck, last (blocked_since null)
        case_id = f"c-pages-idle-{n}-{uuid.uuid4().hex[:6]}"
        case_ids.append(case_id)
        await store.append(case_id, None, [new(referral(), n, "mission-rs")])
        await store.append(case_id, None, [new(("operator.escalated", {
            "reason": "no_progress"}), n + 1, "ops", "operator")])
    for m, org in enumerate(GRANTS):
        await store.append(case_ids[0], None, [new(("sharing.granted", {
            "org_id": org, "consent_record_id": f"rec_consent{m}"}), 20 + m, "mission-rs",
            "coord.rs")])
    app = create_app(services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://homeward.test") as http:
        yield http, tokens, sorted(case_ids)


def _auth(tokens, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[user]}", **CURRENT}


async def _walk(http, path: str, headers, key: str, limit: int,
                **params) -> tuple[list, int]:
    """Every item of a list, page by page; the number of pages."""
    items, cursor, pages = [], None, 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await http.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "next_cursor" in body
        pages += 1
        items += body[key]
        assert len(body[key]) <= limit
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        assert pages < 50


def _code(response) -> str:
    body = response.json()
    return body["code"] if "code" in body else body["error"]["code"]


async def test_every_list_walks_in_pages_to_a_null_cursor(api):
    http, tokens, case_ids = api
    coord, operator = _auth(tokens, "coord.rs"), _auth(tokens, "operator")

    cases, pages = await _walk(http, "/cases", coord, "cases", 2)
    assert [c["case_id"] for c in cases] == case_ids and pages == 4
    whole = (await http.get("/cases", headers=coord)).json()
    assert whole["next_cursor"] is None and whole["cases"] == cases

    tasks, pages = await _walk(http, "/tasks", coord, "tasks", 3)
    assert len(tasks) == 2 * CASES and len({t["task_id"] for t in tasks}) == 2 * CASES
    assert [t["due_at"] for t in tasks] == sorted(t["due_at"] for t in tasks)
    assert tasks[0]["due_at"].endswith("+00:00")  # times are written as they always were
    assert pages == 4

    stuck, pages = await _walk(http, "/operations/stuck-cases", operator, "cases", 2,
                               blocked_for_minutes=0)
    assert sorted(c["case_id"] for c in stuck) == case_ids and pages == 4
    # The longest blocked first; those blocked on nothing last (a page boundary among
    # them and one between them and the rest: the keyset crosses from times to null).
    assert [c["overdue_tasks"] for c in stuck] == [2] * CASES + [0] * IDLE
    assert [c["blocked_since"] is None for c in stuck] == [False] * CASES + [True] * IDLE

    first = case_ids[0]  # c-pages-00-…: the case with the grants (before c-pages-idle)
    grants, pages = await _walk(http, f"/cases/{first}/sharing", coord, "grants", 1)
    assert [g["org_id"] for g in grants] == sorted(GRANTS) and pages == 3

    events, pages = await _walk(http, f"/cases/{first}/timeline", coord, "events", 2)
    assert [e["version"] for e in events] == sorted(e["version"] for e in events)
    assert len(events) == len({e["version"] for e in events}) == 1 + 2 + len(GRANTS)

    entries, pages = await _walk(http, f"/cases/{first}/audit", _auth(tokens, "admin.rs"),
                                 "entries", 2)
    ids = [e["audit_id"] for e in entries]
    assert ids == sorted(set(ids)) and len(ids) >= 5  # the reads above were audited


async def test_a_cursor_not_given_out_by_the_list_is_refused(api):
    http, tokens, case_ids = api
    coord = _auth(tokens, "coord.rs")
    page = (await http.get("/cases", params={"limit": 1}, headers=coord)).json()
    cursor = page["next_cursor"]
    tasks_cursor = (await http.get("/tasks", params={"limit": 1},
                                   headers=coord)).json()["next_cursor"]

    def forged(*values) -> str:
        return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")

    bad = ["x" + cursor[1:], cursor[:-3], "AAAA", tasks_cursor, forged(1, "cases"),
           forged(1, "cases", 7), forged(2, "cases", case_ids[0]),
           forged(1, "tasks", "yesterday", "not-a-uuid")]
    for wrong in bad:
        response = await http.get("/cases", params={"cursor": wrong}, headers=coord)
        assert (response.status_code, _code(response)) == (422, "invalid_cursor"), wrong
    for path in ("/tasks", f"/cases/{case_ids[0]}/sharing", f"/cases/{case_ids[0]}/timeline"):
        response = await http.get(path, params={"cursor": cursor}, headers=coord)
        assert (response.status_code, _code(response)) == (422, "invalid_cursor"), path
    refused = await http.get("/operations/stuck-cases", params={"cursor": tasks_cursor},
                             headers=_auth(tokens, "operator"))
    assert (refused.status_code, _code(refused)) == (422, "invalid_cursor")
    refused = await http.get(f"/cases/{case_ids[0]}/audit", params={"cursor": cursor},
                             headers=_auth(tokens, "admin.rs"))
    assert (refused.status_code, _code(refused)) == (422, "invalid_cursor")
    # A cursor carries sort keys (ids, times), nothing else: it decodes to them.
    raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert raw == [1, "cases", case_ids[0]]


def test_no_success_answer_is_an_untyped_object():
    services = MagicMock()
    services.codec_cors_origins = []
    spec = create_app(services).openapi()
    schemas = spec["components"]["schemas"]
    untyped = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation.get("responses", {}).items():
                if not status.startswith("2") or status == "204":
                    continue
                content = answer.get("content", {})
                if content and "application/json" not in content:
                    continue  # a page for people (text/html, text/csv): no JSON to type
                schema = content.get("application/json", {}).get("schema", {})
                if "$ref" in schema:
                    schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
                if not schema.get("properties"):
                    untyped.append(f"{method.upper()} {path} {status}")
    assert untyped == []
    # Every list says where its next page is.
    for path in ("/cases", "/tasks", "/operations/stuck-cases", "/cases/{case_id}/sharing",
                 "/cases/{case_id}/timeline", "/cases/{case_id}/audit"):
        ref = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"][
            "schema"]["$ref"]
        assert "next_cursor" in schemas[ref.rsplit("/", 1)[1]]["properties"], path
        names = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert {"cursor", "limit"} <= names, path
