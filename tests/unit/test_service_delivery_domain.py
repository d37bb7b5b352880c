"""Providers' delivery tasks and per-line opt-out in the reintegration decider (decision
0064), without Temporal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import count

from domain.catalogue import may_author
from domain.kernel import Refusal, Role
from domain.reintegration import decider as r
from domain.reintegration import events as rev
from domain.reintegration import messages as rm
from domain.reintegration.config import ReintegrationConfig
from domain.reintegration.vocabulary import (
    ReintegrationTaskKind,
    ServiceKind,
    ServiceStatus,
)

K = ReintegrationTaskKind
T0 = datetime(2026, 6, 1, 9, tzinfo=UTC)
RM, NGO = "mission-md", "ngo-training"
_IDS = count(1)


def ctx(now: datetime = T0, delivery_tasks: bool = True) -> r.Context:
    return r.Context(ReintegrationConfig(), now, lambda: uuid.UUID(int=next(_IDS)),
                     delivery_tasks=delivery_tasks)


def settle(s: rm.ReintegrationState, c: r.Context) -> rm.ReintegrationState:
    while events := r.next_step(s, c):
        s = r.fold(s, events)
    return s


def ok(s: rm.ReintegrationState, command: r.Command, c: r.Context | None = None):
    events = r.decide(s, command, c or ctx())
    assert not isinstance(events, Refusal), events
    return r.fold(s, events), events


def complete(s, kind: K, org: str, result) -> tuple[rm.ReintegrationState, list]:
    task = next(t for t in s.open_tasks if t.kind is kind and t.assignee_org == org)
    return ok(s, r.CompleteTask(rm.ReintegrationTaskCompletion(
        task_id=task.task_id, organisation_id=org, actor_id="u1", result=result)))


def line(service: ServiceKind, provider: str, days: int = 60) -> rev.ServiceLine:
    return rev.ServiceLine(line_id=uuid.uuid4(), service=service, provider_org=provider,
                           due_at=T0 + timedelta(days=days))


def planned(*lines: rev.ServiceLine, delivery_tasks: bool = True) -> rm.ReintegrationState:
    c = ctx(delivery_tasks=delivery_tasks)
    s, _ = ok(rm.ReintegrationState(case_id="case-000001", receiving_mission=RM),
              r.StartFollowUp(T0, False), c)
    s = settle(s, c)
    s, _ = complete(s, K.NEEDS_ASSESSMENT, RM, rm.NeedsAssessmentResult(
        assessment_record_id="rec_" + "a" * 32))
    s = settle(s, c)
    s, _ = complete(s, K.REINTEGRATION_PLAN, RM, rm.PlanResult(lines=lines))
    return settle(s, c)


def deliveries(s: rm.ReintegrationState) -> list[rm.OpenReintegrationTask]:
    return [t for t in s.open_tasks if t.kind is K.SERVICE_DELIVERY]


def test_an_outside_provider_gets_a_delivery_task_and_reports_on_it():
    training, counselling = line(ServiceKind.VOCATIONAL_TRAINING, NGO), line(
        ServiceKind.LEGAL_COUNSELLING, RM)
    s = planned(training, counselling)
    [task] = deliveries(s)
    assert (task.assignee_org, task.line_id) == (NGO, training.line_id)

    s, events = complete(s, K.SERVICE_DELIVERY, NGO,
                         rm.ServiceDeliveryResult(status=ServiceStatus.IN_PROGRESS))
    assert [type(e) for e in events] == [rev.ServiceDeliveryReported]
    assert may_author(Role.PARTNER, events[0].type)
    s = settle(s, ctx())
    [again] = deliveries(s)
    assert again.task_id != task.task_id  # in progress: report again later
    s, _ = complete(s, K.SERVICE_DELIVERY, NGO,
                    rm.ServiceDeliveryResult(status=ServiceStatus.DELIVERED))
    s = settle(s, ctx())
    assert deliveries(s) == []
    assert {x.line_id: x.status for x in s.plan}[training.line_id] is ServiceStatus.DELIVERED


def test_the_provider_may_do_nothing_else():
    s = planned(line(ServiceKind.VOCATIONAL_TRAINING, NGO))
    refused = r.decide(s, r.RecordRisk(rm.RiskReport(
        organisation_id=NGO, actor_id="u1", indicator="recruiter_contact")), ctx())
    assert isinstance(refused, Refusal) and refused.code == "wrong_organisation"
    other = next(t for t in s.open_tasks if t.kind is not K.SERVICE_DELIVERY)
    refused = r.decide(s, r.CompleteTask(rm.ReintegrationTaskCompletion(
        task_id=other.task_id, organisation_id=NGO, actor_id="u1",
        result=rm.ServiceDeliveryResult(status=ServiceStatus.DELIVERED))), ctx())
    assert isinstance(refused, Refusal)


def test_she_opts_out_of_one_line_and_the_rest_goes_on():
    training, housing = line(ServiceKind.VOCATIONAL_TRAINING, NGO), line(
        ServiceKind.HOUSING, NGO)
    s = planned(training, housing)
    assert len(deliveries(s)) == 2
    s, events = ok(s, r.RecordOptOut(rm.OptOut(organisation_id=RM, actor_id="u1",
                                               line_ids=(housing.line_id,))))
    assert [type(e) for e in events] == [rev.PlanChanged, rev.ReintegrationTaskCancelled]
    assert not s.closed and not s.opted_out
    assert [t.line_id for t in deliveries(settle(s, ctx()))] == [training.line_id]
    again = r.decide(s, r.RecordOptOut(rm.OptOut(organisation_id=RM, actor_id="u1",
                                                 line_ids=(housing.line_id,))), ctx())
    assert isinstance(again, Refusal) and again.code == "line_ended"


def test_closing_cancels_deliveries_and_they_do_not_hold_the_end_of_support():
    s = planned(line(ServiceKind.VOCATIONAL_TRAINING, NGO))
    s, events = ok(s, r.CloseFollowUp(rm.Closure(organisation_id=RM, actor_id="u1",
                                                 reason="moved_away")))
    assert deliveries(s) == [] and s.closed


def test_runs_from_before_replay_without_delivery_tasks():
    s = planned(line(ServiceKind.VOCATIONAL_TRAINING, NGO), delivery_tasks=False)
    assert deliveries(s) == []
