"""The authorisation matrix: every endpoint × every role × own / another organisation's
case, with the status each must get, and proof that a refused request wrote nothing
(no event, no vault row) and was itself audited.

The case is driven to a border hold long enough for the partner's companion task, so
that every relation exists at once: sending mission (coord.rs), receiving mission after
the handoff request (officer.md), partner with a task (partner.md), the other set of
organisations with no part in the case (coord.al, officer.ua, partner.ua, admin.al),
operator, analyst and the operations administrator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api_driver import (
    at_the_border,
    fact,
    open_task,
    referral,
    register,
    screening_body,
)
from sqlalchemy import text

# Refused-first order: the organisations that may act come last, so that an allowed
# request with effects (completing the partner's task) runs after every refusal of it.
USERS = ["anonymous", "analyst", "admin", "admin.al", "operator", "coord.al", "officer.ua",
         "partner.ua", "officer.md", "partner.md", "coord.rs"]


@dataclass
class Endpoint:
    name: str
    method: str
    path: str  # {case} and {task} are filled in
    body: Callable[[dict[str, str]], Any] | None
    expected: dict[str, int]  # user → status; everyone else 403, anonymous 401

    @property
    def route(self) -> str:
        """The route template the audit log names (never the raw URL)."""
        return (self.path.split("?")[0].replace("{case}", "{case_id}")
                .replace("{task}", "{task_id}")
                .replace("/sharing/ngo-md-border", "/sharing/{org_id}"))


def _consent(ids: dict[str, str]) -> dict[str, Any]:
    return {"form_language": "ro", "form_version": "2026-1", "interpreter_used": False,
            "signed_at": "2026-11-01T10:00:00+00:00", "form_reference": "file 3"}


# Every mission reads reports over its own caseload (decision 0065)
_MISSIONS = {u: 200 for u in ("coord.rs", "coord.al", "officer.md", "officer.ua")}

ENDPOINTS = [
    Endpoint("register", "POST", "/cases", lambda ids: referral(),
             {"coord.rs": 201, "coord.al": 201}),
    Endpoint("list cases", "GET", "/cases", None,
             {u: 200 for u in ("coord.rs", "coord.al", "officer.md", "officer.ua", "partner.md",
                               "partner.ua", "operator")}),
    Endpoint("case", "GET", "/cases/{case}", None,
             {"coord.rs": 200, "officer.md": 200, "partner.md": 200, "operator": 200,
              "coord.al": 404, "officer.ua": 404, "partner.ua": 404}),
    Endpoint("timeline", "GET", "/cases/{case}/timeline", None,
             {"coord.rs": 200, "officer.md": 200, "operator": 200, "coord.al": 404,
              "officer.ua": 404}),
    Endpoint("handoff code", "GET", "/cases/{case}/handoff-code", None,
             {"coord.rs": 200, "officer.md": 200, "coord.al": 404, "officer.ua": 404}),
    Endpoint("screening", "POST", "/cases/{case}/screening", lambda ids: screening_body(),
             {"coord.rs": 409, "coord.al": 404}),  # 409: no screening task open any more
    Endpoint("decision", "POST", "/cases/{case}/decision",
             lambda ids: {"choice": "return", "counselled_in_language": "ro"},
             {"coord.rs": 409, "coord.al": 404}),
    Endpoint("consent", "POST", "/cases/{case}/consent", _consent,
             {"coord.rs": 409, "coord.al": 404}),
    # Held at the border, a departure is not expected: refused with what is (never a 202
    # for a fact then dropped); the receiving mission reports only a person not met.
    Endpoint("fact", "POST", "/cases/{case}/facts", lambda ids: {"fact": "departed"},
             {"coord.rs": 409, "officer.md": 409, "coord.al": 404, "officer.ua": 404}),
    Endpoint("age assessment", "POST", "/cases/{case}/age-assessment",
             lambda ids: {"assessed_by": "police", "result": "18_24",
                          "evidence_record_id": ids["consent"]},
             # The receiving mission records it after the handoff, in the follow-up: 409.
             {"coord.rs": 200, "officer.md": 409, "coord.al": 404, "officer.ua": 404}),
    Endpoint("record identity", "PUT", "/cases/{case}/person",
             lambda ids: {"aliases": ["Marker-Alias"]},
             {"coord.rs": 200, "coord.al": 404, "officer.md": 403}),
    Endpoint("add note", "POST", "/cases/{case}/person/notes",
             lambda ids: {"kind": "wellbeing_note", "text": "calm"},
             {"coord.rs": 201, "officer.md": 201, "coord.al": 404, "officer.ua": 404}),
    Endpoint("read identity", "POST", "/cases/{case}/person/disclosures",
             lambda ids: {"purpose": "handoff_identification", "field_groups": ["names"]},
             {"coord.rs": 200, "officer.md": 200, "partner.md": 403, "coord.al": 404,
              "officer.ua": 404, "partner.ua": 404}),
    # How trafficking occurred: the sending mission's account; both missions read it.
    Endpoint("record trafficking account", "PUT", "/cases/{case}/trafficking-account",
             lambda ids: {"exploitation_types": ["SexualExploitation"]},
             {"coord.rs": 200, "coord.al": 404}),
    Endpoint("trafficking account", "GET", "/cases/{case}/trafficking-account", None,
             {"coord.rs": 200, "officer.md": 200, "coord.al": 404, "officer.ua": 404}),
    Endpoint("list sharing", "GET", "/cases/{case}/sharing", None,
             {"coord.rs": 200, "officer.md": 200, "coord.al": 404, "officer.ua": 404}),
    Endpoint("share", "POST", "/cases/{case}/sharing",
             lambda ids: {"org_id": "ngo-md-border", "consent_record_id": ids["consent"]},
             {"coord.rs": 201, "coord.al": 404}),
    Endpoint("unshare", "DELETE", "/cases/{case}/sharing/ngo-md-border", None,
             {"coord.rs": 200, "coord.al": 404}),
    Endpoint("inbox", "GET", "/tasks", None,
             {u: 200 for u in ("coord.rs", "coord.al", "officer.md", "officer.ua", "partner.md",
                               "partner.ua")}),
    Endpoint("reassign", "POST", "/operations/tasks/{task}/reassign",
             lambda ids: {"to_user": "partner.md", "reason": "workload"}, {"operator": 200}),
    Endpoint("task", "GET", "/tasks/{task}", None,
             {"partner.md": 200, "operator": 200, "coord.rs": 403, "officer.md": 403,
              "coord.al": 404, "officer.ua": 404, "partner.ua": 404}),
    Endpoint("complete task", "POST", "/tasks/{task}/complete",
             lambda ids: {"result": {"kind": "border_companion",
                                     "companion_record_id": ids["consent"]}},
             {"partner.md": 200, "coord.rs": 403, "officer.md": 403, "coord.al": 404,
              "officer.ua": 404, "partner.ua": 404}),
    Endpoint("stuck cases", "GET", "/operations/stuck-cases", None, {"operator": 200}),
    Endpoint("retry", "POST", "/operations/cases/{case}/retry", None,
             {"operator": 409}),  # nothing is failing: allowed, and nothing to retry
    Endpoint("escalate", "POST", "/operations/cases/{case}/escalate",
             lambda ids: {"reason": "long_border_hold"}, {"operator": 202}),
    Endpoint("statistics", "GET", "/statistics", None, {"analyst": 200, **_MISSIONS}),
    Endpoint("statistical report", "GET", "/reports/statistical", None,
             {"analyst": 200, **_MISSIONS}),
    Endpoint("caseload snapshot", "GET", "/reports/snapshot", None,
             {"analyst": 200, "operator": 200, **_MISSIONS}),
    Endpoint("audit", "GET", "/cases/{case}/audit", None, {"admin": 200, "admin.al": 404}),
    # The follow-up is the receiving mission's; before the handoff it has not started.
    Endpoint("follow-up", "GET", "/cases/{case}/follow-up", None,
             {"officer.md": 404, "officer.ua": 404}),
    Endpoint("risk", "POST", "/cases/{case}/follow-up/risks",
             lambda ids: {"indicator": "recruiter_contact", "description": "seen"},
             {"officer.md": 409, "officer.ua": 404}),
    Endpoint("opt-out", "POST", "/cases/{case}/follow-up/opt-outs", lambda ids: {},
             {"officer.md": 409, "officer.ua": 404}),
    Endpoint("plan change", "POST", "/cases/{case}/follow-up/plan",
             lambda ids: {"remaining_check_ins_after_arrival": ["P60D"]},
             {"officer.md": 409, "officer.ua": 404}),
    Endpoint("closure", "POST", "/cases/{case}/follow-up/closure",
             lambda ids: {"reason": "moved_away"}, {"officer.md": 409, "officer.ua": 404}),
    Endpoint("reopening", "POST", "/cases/{case}/follow-up/reopening",
             lambda ids: {"reason": "new_needs"}, {"officer.md": 409, "officer.ua": 404}),
    # Transfers (decision 0068): the sending mission's coordinator offers a role; she has
    # left, so the role stays where it is (409 transfer_too_late, nothing written).
    Endpoint("transfer", "POST", "/cases/{case}/transfers",
             lambda ids: {"role": "receiving_mission", "to_org": "mission-ua",
                          "reason": "capacity", "details": "Marker-Transfer-Details"},
             {"coord.rs": 409, "coord.al": 404}),
    # Case packages (decision 0067): administrators only. The operations team exports no
    # case, and a mission's administrator only its own (404 here); a body that is no
    # package is refused before keys are looked at (422).
    Endpoint("export case package", "POST",
             "/admin/case-packages/export?case_id={case}&to=mission-ua", None,
             {"admin": 404, "admin.al": 404}),
    Endpoint("import case package", "POST", "/admin/case-packages/import", None,
             {"admin": 422, "admin.al": 422}),
    # Repeat returnees (decision 0070): the sending mission's coordinator links her case
    # to an earlier one; a case linked to itself is refused (422), nothing written.
    Endpoint("link to an earlier case", "POST", "/cases/{case}/links",
             lambda ids: {"linked_case_id": ids["case"]}, {"coord.rs": 422, "coord.al": 404}),
    # Either mission relays her withdrawal (the second answer: recorded once already).
    Endpoint("withdraw consent", "POST", "/cases/{case}/consent-withdrawal",
             lambda ids: {"change": "deferred"},
             {"coord.rs": 200, "officer.md": 200, "coord.al": 404, "officer.ua": 404}),
]


async def settled(stack, case_id: str) -> None:
    """A new case writes its referral, first task and identity, then waits for the
    screening: let it, so that its writes are not taken for a refused request's."""
    for _ in range(200):
        if await stack.store.current_version(case_id) >= 3:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"case {case_id} never settled")


