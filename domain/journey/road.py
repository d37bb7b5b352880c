"""The road as a state machine over facts.

Facts arrive in the order they happen, not in an order a script expects: at any moment a
set of facts is possible (``expected_facts``), each one is recorded as an event or
refused with what would be accepted, and a repeated report of the fact just recorded is
accepted once. After departure nothing here strands her: facts go on being recorded
after a withdrawal, because she is still on the road.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.journey import events as ev
from domain.journey.policies import witness_departure_refusal
from domain.journey.vocabulary import DID_NOT_ARRIVE, EscalationReason, RoadFact, Stage
from domain.kernel import Refusal, Role

if TYPE_CHECKING:
    from domain.journey.decider import Context, JourneyState, RecordFact

# Who reports what: the escort's mission reports everything it sees on the road; the
# receiving mission, waiting at the arrival point, reports a person not met or missing.
_REPORTED_BY: dict[Role, frozenset[RoadFact]] = {
    Role.SENDING_MISSION: frozenset(RoadFact),
    Role.RECEIVING_MISSION: frozenset({RoadFact.MISSING_IN_TRANSIT,
                                       RoadFact.NOT_MET_AT_ARRIVAL}),
}


def expected_facts(state: JourneyState) -> frozenset[RoadFact]:
    """The facts that can happen now, by where she is."""
    F = RoadFact
    if (state.closed or state.referral is None or state.missing is not None
            or state.concluded_missing):
        return frozenset()
    if state.handoff_confirmed:
        return frozenset()
    if state.border_cleared:
        return frozenset({F.NOT_MET_AT_ARRIVAL})
    if state.at_border is not None:
        held = {F.BORDER_HOLD_LIFTED} if state.hold_on else {F.BORDER_HOLD_STARTED,
                                                              F.BORDER_CLEARED}
        onward = {F.LEG_FAILED} if state.booking is not None else set()
        return frozenset({F.ENTRY_REFUSED, F.MISSING_IN_TRANSIT, *held, *onward})
    if state.booking is not None and state.departed:
        return frozenset({F.ARRIVED_AT_BORDER, F.LEG_FAILED, F.MISSING_IN_TRANSIT})
    if state.booking is not None:
        gone = F.MISSING_IN_TRANSIT if state.on_road else F.DID_NOT_BOARD
        return frozenset({F.DEPARTED, F.LEG_FAILED, gone})
    if state.on_road:  # between legs: a rebooking is pending where she is
        return frozenset({F.MISSING_IN_TRANSIT})
    return frozenset()


def road_stage(state: JourneyState) -> Stage | None:
    """The stage the road facts put her in; None before a journey is booked."""
    if state.missing is not None:
        return Stage.TRACING
    if state.border_cleared or state.handoff_confirmed:
        return Stage.RECEPTION
    if state.at_border is not None:
        return Stage.BORDER
    if state.booking is not None:
        return Stage.IN_TRANSIT if state.departed else Stage.AWAITING_DEPARTURE
    if state.on_road:
        return Stage.IN_TRANSIT
    return None


def decide_fact(state: JourneyState, command: RecordFact,
                ctx: Context) -> list[ev.JourneyEvent] | Refusal:
    fact = command.fact
    if fact not in _REPORTED_BY.get(command.reporter, frozenset()):
        return Refusal(f"the {command.reporter.value.replace('_', ' ')} does not report "
                       f"'{fact.value}'", code="not_your_fact")
    expected = expected_facts(state)
    if fact not in expected:
        if state.last_fact == (fact, command.failure):
            return []  # the same fact reported again: recorded once
        where = road_stage(state)
        stage = where.value if where else "before the journey is booked"
        names = tuple(sorted(f.value for f in expected))
        return Refusal(
            f"'{fact.value}' is not expected now ({stage}); expected: "
            f"{', '.join(names) or 'no road fact'}",
            code="fact_not_expected_now", expected=names,
        )
    booking = state.booking
    match fact:
        case RoadFact.DEPARTED:
            assert booking is not None
            if refusal := witness_departure_refusal(
                ctx.now, state.earliest_departure if state.witness else None,
                state.config.witness_notice,
            ):
                return refusal
            return [ev.JourneyDeparted(booking_ref=booking.booking_ref)]
        case RoadFact.LEG_FAILED:
            assert booking is not None and command.failure is not None
            return [ev.JourneyLegFailed(booking_ref=booking.booking_ref,
                                        attempt=booking.attempt, failure=command.failure,
                                        source=command.source)]
        case RoadFact.ARRIVED_AT_BORDER:
            assert booking is not None
            return [ev.ArrivedAtBorder(entry_point=booking.entry_point)]
        case RoadFact.BORDER_HOLD_STARTED:
            assert state.at_border is not None
            return [ev.BorderHoldStarted(entry_point=state.at_border, started_at=ctx.now)]
        case RoadFact.BORDER_HOLD_LIFTED:
            assert state.at_border is not None
            since = state.hold_since or ctx.now
            return [ev.BorderHoldLifted(entry_point=state.at_border, held_seconds=max(
                int((ctx.now - since).total_seconds()), 0))]
        case RoadFact.BORDER_CLEARED:
            assert state.at_border is not None
            return [ev.BorderCleared(entry_point=state.at_border)]
        case RoadFact.ENTRY_REFUSED:
            assert state.at_border is not None
            return [ev.BorderEntryRefused(entry_point=state.at_border)]
    assert fact in DID_NOT_ARRIVE
    # Escalated at once: she may be back in a trafficker's hands.
    return [ev.DidNotArrive(fact=fact, reported_by=command.reporter),
            ev.CaseEscalated(reason=EscalationReason.PERSON_MISSING, since=ctx.now)]


__all__ = ["decide_fact", "expected_facts", "road_stage"]
