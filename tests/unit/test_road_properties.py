"""Property-based: whatever the road throws at a case, in whatever order, the domain keeps
her safe and loses nothing.

Random sequences of road facts (from either mission), withdrawals, age assessments, task
completions and attempts to release escorts or cancel bookings run through ``decide`` and
``evolve``, with a small driver doing what the workflow does after each step (book, open
the safe-place and tracing tasks, close once she is safe). The properties:

- ``decide`` never raises;
- no fact is lost: each one is recorded as events or refused with a reason; an answer
  with no event is only ever the repeat of the fact just recorded;
- a minor's end-to-end escort and a police escort are released only at a handover (the
  guardian handover, a confirmed safe place) or when tracing concluded she is missing,
  or before she ever left;
- a leg under way is never cancelled;
- a case that stopped after departure closes only once she is in a safe place (or is
  concluded missing);
- the case always ends either closed with an outcome or waiting for something: a fact
  that can happen now, an open task, or the next booking.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_domain_case import NOW, booking, ready_to_book, rec

from domain.journey import decider as c
from domain.journey import events as ev
from domain.journey import messages as msg
from domain.journey.road import expected_facts
from domain.journey.vocabulary import (
    ConsentChange,
    EscortKind,
    EscortReleaseReason,
    EscortScope,
    LegFailure,
    Outcome,
    RiskLevel,
    RoadFact,
    SafeHandover,
    SafePlace,
    TaskKind,
    TracingFinding,
    TracingNext,
)
from domain.kernel import AgeAssessor, AgeCategory, Refusal, Role

fact_steps = st.tuples(st.just("fact"), st.sampled_from(list(RoadFact)),
                       st.sampled_from(list(LegFailure)),
                       st.sampled_from([Role.SENDING_MISSION, Role.RECEIVING_MISSION]))
# A fact that can happen now (the index picks one of the expected facts): the road moves on.
next_fact = st.tuples(st.just("next"), st.integers(0, 9),
                      st.sampled_from(list(LegFailure)),
                      st.sampled_from([Role.SENDING_MISSION, Role.RECEIVING_MISSION]))
steps = st.one_of(
    next_fact, next_fact, next_fact, next_fact, next_fact, next_fact,
    fact_steps, fact_steps,  # any fact, at any moment: mostly refused
    st.tuples(st.just("withdraw"), st.sampled_from(list(ConsentChange))),
    st.tuples(st.just("assess"), st.sampled_from(list(AgeCategory))),
    st.tuples(st.just("safe_place"), st.sampled_from(list(SafeHandover))),
    st.tuples(st.just("tracing"), st.sampled_from(list(TracingFinding)),
              st.sampled_from(list(TracingNext))),
    st.tuples(st.just("release"), st.sampled_from(list(EscortReleaseReason))),
    st.tuples(st.just("cancel_booking")),
    st.tuples(st.just("close"), st.sampled_from([Outcome.ALTERNATIVE_PATHWAY,
                                                 Outcome.RETURN_STOPPED, Outcome.MISSING])),
)

_PROTECTED_RELEASES = {EscortReleaseReason.GUARDIAN_HANDOVER_COMPLETE,
                       EscortReleaseReason.SAFE_PLACE_REACHED,
                       EscortReleaseReason.PERSON_MISSING}


_ENTRY_POINTS = ("KIV", "IAS", "OTP", "BCM", "SCV", "CND", "TSR", "CLJ", "SBZ", "ODS")


class Road:
    """The case, and what the workflow would do after each step."""

    def __init__(self, state: c.JourneyState):
        self.state = state
        self.clock = NOW + timedelta(days=2)
        self.bookings = 0

    def decide(self, command) -> list[ev.JourneyEvent] | Refusal:
        decision = c.decide(self.state, command, c.Context(now=self.clock))  # never raises
        if not isinstance(decision, Refusal):
            self.state = c.fold(self.state, decision)
        return decision

    def complete(self, kind: TaskKind, result) -> list[ev.JourneyEvent] | Refusal:
        task = next((t for t in self.state.open_tasks.values() if t.kind is kind), None)
        if task is None:
            return Refusal("no such task open")
        return self.decide(c.CompleteTask(msg.TaskCompletion(
            task_id=task.task_id, organisation_id=task.assignee_org, actor_id="u-1",
            result=result)))

    def react(self) -> None:
        """What the workflow does next, as its loop would."""
        s = self.state
        if s.closed:
            return
        if s.missing is not None and not any(
                t.kind is TaskKind.TRACING for t in s.open_tasks.values()):
            self.decide(c.OpenTask(uuid.uuid4(), TaskKind.TRACING, self.clock))
        if s.concluded_missing:
            self._wind_up(EscortReleaseReason.PERSON_MISSING, Outcome.MISSING)
            return
        if s.consent_withdrawn is not None:
            if not s.on_road:
                self._wind_up(EscortReleaseReason.CONSENT_WITHDRAWN,
                              Outcome.ALTERNATIVE_PATHWAY)
            elif s.safe_place:
                self._wind_up(EscortReleaseReason.SAFE_PLACE_REACHED,
                              Outcome.ALTERNATIVE_PATHWAY)
            elif not any(t.kind is TaskKind.SAFE_PLACE for t in s.open_tasks.values()):
                self.decide(c.OpenTask(uuid.uuid4(), TaskKind.SAFE_PLACE, self.clock))
            return
        if s.booking is None and s.missing is None and not s.border_cleared and not (
                s.minor and not s.safeguards_done):
            entry = next((e for e in _ENTRY_POINTS if e not in s.refused_entry_points), None)
            if entry is None:
                return  # every route refused: the coordinator decides (an escalation)
            self.bookings += 1
            self.decide(c.RecordBooking(booking(departure_at=self.clock).booking.model_copy(
                update={"booking_ref": f"SIM-{self.bookings:08d}", "entry_point": entry})))
            if not self.state.escorts:
                self.decide(c.AssignEscort(uuid.uuid4(), EscortKind.STAFF,
                                           EscortScope.END_TO_END if self.state.minor
                                           else EscortScope.TO_HANDOFF))
                self.decide(c.AssignEscort(uuid.uuid4(), EscortKind.POLICE,
                                           EscortScope.TO_HANDOFF))

    def _wind_up(self, escort_reason: EscortReleaseReason, outcome: Outcome) -> None:
        if self.state.booking is not None and not self.state.departed:
            self.decide(c.CancelBooking())
        for escort_id in list(self.state.escorts):
            self.decide(c.ReleaseEscort(escort_id, escort_reason))
        for task_id in list(self.state.open_tasks):
            self.decide(c.CancelTask(task_id, "consent_withdrawn"))
        self.decide(c.CloseCase(outcome))


def protected(state: c.JourneyState, escort_id: uuid.UUID) -> bool:
    kind, scope = state.escorts[escort_id]
    return scope is EscortScope.END_TO_END or kind is EscortKind.POLICE


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(minor=st.booleans(), actions=st.lists(steps, min_size=15, max_size=60))
def test_the_road_in_any_order_keeps_her_safe_and_loses_nothing(minor, actions):
    age = AgeCategory.AGE_12_TO_17 if minor else AgeCategory.AGE_18_TO_24
    road = Road(ready_to_book(age_category=age, risk_level=RiskLevel.HIGH))
    road.react()
    for action in actions:
        road.clock += timedelta(hours=1)
        before = road.state
        if action[0] == "next":
            expected = sorted(expected_facts(before))
            if not expected:
                continue
            action = ("fact", expected[action[1] % len(expected)], *action[2:])
        match action:
            case ("fact", fact, failure, reporter):
                fits = "expected" if fact in expected_facts(before) else "refused"
                event(f"fact {fact.value} {fits}")  # --hypothesis-show-statistics
                decision = road.decide(c.RecordFact(
                    fact, reporter,
                    failure if fact is RoadFact.LEG_FAILED else None))
                if decision == []:  # accepted with no event: only a repeated report
                    assert before.last_fact == (fact, failure if fact is RoadFact.LEG_FAILED
                                                else None)
                elif not isinstance(decision, Refusal):
                    assert decision, "an accepted fact is recorded"
                    assert fact in expected_facts(before)
                else:
                    assert decision.reason
            case ("withdraw", change):
                road.decide(c.WithdrawConsent(change, rec()))
            case ("assess", age):
                road.decide(c.AssessAge(AgeAssessor.MEDICAL_ASSESSMENT, age, rec()))
            case ("safe_place", handed_to):
                road.complete(TaskKind.SAFE_PLACE, msg.SafePlaceResult(
                    place=SafePlace.PARTNER_NGO_CARE, handed_to=handed_to,
                    safe_place_record_id=rec()))
            case ("tracing", finding, then):
                road.complete(TaskKind.TRACING, msg.TracingResult(
                    finding=finding, then=then if finding is TracingFinding.FOUND_SAFE else None,
                    tracing_record_id=rec()))
            case ("release", reason):
                for escort_id in list(before.escorts):
                    decision = road.decide(c.ReleaseEscort(escort_id, reason))
                    if before.on_road and protected(before, escort_id):
                        event("a protected escort's release tried on the road")
                    if not isinstance(decision, Refusal) and protected(before, escort_id):
                        assert reason in _PROTECTED_RELEASES or not before.on_road
                    break
            case ("cancel_booking",):
                decision = road.decide(c.CancelBooking())
                if before.departed:
                    event("cancel tried on a leg under way")
                    assert isinstance(decision, Refusal), "a leg under way is never cancelled"
            case ("close", outcome):
                decision = road.decide(c.CloseCase(outcome))
                if not isinstance(decision, Refusal) and before.on_road:
                    assert before.safe_place or before.concluded_missing
        road.react()
        s = road.state
        # Escorts after departure: only handed over, never dropped.
        for escort_id in before.escorts.keys() - s.escorts.keys():
            if before.on_road and protected(before, escort_id):
                assert s.safe_place or s.handed_over_to_guardian or s.concluded_missing
    s = road.state
    if not s.closed:
        waiting = (expected_facts(s) or s.open_tasks
                   or (s.booking is None and s.consent_withdrawn is None
                       and not s.border_cleared))
        assert waiting, f"the case waits for nothing: {s}"
