"""Repeat returnees (issue 16 item 4, decision 0070): the warning a registration answers
with when the vault's blind index recognises her, and the deliberate link of two cases of
the same person.

The warning is computed for the answer only: no event, no log line, nothing to Temporal
names the match. What it says depends on whom it is said to (``api.access.may_see``): the
earlier case's id and its sending mission to an organisation that may see that case, only
the mission to ask to one that may not. Linking is a person's decision, recorded as
``case.linked`` on the case she acts on (ids and a code only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog

from api.access import Action, authorise, link_basis, may_see
from api.errors import ApiError
from api.service.calls import now, require
from api.service.cases import CaseService, LoadedCase
from domain import catalogue
from domain.outside_events import CaseLinked, LinkBasis
from store.accounts import Principal
from store.events import ConcurrencyConflict, NewEvent, StoredEvent

log = structlog.get_logger("homeward.api")

APPEND_ATTEMPTS = 5


@dataclass(frozen=True)
class RepeatWarning:
    kind: str  # "assisted_before" | "possible_earlier_case"
    message: str
    case_id: str | None = None
    organisation: str | None = None
    matched_on: tuple[str, ...] | None = None
    ask_mission: str | None = None


@dataclass(frozen=True)
class Linked:
    case_id: str
    linked_case_id: str
    basis: LinkBasis
    linked: bool  # this request recorded it (False: the two were linked already)


def linked_to(events: list[StoredEvent], other_id: str) -> LinkBasis | None:
    """The basis of a ``case.linked`` in ``events`` that names ``other_id``, if any."""
    for event in events:
        if (event.event_type == CaseLinked.TYPE
                and event.payload.get("linked_case_id") == other_id):
            return LinkBasis(event.payload["basis"])
    return None


class LinkService:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases
        self.vault = cases.vault
        self.store = cases.store

    async def warnings(self, caller: Principal, case_id: str) -> list[RepeatWarning]:
        """What the registering coordinator is told of the earlier cases the blind index
        matched: never a case id her organisation may not see, one line per other mission
        however many of its cases matched. A failed lookup leaves the registration
        answered without warnings (logged by error type only)."""
        try:
            found = await self.vault.earlier_cases(case_id)
        except Exception as error:  # noqa: BLE001 - the case is registered: answer it
            log.warning("repeat lookup failed", case_id=case_id,
                        error_type=type(error).__name__)
            return []
        visible: list[RepeatWarning] = []
        ask: set[str] = set()
        for match in found:
            other = await self.cases.load(match.case_id)
            if other.facts is None:  # staged by a registration that never began
                continue
            if may_see(caller, other.facts):
                org = other.facts.sending_mission
                visible.append(RepeatWarning(
                    "assisted_before",
                    f"this person may have been assisted before (case {match.case_id}, "
                    f"by organisation {org})",
                    case_id=match.case_id, organisation=org,
                    matched_on=tuple(k.value for k in match.kinds)))
            else:
                ask.add(other.facts.sending_mission)
        return visible + [RepeatWarning(
            "possible_earlier_case", f"a possible earlier case exists; ask mission {org}",
            ask_mission=org) for org in sorted(ask)]

    async def link(self, caller: Principal, here: LoadedCase, other_id: str) -> Linked:
        """Record that ``here`` and ``other_id`` are the same person's cases (the caller
        may link from ``here``, decided by the route); the same link again writes
        nothing."""
        require(authorise(caller, Action.CASE_LINK, here.facts))
        if other_id == here.case_id:
            raise ApiError(422, "same_case", "a case cannot be linked to itself")
        other = await self.cases.load(other_id)
        matched = other.facts is not None and not may_see(caller, other.facts) and any(
            m.case_id == other_id for m in await self.vault.earlier_cases(here.case_id))
        basis = link_basis(caller, other.facts, matched)
        if not isinstance(basis, LinkBasis):
            require(basis)
            raise AssertionError("unreachable")  # require raised the refusal
        events = here.events
        for _ in range(APPEND_ATTEMPTS):
            held = linked_to(events, other_id) or linked_to(other.events, here.case_id)
            if held is not None:
                return Linked(here.case_id, other_id, held, linked=False)
            event = CaseLinked(linked_case_id=other_id, basis=basis)
            try:
                await self.store.append(here.case_id, events[-1].version if events else None, [
                    NewEvent(uuid.uuid4(), event.TYPE, event.schema_version,
                             catalogue.payload_of(event), caller.org_id, caller.user_id,
                             now())])
            except ConcurrencyConflict:
                events = await self.store.read_case(here.case_id)
                continue
            return Linked(here.case_id, other_id, basis, linked=True)
        raise ApiError(503, "case_busy", "the case changed on every attempt to link it: "
                       "send the request again", retry_after=1)