async def test_every_endpoint_for_every_role_on_own_and_other_cases(stack):
    await settled(stack, await register(stack, "coord.al"))  # another organisation's case
    case_id = await at_the_border(stack)
    await fact(stack, case_id, "border_hold_started")
    task = await open_task(stack, "partner.md", case_id, "border_companion")
    note = await stack.http.post(f"/cases/{case_id}/person/notes",
                                 json={"kind": "assessment_note",
                                       "text": "consent to share with ngo-md-border"},
                                 headers=stack.auth("coord.rs"))
    ids = {"case": case_id, "task": task["task_id"], "consent": note.json()["record_id"]}

    mismatches = []
    for endpoint in ENDPOINTS:
        for user in USERS:
            expected = 401 if user == "anonymous" else endpoint.expected.get(user, 403)
            headers = {} if user == "anonymous" else stack.auth(user)
            body = endpoint.body(ids) if endpoint.body else None
            written = await stack.written()
            audited = await stack.count("audit_log")
            response = await stack.http.request(
                endpoint.method, endpoint.path.format(**ids), json=body, headers=headers)
            got = response.status_code
            if endpoint.name == "register" and got == 201:
                await settled(stack, response.json()["case_id"])
            if got != expected:
                mismatches.append(f"{endpoint.name} as {user}: {got} (expected {expected}) "
                                  f"{response.text[:200]}")
                continue
            assert response.headers.get("x-request-id")
            if got >= 400:
                error = response.json()
                assert error["code"] and error["detail"] and error["request_id"]
            if got in (401, 403, 404):
                if await stack.written() != written:
                    mismatches.append(f"{endpoint.name} as {user}: refused but wrote data")
            # Every authenticated request is audited once, allowed or refused, with who,
            # what and how it ended; an unauthenticated one names nobody and is not.
            grew = await stack.count("audit_log") - audited
            if grew != (0 if got == 401 else 1):
                mismatches.append(f"{endpoint.name} as {user}: {grew} audit rows")
            elif got != 401:
                entry = await last_audit_entry(stack)
                want = (user, endpoint.method, endpoint.route, got,
                        "allowed" if got < 400 else "refused")
                if entry != want:
                    mismatches.append(f"{endpoint.name} as {user}: audited {entry}, "
                                      f"expected {want}")
    assert not mismatches, "\n".join(mismatches)

    # The administrator reads the refusals in the case's audit log.
    audit = await stack.http.get(f"/cases/{case_id}/audit", headers=stack.auth("admin"))
    assert audit.status_code == 200, audit.text
    refused = {(e["user_id"], e["action"], e["status"]) for e in audit.json()["entries"]
               if e["outcome"] == "refused"}
    assert {("coord.al", "case.view", 404), ("analyst", "case.view", 403),
            ("coord.rs", "case.road_report", 409), ("partner.md", "identity.read", 403),
            ("coord.rs", "task.complete", 403)} <= refused, sorted(refused)


async def last_audit_entry(stack) -> tuple[str, str, str, int, str]:
    async with stack.engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT user_id, method, route, status, outcome FROM audit_log "
            "ORDER BY audit_id DESC LIMIT 1"))).one()
    return tuple(row)
