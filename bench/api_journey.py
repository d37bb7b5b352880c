"""Cases driven to reception through the HTTP API, as their users drive them: the sending
mission's coordinator and the receiving mission's officer work from what the API shows
them (their inboxes and case lists, from the read models), never from workflow queries.

One ``Board`` per run polls those lists about once a second for every case at once (as
each user's screen refreshes), so a thousand cases cost a few requests a second to watch;
each case's steps are its own POSTs, each under its own ``Idempotency-Key``. A 503 is
waited out for its ``Retry-After`` and the request sent again with the same key (a
registration repeated is the same case, a step whose answer was lost gets the first
answer); a completion answered 202 is followed at the task's ``check`` URL, as the answer
says, as a client of a shedding API should.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

# The demo's short durations (decision 0055's journey shape): seconds, not days.
FAST_JOURNEY = {"departure_lead": "PT1S", "rebook_backoff": "PT1S",
                "rebook_backoff_max": "PT2S", "border_companion_after": "PT2S",
                "border_escalation_after": "PT1H", "medical_reassessment_after": "PT1S"}
COORDINATOR, OFFICER = "coord.rs", "officer.md"
WAIT = 600.0  # seconds a case may wait for one step before it counts as stuck
ROAD_LOOK = 120.0  # seconds the escort waits for the case to move after a fact


class Stuck(Exception):
    """A case that did not reach a step within ``WAIT``."""


class Refused(Exception):
    """A request the API refused for good (a 4xx other than 409 while the case moves)."""


class Api:
    """HTTP calls with the waits a well-behaved client makes: a 503 → its Retry-After, a
    lost connection or another 5xx → a second, then the same request again, until
    ``WAIT`` is spent; a 202 (a completion sent but not confirmed in time) → its task
    read from the answer's ``check`` URL until it is done, and the completion sent again
    only if it is still open a minute later."""

    def __init__(self, http: httpx.AsyncClient, tokens: dict[str, str]):
        self.http = http
        self.tokens = tokens
        self.retries = 0

    async def call(self, method: str, path: str, user: str, *,
                   ok: tuple[int, ...] = (200, 201), **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}", **kw.pop("headers", {})}
        deadline = asyncio.get_running_loop().time() + WAIT
        while True:
            try:
                response = await self.http.request(method, path, headers=headers, **kw)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code in ok:
                return response
            if response is not None and response.status_code == 202:
                confirmed = await self._confirmed(response, user, deadline)
                if confirmed is not None:
                    return confirmed
                continue  # not applied in a minute: the same completion again
            if response is not None and response.status_code < 500:
                return response  # the caller decides (a 409 while the case moves on)
            if asyncio.get_running_loop().time() > deadline:
                raise Stuck(f"{method} {path}: no answer but "
                            f"{response.status_code if response else 'errors'} in {WAIT:.0f} s")
            self.retries += 1
            pause = 1.0
            if response is not None and "retry-after" in response.headers:
                pause = float(response.headers["retry-after"])
            await asyncio.sleep(pause)


    async def _confirmed(self, pending: httpx.Response, user: str,
                         deadline: float) -> httpx.Response | None:
        """A completion answered 202 (sent, not confirmed in time): its task, read from
        the ``check`` URL until it is no longer open; None if it stays open a minute."""
        check = pending.json()["check"]
        loop = asyncio.get_running_loop()
        give_up = min(deadline, loop.time() + 60)
        while loop.time() < give_up:
            self.retries += 1
            await asyncio.sleep(float(pending.headers.get("retry-after", 1)))
            task = await self.call("GET", check, user)
            if task.status_code == 200 and task.json()["status"] != "open":
                return task
        return None


class Board:
    """What the two users see, refreshed about every ``interval`` seconds: the
    coordinator's cases (stage, outcome) and open tasks, and the officer's open tasks."""

    def __init__(self, api: Api, interval: float = 1.0):
        self.api = api
        self.interval = interval
        self.cases: dict[str, dict[str, Any]] = {}
        self.tasks: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.changed = asyncio.Condition()
        self.requests = 0

    async def run(self) -> None:
        while True:
            try:
                cases = await self._all("/cases", COORDINATOR, "cases")
                tasks: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
                for user in (COORDINATOR, OFFICER):
                    for task in await self._all("/tasks", user, "tasks"):
                        tasks.setdefault((user, task["case_id"]), {})[task["kind"]] = task
            except (Stuck, Refused, httpx.HTTPError):
                await asyncio.sleep(self.interval)
                continue
            async with self.changed:
                self.cases = {c["case_id"]: c for c in cases}
                self.tasks = tasks
                self.changed.notify_all()
            await asyncio.sleep(self.interval)

    async def _all(self, path: str, user: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            self.requests += 1
            response = await self.api.call("GET", path, user, params=params)
            if response.status_code != 200:
                raise Refused(f"GET {path}: {response.status_code} {response.text[:200]}")
            body = response.json()
            items += body[key]
            cursor = body.get("next_cursor")
            if not cursor:
                return items

    async def until(self, holds, what: str, timeout: float = WAIT) -> Any:
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(holds), timeout)
            except TimeoutError:
                raise Stuck(f"no {what} after {timeout:.0f} s") from None
            return holds()

    async def task(self, user: str, case_id: str, kind: str) -> dict[str, Any]:
        return await self.until(lambda: self.tasks.get((user, case_id), {}).get(kind),
                                f"open {kind} task for {user} in {case_id}")

    async def stage(self, case_id: str, *stages: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            case = self.cases.get(case_id)
            return case if case and case.get("stage") in stages else None
        return await self.until(reached, f"stage {' or '.join(stages)} of {case_id}")


def referral(**extra: Any) -> dict[str, Any]:
    return {
        "receiving_mission": "mission-md", "border_partner": "ngo-md-border",
        "host_country": "RS", "destination_country": "MD", "referral_source": "police_raid",
        "first_placement": "shelter_low_risk", "risk_level": "low", "age_category": "18_24",
        "identity": {"given_names": "Bench", "family_name": "Person", "nationality": "MD",
                     "shelter_address": {"lines": ["Shelter Street 1"], "country": "RS"}},
        **extra,
    }


async def to_reception(api: Api, board: Board) -> str:
    """One case from referral to a confirmed handoff (its first flight cancelled and
    rebooked on the way), closed as returned; its case id."""
    registered = await api.call(
        "POST", "/cases", COORDINATOR, headers=_key(),
        json=referral(journey_config=FAST_JOURNEY, simulated_disruptions=["cancelled_flight"]))
    _ok(registered, "POST /cases")
    case_id = registered.json()["case_id"]

    async def post(path: str, body: dict[str, Any], user: str = COORDINATOR) -> dict:
        """POST a step under its own key: sent again after a lost answer (a 503 or a
        dropped connection after the workflow applied it), it gets the first answer."""
        return _ok(await api.call("POST", path, user, json=body, headers=_key()),
                   f"POST {path}").json()

    async def complete(kind: str, result: dict[str, Any], user: str = COORDINATOR) -> None:
        task = await board.task(user, case_id, kind)
        await post(f"/tasks/{task['task_id']}/complete", {"result": {"kind": kind, **result}},
                   user)

    async def steer(kind: str, path: str, body: dict[str, Any]) -> None:
        await board.task(COORDINATOR, case_id, kind)
        await post(f"/cases/{case_id}/{path}", body)

    await steer("screening_interview", "screening", {
        "answers": "bench", "interview_language": "ro", "interpreter_used": False,
        "reads_languages": ["ro"], "trafficking_status": "ActualVictimOfTrafficking"})
    await steer("options_decision", "decision",
                {"choice": "return", "counselled_in_language": "ro"})
    await steer("informed_consent", "consent", {
        "form_language": "ro", "form_version": "2026-1", "interpreter_used": False,
        "signed_at": datetime.now(UTC).isoformat(), "form_reference": "bench form"})
    record_id = (await post(f"/cases/{case_id}/person/notes",
                            {"kind": "assessment_note", "text": "documents file"}))["record_id"]
    await complete("travel_documents", {"issued": True, "document_record_id": record_id})
    await complete("medical_clearance", {"fit_to_travel": True, "medical_record_id": record_id})
    await complete("security_assessment", {"risk_level": "low"})
    await board.stage(case_id, "awaiting_departure")
    await _travel(api, board, case_id)
    task = await board.task(OFFICER, case_id, "reception_handoff")
    code = _ok(await api.call("GET", f"/cases/{case_id}/handoff-code", OFFICER),
               "GET handoff-code").json()["handoff_code"]
    await post(f"/tasks/{task['task_id']}/complete", {"result": {
        "kind": "reception_handoff", "identification": "handoff_code", "handoff_code": code,
        "safe_arrival_confirmed": True}}, OFFICER)
    closed = await board.stage(case_id, "closed")
    if closed.get("outcome") != "returned":
        raise Refused(f"case {case_id} closed {closed.get('outcome')}, not returned")
    return case_id


# The fact the escort reports next, by where the case is on the road.
_NEXT_FACT = {"awaiting_departure": "departed", "in_transit": "arrived_at_border",
              "border": "border_cleared"}
_ROAD_ENDS = ("reception", "closed")


async def _travel(api: Api, board: Board, case_id: str) -> None:
    """The escort reports what happens next from where the case is, as often as the road
    needs: a flight the carrier cancels (the simulated disruption, before or after she
    boarded) sends the case back to awaiting its rebooked departure. A fact refused
    because the case moved meanwhile is followed by a look at the case, not counted as a
    failure."""
    for _ in range(20):
        case = board.cases[case_id]
        if case.get("stage") in _ROAD_ENDS:
            return
        seen = (case.get("stage"), case.get("last_event_at"))
        fact = _NEXT_FACT.get(case.get("stage"))
        if fact is not None and case.get("blocked_on") != "rebooking":
            response = await api.call("POST", f"/cases/{case_id}/facts", COORDINATOR,
                                      json={"fact": fact}, headers=_key())
            if response.status_code not in (200, 409):
                _ok(response, f"POST /cases/{case_id}/facts")
        with contextlib.suppress(Stuck):
            await board.until(lambda seen=seen: (board.cases[case_id].get("stage"),
                                                 board.cases[case_id].get("last_event_at"))
                              != seen, f"the road of {case_id}", timeout=ROAD_LOOK)
    raise Stuck(f"the road of {case_id} did not end after 20 facts")


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _ok(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code not in (200, 201):
        raise Refused(f"{what}: {response.status_code} {response.text[:400]}")
    return response
