"""How trafficking occurred, through the API (decision 0066): the sending mission records a
coded account, every question skippable, replaced whole and idempotently; other
organisations, unknown codes and a person screened as no victim are refused with nothing
written; her sex is a referral fact in the event and the read model."""

from __future__ import annotations

import asyncio

from api_driver import open_task, register, screening_body
from sqlalchemy import text

ACCOUNT = {
    "recruitment_method": "ThroughFriendsOrSocialEvents",
    "exploitation_types": ["SexualExploitation", "ForcedBegging"],
    "route": [{"role": "recruitment", "country": "MD"}, {"role": "transit", "country": "RO"},
              {"role": "exploitation", "country": "RS"},
              {"role": "exploitation", "country": "BA"}],
    "duration_band": "6_12_months",
    "transport_means": ["car", "bus"],
}
PATH = "/cases/{}/trafficking-account"


async def referral_recorded(stack, case_id: str) -> None:
    for _ in range(400):
        if any(e.event_type == "case.referral_registered"
               for e in await stack.store.read_case(case_id)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"case {case_id}: no referral event")


async def accounts_in_store(stack, case_id: str) -> list[dict]:
    return [e.payload for e in await stack.store.read_case(case_id)
            if e.event_type == "trafficking.account_recorded"]


async def test_the_sending_mission_records_replaces_and_reads_the_account(stack):
    case_id = await register(stack, sex="female")
    await referral_recorded(stack, case_id)
    [referral] = [e for e in await stack.store.read_case(case_id)
                  if e.event_type == "case.referral_registered"]
    assert referral.payload["sex"] == "female"
    coord = stack.auth("coord.rs")

    # Nothing answered yet, and every question skipped: nothing to record.
    empty = await stack.http.put(PATH.format(case_id), json={}, headers=coord)
    assert empty.status_code == 200, empty.text
    assert empty.json()["recorded"] is False and empty.json()["recorded_at"] is None
    assert await accounts_in_store(stack, case_id) == []

    put = await stack.http.put(PATH.format(case_id), json=ACCOUNT, headers=coord)
    assert put.status_code == 200, put.text
    body = put.json()
    assert body["recorded"] is True and body["recorded_at"]
    assert body["route"] == ACCOUNT["route"]  # in the order given
    assert body["exploitation_types"] == ["ForcedBegging", "SexualExploitation"]
    assert body["transport_means"] == ["bus", "car"]

    # The same account again (answers ticked in another order): recorded once.
    again = await stack.http.put(PATH.format(case_id), json={
        **ACCOUNT, "transport_means": ["bus", "car", "bus"]}, headers=coord)
    assert again.status_code == 200 and again.json()["recorded"] is False
    [stored] = await accounts_in_store(stack, case_id)
    # The event holds codes only: the answers, nothing else.
    assert set(stored) == {"recruitment_method", "exploitation_types", "route",
                           "duration_band", "transport_means"}
    [event] = [e for e in await stack.store.read_case(case_id)
               if e.event_type == "trafficking.account_recorded"]
    assert (event.author_org, event.actor) == ("mission-rs", "coord.rs")

    # A later account replaces it whole: the questions it skips are cleared.
    later = {"duration_band": "1_3_years"}
    replaced = await stack.http.put(PATH.format(case_id), json=later, headers=coord)
    assert replaced.status_code == 200 and replaced.json()["recorded"] is True
    read = await stack.http.get(PATH.format(case_id), headers=coord)
    assert read.status_code == 200
    assert {k: read.json()[k] for k in ACCOUNT} == {
        "recruitment_method": None, "exploitation_types": [], "route": [],
        "duration_band": "1_3_years", "transport_means": []}

    # The read models: her sex on the case, the account and its (now empty) route.
    await stack.http.put(PATH.format(case_id), json=ACCOUNT, headers=coord)
    case = await stack.http.get(f"/cases/{case_id}", headers={
        **coord, "X-Read-Model-Max-Lag": "0"})
    assert case.json()["sex"] == "female"
    async with stack.engine.connect() as conn:
        route = (await conn.execute(text(
            "SELECT role, country FROM rm_trafficking_route WHERE case_id = :c ORDER BY seq"),
            {"c": case_id})).all()
        account = (await conn.execute(text(
            "SELECT recruitment_method, duration_band FROM rm_trafficking WHERE case_id = :c"),
            {"c": case_id})).one()
    assert [tuple(r) for r in route] == [(s["role"], s["country"]) for s in ACCOUNT["route"]]
    assert tuple(account) == ("ThroughFriendsOrSocialEvents", "6_12_months")


async def test_refusals_write_nothing(stack):
    case_id = await register(stack)
    await referral_recorded(stack, case_id)
    events = await stack.store.current_version(case_id)

    # Another mission's coordinator: the case does not exist for her (404, as for every
    # case route); the receiving mission and partners may not record it (403).
    other = await stack.http.put(PATH.format(case_id), json=ACCOUNT,
                                 headers=stack.auth("coord.al"))
    assert other.status_code == 404, other.text
    for user in ("officer.md", "partner.md", "analyst", "operator"):
        refused = await stack.http.put(PATH.format(case_id), json=ACCOUNT,
                                       headers=stack.auth(user))
        assert refused.status_code == 403, (user, refused.text)
        assert refused.json()["code"] == "forbidden"

    # Unknown codes: 422 naming the field.
    for bad, field in (({"exploitation_types": ["Smuggling"]}, "exploitation_types"),
                       ({"recruitment_method": "at_a_bar"}, "recruitment_method"),
                       ({"route": [{"role": "origin", "country": "MD"}]}, "route"),
                       ({"route": [{"role": "transit", "country": "ZZ"}]}, "route"),
                       ({"duration_band": "forever"}, "duration_band"),
                       ({"transport_means": ["rocket"]}, "transport_means"),
                       ({"narrative": "she was taken by her cousin"}, "narrative")):
        response = await stack.http.put(PATH.format(case_id), json=bad,
                                        headers=stack.auth("coord.rs"))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_request"
        assert any(field in p["field"] for p in response.json()["problems"]), response.json()
    unknown_sex = await stack.http.post("/cases", json={"sex": "unknown"},
                                        headers=stack.auth("coord.rs"))
    assert unknown_sex.status_code == 422
    assert any("sex" in p["field"] for p in unknown_sex.json()["problems"])

    # Screened as not a victim: there is no account of trafficking to record.
    await open_task(stack, "coord.rs", case_id, "screening_interview")
    screened = await stack.http.post(f"/cases/{case_id}/screening", json=screening_body(
        trafficking_status="NotAVictimOfTrafficking"), headers=stack.auth("coord.rs"))
    assert screened.status_code == 200, screened.text
    events = await stack.store.current_version(case_id)
    refused = await stack.http.put(PATH.format(case_id), json=ACCOUNT,
                                   headers=stack.auth("coord.rs"))
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "not_identified_as_victim"
    assert await accounts_in_store(stack, case_id) == []
    assert await stack.store.current_version(case_id) >= events  # the workflow's, not ours
