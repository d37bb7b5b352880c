"""Reintegration's state machine without Temporal: decide, evolve, the agenda, scores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from pydantic import ValidationError

from domain.catalogue import CATALOGUE, may_author, parse_event, payload_of
from domain.kernel import Refusal, Role
from domain.reintegration import decider as r
from domain.reintegration import events as rev
from domain.reintegration import messages as rm
from domain.reintegration.config import GrantInstalmentSpec, ReintegrationConfig
from domain.reintegration.vocabulary import (
    CheckinStatus,
    ClosureReason,
    ContactChannel,
    InstalmentStatus,
    InstalmentTrigger,
    Level,
    NotReachedReason,
    NotRestoredReason,
    OwedOnReopening,
    PaymentFailure,
    PaymentReviewResolution,
    ReintegrationTaskKind,
    ReopenReason,
    RiskIndicator,
    ServiceKind,
    ServiceStatus,
)

K = ReintegrationTaskKind
T0 = datetime(2026, 6, 1, 9, tzinfo=UTC)
DAY = timedelta(days=1)
RM = "iom-chisinau"
CONFIG = ReintegrationConfig()


_IDS = count(1)


def ctx(now: datetime = T0, config: ReintegrationConfig = CONFIG) -> r.Context:
    return r.Context(config, now, lambda: uuid.UUID(int=next(_IDS)))


def started(pre_paid: bool = False, config: ReintegrationConfig = CONFIG) -> rm.ReintegrationState:
    s = rm.ReintegrationState(case_id="case-000001", receiving_mission=RM)
    events = r.decide(s, r.StartFollowUp(T0, pre_paid), ctx(config=config))
    assert not isinstance(events, Refusal)
    return settle(r.fold(s, events), T0, config)


def settle(s: rm.ReintegrationState, now: datetime,
           config: ReintegrationConfig = CONFIG) -> rm.ReintegrationState:
    """Run the agenda until it has nothing left to do at ``now``."""
    c = ctx(now, config)
    for _ in range(20):
        events = r.next_step(s, c)
        if not events:
            return s
        s = r.fold(s, events)
    raise AssertionError("the agenda never settles")


def complete(s: rm.ReintegrationState, kind: K, result, now: datetime = T0, org: str = RM,
             config: ReintegrationConfig = CONFIG):
    task = next(t for t in s.open_tasks if t.kind is kind)
    return r.decide(s, r.CompleteTask(rm.ReintegrationTaskCompletion(
        task_id=task.task_id, organisation_id=org, actor_id="u-1", result=result)),
        ctx(now, config))


def done(s, kind, result, now=T0, config=CONFIG) -> rm.ReintegrationState:
    events = complete(s, kind, result, now, config=config)
    assert not isinstance(events, Refusal), events
    return settle(r.fold(s, events), now, config)


REACHED = rm.CheckInResult(reached=True, channel=ContactChannel.PHONE)
MISSED = rm.CheckInResult(reached=False, not_reached_reason=NotReachedReason.NO_ANSWER)


def test_start_opens_the_needs_assessment_and_the_instalments_due_now():
    s = started()
    assert [(t.kind, t.instalment) for t in s.open_tasks] == [
        (K.NEEDS_ASSESSMENT, None), (K.GRANT_PAYMENT, 1), (K.GRANT_PAYMENT, 2)]
    assert s.open_tasks[0].due_at == T0 + 7 * DAY
    assert [i.status for i in s.instalments] == [InstalmentStatus.OPEN, InstalmentStatus.OPEN,
                                                 InstalmentStatus.WAITING]
    assert [c.due_at - T0 for c in s.check_ins] == [30 * DAY, 90 * DAY, 180 * DAY, 365 * DAY]
    assert r.stage_of(s).value == "needs_assessment"
    assert r.next_wake(s) == T0 + 7 * DAY  # the earliest task due
    # Paid by the journey before departure: not an instalment of reintegration.
    assert [i.trigger for i in started(pre_paid=True).instalments] == [
        InstalmentTrigger.AT_RECEPTION, InstalmentTrigger.AT_CHECK_IN]
    assert isinstance(r.decide(s, r.StartFollowUp(T0, False), ctx()), Refusal)


def test_the_programme_grant_is_150_usd_in_three_instalments():
    grant = ReintegrationConfig().grant
    assert [(g.trigger, g.check_in, g.amount_minor, g.currency) for g in grant] == [
        (InstalmentTrigger.BEFORE_DEPARTURE, None, 5000, "USD"),
        (InstalmentTrigger.AT_RECEPTION, None, 5000, "USD"),
        (InstalmentTrigger.AT_CHECK_IN, 1, 5000, "USD")]
    with pytest.raises(ValidationError):
        ReintegrationConfig(grant=(GrantInstalmentSpec(trigger=InstalmentTrigger.AT_CHECK_IN,
                                                       check_in=9, amount_minor=100),))
    with pytest.raises(ValidationError):
        ReintegrationConfig(check_ins_after_arrival=(90 * DAY, 30 * DAY))


def test_a_check_in_opens_on_its_date_and_the_instalment_due_there_after_it():
    s = started(pre_paid=True)
    assert not [t for t in s.open_tasks if t.kind is K.CHECK_IN]
    s = settle(s, T0 + 30 * DAY)
    [check_in] = [t for t in s.open_tasks if t.kind is K.CHECK_IN]
    assert (check_in.check_in, check_in.due_at) == (1, T0 + 44 * DAY)
    s = done(s, K.CHECK_IN, REACHED, T0 + 31 * DAY)
    assert s.instalment(2).status is InstalmentStatus.OPEN
    assert s.check_in(1).status is CheckinStatus.REACHED


def test_misses_lose_contact_and_a_located_person_resumes_the_schedule():
    s = started(pre_paid=True)
    s = done(settle(s, T0 + 30 * DAY), K.CHECK_IN, MISSED, T0 + 30 * DAY)
    assert (s.consecutive_misses, s.contact_lost) == (1, False)
    s = done(settle(s, T0 + 90 * DAY), K.CHECK_IN, MISSED, T0 + 90 * DAY)
    assert s.contact_lost and [t.kind for t in s.open_tasks if t.kind is K.TRACING]
    assert r.stage_of(s).value == "contact_lost"
    # While lost, the dates of check-ins 3 and 4 pass without a task.
    s = settle(s, T0 + 400 * DAY)
    assert not [t for t in s.open_tasks if t.kind is K.CHECK_IN]
    events = complete(s, K.TRACING, rm.TracingResult(located=True,
                                                     channel=ContactChannel.HOME_VISIT),
                      T0 + 400 * DAY)
    assert events[-1] == rev.ContactRestored(skipped_check_ins=(3,))
    s = settle(r.fold(s, events), T0 + 400 * DAY)
    assert s.check_in(3).status is CheckinStatus.SKIPPED
    assert s.check_in(4).status is CheckinStatus.OPEN  # the latest opens now
    assert s.instalment(2).status is InstalmentStatus.OPEN  # the one due at check-in 1


def test_a_payment_retries_with_backoff_then_escalates_for_review():
    config = ReintegrationConfig(payment_attempts=3)
    s = started(pre_paid=True, config=config)
    failed = rm.GrantPaymentResult(paid=False, failure=PaymentFailure.ACCOUNT_UNAVAILABLE)
    events = complete(s, K.GRANT_PAYMENT, failed, config=config)
    s = r.fold(s, events)
    step = r.next_step(s, ctx(config=config))
    assert step == [rev.PaymentRetryScheduled(instalment=1, next_attempt=2,
                                              not_before=T0 + 2 * DAY)]
    s = settle(r.fold(s, step), T0, config)
    assert r.payment_failing(s) and r.next_wake(s) == T0 + 2 * DAY
    s = settle(s, T0 + 2 * DAY, config)
    s = done(s, K.GRANT_PAYMENT, failed, T0 + 2 * DAY, config)
    assert s.instalment(1).retry_at == T0 + 6 * DAY  # 2 days, then 4
    s = settle(s, T0 + 6 * DAY, config)
    events = complete(s, K.GRANT_PAYMENT, failed, T0 + 6 * DAY, config=config)
    s = r.fold(s, events)
    step = r.next_step(s, ctx(T0 + 6 * DAY, config))
    assert [type(e) for e in step] == [rev.ReintegrationEscalated, rev.ReintegrationTaskOpened]
    assert step[0].reason.value == "payment_failures_limit"
    assert config.payment_retry_delay(10) == config.payment_retry_max


def test_payment_results_must_be_consistent():
    s = started()
    assert isinstance(complete(s, K.GRANT_PAYMENT, rm.GrantPaymentResult(paid=False)), Refusal)
    assert isinstance(complete(s, K.GRANT_PAYMENT, rm.GrantPaymentResult(
        paid=True, failure=PaymentFailure.OTHER)), Refusal)
    [paid] = complete(s, K.GRANT_PAYMENT, rm.GrantPaymentResult(paid=True))
    assert (paid.amount_minor, paid.currency, paid.method.value, paid.attempt) == (
        5000, "USD", "cash", 1)


def test_only_the_receiving_mission_changes_reintegration():
    s = started()
    result = rm.NeedsAssessmentResult(assessment_record_id="rec_abcdefgh1")
    why = complete(s, K.NEEDS_ASSESSMENT, result, org="iom-belgrade")
    assert isinstance(why, Refusal) and "receiving mission" in why.reason
    for command in (
        r.RecordRisk(rm.RiskReport(organisation_id="iom-belgrade", actor_id="u-1",
                                   indicator=RiskIndicator.RECRUITER_CONTACT)),
        r.RecordOptOut(rm.OptOut(organisation_id="ngo-x1", actor_id="u-1")),
        r.CloseFollowUp(rm.Closure(organisation_id="iom-belgrade", actor_id="u-1",
                           reason=ClosureReason.DIED)),
    ):
        assert isinstance(r.decide(s, command, ctx()), Refusal)


def test_a_risk_escalates_at_once_even_after_closure():
    s = started()
    close = r.decide(s, r.CloseFollowUp(rm.Closure(organisation_id=RM, actor_id="u-1",
                                           reason=ClosureReason.MOVED_AWAY)), ctx())
    s = r.fold(s, close)
    assert s.closed and not s.open_tasks
    assert all(i.status is InstalmentStatus.CANCELLED for i in s.instalments)
    assert {c.status for c in s.check_ins} == {CheckinStatus.CANCELLED}
    events = r.decide(s, r.RecordRisk(rm.RiskReport(
        organisation_id=RM, actor_id="u-1", indicator=RiskIndicator.VIOLENCE_AT_HOME)), ctx())
    assert [e.type for e in events] == ["reintegration.risk_recorded", "reintegration.escalated"]
    assert events[1].reason.value == "threat"


def test_opting_out_cancels_everything_and_closes():
    s = started()
    events = r.decide(s, r.RecordOptOut(rm.OptOut(organisation_id=RM, actor_id="u-1")), ctx())
    assert [e.type for e in events] == [
        "reintegration.opted_out", *["reintegration.task_cancelled"] * 3,
        *["reintegration.grant_cancelled"] * 3, "reintegration.closed"]
    s = r.fold(s, events)
    assert s.closed_reason is ClosureReason.OPTED_OUT and r.next_wake(s) is None
    assert r.next_step(s, ctx(T0 + 400 * DAY)) == []
    assert isinstance(r.decide(s, r.CloseFollowUp(rm.Closure(
        organisation_id=RM, actor_id="u-1", reason=ClosureReason.DIED)), ctx()), Refusal)
    reopened = r.decide(s, r.ReopenFollowUp(rm.Reopening(organisation_id=RM, actor_id="u-1",
                                                 reason=ReopenReason.PERSON_REQUESTED)), ctx())
    s = r.fold(s, reopened)
    assert not s.closed and [c.number for c in s.check_ins][-2:] == [5, 6]


def test_closure_reasons_are_codes():
    s = started()
    close = r.CloseFollowUp(rm.Closure(organisation_id=RM, actor_id="u-1",
                                       reason=ClosureReason.OTHER))
    assert isinstance(r.decide(s, close, ctx()), Refusal)
    assert isinstance(r.decide(s, r.CloseFollowUp(rm.Closure(
        organisation_id=RM, actor_id="u-1", reason=ClosureReason.OPTED_OUT)), ctx()), Refusal)
    with pytest.raises(ValidationError):
        rm.Closure(organisation_id=RM, actor_id="u-1", reason=ClosureReason.OTHER,
                   other_code="She moved in with her aunt")
    with pytest.raises(ValidationError):
        rev.ReintegrationClosed(reason=ClosureReason.DIED, other_code="x")


def _line(service=ServiceKind.HOUSING, status=ServiceStatus.PLANNED, due=T0 + 60 * DAY):
    return rev.ServiceLine(line_id=uuid.uuid4(), service=service, provider_org="ngo-a1",
                           due_at=due, status=status)


def test_plan_lines_move_forward_only_and_declining_is_recorded():
    s = done(started(), K.NEEDS_ASSESSMENT, rm.NeedsAssessmentResult(
        assessment_record_id="rec_abcdefgh1", needs=(ServiceKind.HOUSING,)))
    assert isinstance(complete(s, K.REINTEGRATION_PLAN, rm.PlanResult()), Refusal)
    declined = complete(s, K.REINTEGRATION_PLAN, rm.PlanResult(declined_whole_plan=True))
    assert [e.type for e in declined] == ["reintegration.plan_declined"]
    housing = _line()
    s = done(s, K.REINTEGRATION_PLAN, rm.PlanResult(lines=(housing, _line(
        ServiceKind.MICRO_CREDIT, ServiceStatus.DECLINED))))
    assert r.stage_of(s).value == "follow_up"

    def change(*lines, now=T0):
        return r.decide(s, r.ChangePlan(rm.PlanChange(organisation_id=RM, actor_id="u-1",
                                                      lines=lines)), ctx(now))

    delivered = housing.model_copy(update={"status": ServiceStatus.DELIVERED})
    s = r.fold(s, change(delivered))
    assert s.plan[0].status is ServiceStatus.DELIVERED
    assert "does not change" in change(delivered.model_copy(
        update={"status": ServiceStatus.DROPPED})).reason
    assert "keeps its service" in change(delivered.model_copy(
        update={"service": ServiceKind.EDUCATION})).reason
    assert "in the past" in change(_line(due=T0 - DAY)).reason
    assert "starts planned" in change(_line(status=ServiceStatus.DELIVERED)).reason


def test_rescheduling_replaces_the_remaining_check_ins_only():
    s = done(settle(started(), T0 + 30 * DAY), K.CHECK_IN, REACHED, T0 + 30 * DAY)

    def reschedule(*offsets, now=T0 + 31 * DAY):
        return r.decide(s, r.ChangePlan(rm.PlanChange(
            organisation_id=RM, actor_id="u-1", remaining_check_ins_after_arrival=offsets)),
            ctx(now))

    [changed] = reschedule(60 * DAY, 200 * DAY)
    s2 = r.fold(s, [changed])
    assert [(c.number, c.due_at - T0, c.status.value) for c in s2.check_ins] == [
        (1, 30 * DAY, "reached"), (2, 60 * DAY, "scheduled"), (3, 200 * DAY, "scheduled")]
    assert r.next_check_in_due(s2) == T0 + 60 * DAY
    assert "in the future" in reschedule(20 * DAY).reason
    assert "strictly increasing" in reschedule(90 * DAY, 60 * DAY).reason


def test_the_year_ends_with_the_sustainability_assessment_and_closes():
    s = done(started(pre_paid=True), K.NEEDS_ASSESSMENT, rm.NeedsAssessmentResult(
        assessment_record_id="rec_abcdefgh1"))
    s = done(s, K.REINTEGRATION_PLAN, rm.PlanResult(declined_whole_plan=True))
    s = done(s, K.GRANT_PAYMENT, rm.GrantPaymentResult(paid=True))
    for n, day in enumerate((30, 90, 180, 365), 1):
        s = done(settle(s, T0 + day * DAY), K.CHECK_IN, REACHED, T0 + day * DAY)
        if n == 1:
            s = done(s, K.GRANT_PAYMENT, rm.GrantPaymentResult(paid=True), T0 + day * DAY)
    assert r.stage_of(s).value == "final_assessment"
    indicators = rev.SustainabilityIndicators(
        income=Level.NONE, housing=Level.PARTIAL, basic_needs_met=False,
        family_support=Level.NONE, access_to_services=False, stigma_experienced=True,
        feels_safe=False, wellbeing_rating=1, has_trusted_person=False)
    s = done(s, K.SUSTAINABILITY_ASSESSMENT, rm.SustainabilityResult(indicators=indicators),
             T0 + 366 * DAY)
    assert s.sustainability == rm.SustainabilityScores(economic=0.17, social=0.0,
                                                       psychosocial=0.0)
    assert s.closed_reason is ClosureReason.SUPPORT_PERIOD_ENDED


def test_scores_are_means_of_their_indicators():
    best = rev.SustainabilityIndicators(
        income=Level.FULL, housing=Level.FULL, basic_needs_met=True, family_support=Level.FULL,
        access_to_services=True, stigma_experienced=False, feels_safe=True, wellbeing_rating=5,
        has_trusted_person=True)
    assert r.sustainability_scores(best) == rm.SustainabilityScores(
        economic=1.0, social=1.0, psychosocial=1.0)
    with pytest.raises(ValidationError):
        best.model_copy(update={"wellbeing_rating": 6}).model_validate(
            {**best.model_dump(), "wellbeing_rating": 6})


def test_reintegration_events_join_the_union_with_owners():
    types = {cls.model_fields["type"].default for cls in rev.REINTEGRATION_EVENTS}
    assert types <= set(CATALOGUE)
    assert may_author(Role.RECEIVING_MISSION, "reintegration.check_in_reached")
    assert not may_author(Role.SENDING_MISSION, "reintegration.check_in_reached")
    assert may_author(Role.SYSTEM, "reintegration.task_opened")
    assert not may_author(Role.RECEIVING_MISSION, "reintegration.escalated")
    event = rev.ContactLost(consecutive_misses=2)
    assert parse_event(event.type, 1, payload_of(event)) == event


def test_the_workflow_module_imports_only_stdlib_temporalio_and_domain():
    import ast
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "workflows" / "reintegration.py"
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    third_party = {r for r in roots if r not in sys.stdlib_module_names and r != "__future__"}
    assert third_party <= {"temporalio", "domain", "workflows"}


# --- reopening: what she is still owed (decision 0041) ----------------------------------


def close(s: rm.ReintegrationState, now: datetime,
          reason: ClosureReason = ClosureReason.MOVED_AWAY) -> rm.ReintegrationState:
    events = r.decide(s, r.CloseFollowUp(rm.Closure(organisation_id=RM, actor_id="u-1",
                                            reason=reason)), ctx(now))
    assert not isinstance(events, Refusal), events
    # The workflow stamps the closure time on the state (``closed_at``) as it records it.
    return r.fold(s, events).model_copy(update={"closed_at": now})


def reopen(s: rm.ReintegrationState, now: datetime, **decision) -> list | Refusal:
    return r.decide(s, r.ReopenFollowUp(rm.Reopening(
        organisation_id=RM, actor_id="u-1", reason=ReopenReason.SAFETY_CONCERN, **decision)),
        ctx(now))


def payment_tasks(s: rm.ReintegrationState) -> list[int | None]:
    return [t.instalment for t in s.open_tasks if t.kind is K.GRANT_PAYMENT]


def test_reopening_for_a_safety_concern_restores_the_instalments_the_closure_cancelled():
    s = started(pre_paid=True)  # instalment 1 due at reception, 2 at the first check-in
    s = close(s, T0 + 5 * DAY)
    assert [i.status for i in s.instalments] == [InstalmentStatus.CANCELLED] * 2
    assert payment_tasks(s) == []

    at = T0 + 40 * DAY
    events = reopen(s, at)
    reopened, needs = events
    assert reopened.owed is OwedOnReopening.RESTORED
    # Instalment 1 was due at the closure: due at once. Instalment 2 waited for check-in 1,
    # cancelled with the case: it now waits for the first check-in after reopening (5).
    assert reopened.restored_instalments == (
        rev.RestoredInstalment(instalment=1, check_in=None),
        rev.RestoredInstalment(instalment=2, check_in=5))
    assert [c.number for c in reopened.check_ins] == [5, 6]
    assert reopened.kept_cancelled_instalments == () and reopened.not_restored_reason is None
    # The closure came before her needs assessment: it is owed too, and opens again.
    assert (needs.kind, needs.due_at) == (K.NEEDS_ASSESSMENT, at + 7 * DAY)

    s = settle(r.fold(s, events), at)
    assert payment_tasks(s) == [1]
    assert [(i.status, i.check_in) for i in s.instalments] == [
        (InstalmentStatus.OPEN, None), (InstalmentStatus.WAITING, 5)]
    s = done(s, K.GRANT_PAYMENT, rm.GrantPaymentResult(paid=True), at)
    s = done(settle(s, at + 30 * DAY), K.CHECK_IN, REACHED, at + 30 * DAY)
    assert payment_tasks(s) == [2]  # paid at the first check-in after reopening
    s = done(s, K.GRANT_PAYMENT, rm.GrantPaymentResult(paid=True), at + 30 * DAY)
    assert [i.status for i in s.instalments] == [InstalmentStatus.PAID] * 2


def test_reopening_after_she_opted_out_restores_the_whole_grant_still_owed():
    s = started()  # three instalments, none paid
    events = r.decide(s, r.RecordOptOut(rm.OptOut(organisation_id=RM, actor_id="u-1")), ctx())
    s = r.fold(s, events).model_copy(update={"closed_at": T0})
    [reopened, _needs] = reopen(s, T0 + 60 * DAY)
    assert [(x.instalment, x.check_in) for x in reopened.restored_instalments] == [
        (1, None), (2, None), (3, 5)]


def test_the_mission_may_decide_at_reopening_not_to_restore_and_that_is_recorded():
    s = done(started(pre_paid=True), K.NEEDS_ASSESSMENT, rm.NeedsAssessmentResult(
        assessment_record_id="rec_abcdefgh1"))
    s = close(s, T0 + 5 * DAY)
    at = T0 + 40 * DAY
    assert "needs a reason" in reopen(s, at, owed=OwedOnReopening.KEPT_CANCELLED).reason
    assert "needs a reason" in reopen(
        s, at, not_restored_reason=NotRestoredReason.PERSON_DECLINED).reason
    assert "written decision" in reopen(s, at, owed=OwedOnReopening.KEPT_CANCELLED,
                                        not_restored_reason=NotRestoredReason.OTHER).reason

    [reopened] = reopen(s, at, owed=OwedOnReopening.KEPT_CANCELLED,
                        not_restored_reason=NotRestoredReason.PAID_OUTSIDE_PROGRAMME,
                        decision_record_id="rec_decision01")
    assert payload_of(reopened) == {
        "reason": "safety_concern",
        "check_ins": [{"number": 5, "due_at": (at + 30 * DAY).isoformat().replace(
            "+00:00", "Z")}, {"number": 6, "due_at": (at + 90 * DAY).isoformat().replace(
                "+00:00", "Z")}],
        "owed": "kept_cancelled", "restored_instalments": [],
        "kept_cancelled_instalments": [1, 2],
        "not_restored_reason": "paid_outside_programme",
        "decision_record_id": "rec_decision01"}
    s = settle(r.fold(s, [reopened]), at)
    assert payment_tasks(s) == []
    s = done(settle(s, at + 30 * DAY), K.CHECK_IN, REACHED, at + 30 * DAY)
    assert payment_tasks(s) == []
    assert [i.status for i in s.instalments] == [InstalmentStatus.CANCELLED] * 2
    # The decision stands: a later closure and reopening does not bring them back.
    s = close(s, at + 31 * DAY)
    [again] = reopen(s, at + 32 * DAY)
    assert again.owed is OwedOnReopening.RESTORED and again.restored_instalments == ()


def test_an_instalment_a_payment_review_cancelled_is_not_restored_by_reopening():
    config = ReintegrationConfig(payment_attempts=1)
    s = started(pre_paid=True, config=config)
    s = done(s, K.GRANT_PAYMENT, rm.GrantPaymentResult(
        paid=False, failure=PaymentFailure.ACCOUNT_UNAVAILABLE), config=config)
    s = done(s, K.PAYMENT_REVIEW, rm.PaymentReviewResult(
        resolution=PaymentReviewResolution.CANCEL), config=config)
    s = close(s, T0 + 5 * DAY)
    [reopened, _needs] = reopen(s, T0 + 6 * DAY)
    assert reopened.restored_instalments == (rev.RestoredInstalment(instalment=2, check_in=5),)


def test_reopening_is_refused_once_a_year_has_passed_since_the_closure():
    s = close(started(), T0 + 10 * DAY)
    assert CONFIG.reopen_window == 365 * DAY
    assert not isinstance(reopen(s, T0 + 10 * DAY + 364 * DAY), Refusal)
    late = reopen(s, T0 + 10 * DAY + 365 * DAY)
    assert isinstance(late, Refusal) and late.code == "reopen_window_passed"
    assert "within 365 days" in late.reason


def test_runs_that_reopened_before_the_owed_decision_replay_without_restoring():
    s = close(started(pre_paid=True), T0 + 5 * DAY)
    [reopened] = r.decide(s, r.ReopenFollowUp(rm.Reopening(
        organisation_id=RM, actor_id="u-1", reason=ReopenReason.NEW_NEEDS),
        restores_owed=False), ctx(T0 + 6 * DAY))
    assert (reopened.owed, reopened.restored_instalments) == (None, ())
    s = settle(r.fold(s, [reopened]), T0 + 6 * DAY)
    assert payment_tasks(s) == []
    # Stored events of that time (no decision fields) still parse: nothing was restored.
    old = {k: v for k, v in payload_of(reopened).items()
           if k in ("reason", "check_ins")}
    assert parse_event(reopened.type, 1, old) == reopened
