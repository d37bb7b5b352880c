"""The ``complete_task`` Update validator: wrong organisation, unknown or finished task,
wrong or malformed payload, invalid consent, stigmatising identification — all rejected
before anything is written (no event in the store, no Update in the history)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from case_driver import (
    RECEIVING,
    SENDING,
    CaseDriver,
    case_input,
    consent,
    decision,
    screening,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from domain.journey import messages as msg
from domain.journey.vocabulary import IdentificationMethod, TaskKind
from workflows import ReturnCaseWorkflow


async def rejected(case: CaseDriver, completion) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await case.handle.execute_update(ReturnCaseWorkflow.complete_task, completion)
    return str(failure.value.cause)


async def accepted_updates(case: CaseDriver) -> int:
    history = await case.handle.fetch_history()
    return sum(1 for e in history.events
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)


async def test_rejected_completions_write_nothing(workflow_env, worker, task_queue, store):
    case = await CaseDriver.start(workflow_env.client, task_queue, store, case_input())
    task = await case.task(TaskKind.SCREENING_INTERVIEW)
    before = await case.event_types()
    assert before == ["case.referral_registered", "task.opened"]

    def completion(**kw):
        return msg.TaskCompletion(**{"task_id": task.task_id, "organisation_id": SENDING,
                                     "actor_id": "u-1", "result": screening(), **kw})

    why = await rejected(case, completion(organisation_id=RECEIVING))
    assert "assigned to iom-belgrade; iom-chisinau cannot complete it" in why
    why = await rejected(case, completion(organisation_id="ngo-unknown"))
    assert "ngo-unknown cannot complete it" in why
    why = await rejected(case, completion(task_id=uuid.uuid4()))
    assert "no such task" in why
    why = await rejected(case, completion(result=decision()))
    assert "screening_interview task" in why

    # Malformed payloads never reach the handler: a name where a vault record id belongs.
    with pytest.raises(WorkflowUpdateFailedError):
        await case.handle.execute_update(
            "complete_task",
            {"task_id": str(task.task_id), "organisation_id": SENDING, "actor_id": "u-1",
             "result": {"kind": "screening_interview", "interview_record_id": "Maria Popescu",
                        "interview_language": "ro", "interpreter_used": False,
                        "reads_languages": ["ro"],
                        "trafficking_status": "ActualVictimOfTrafficking"}},
        )
    with pytest.raises(WorkflowUpdateFailedError):
        await case.handle.execute_update("complete_task", {"task_id": "not-a-task"})

    assert await case.event_types() == before
    assert await accepted_updates(case) == 0

    done = await case.handle.execute_update(ReturnCaseWorkflow.complete_task, completion())
    assert done.event_types == ("screening.interview_recorded",)
    why = await rejected(case, completion())
    assert "already completed" in why
    assert await accepted_updates(case) == 1
    await case.task(TaskKind.OPTIONS_DECISION)
    assert await case.event_types() == [*before, "screening.interview_recorded", "task.opened"]
    assert (await case.status()).stage == "options"
    await case.terminate()


async def test_consent_in_a_language_she_does_not_read_is_refused(
    workflow_env, worker, task_queue, store
):
    case = await CaseDriver.start(workflow_env.client, task_queue, store, case_input())
    await case.complete(TaskKind.SCREENING_INTERVIEW, screening(reads_languages=("ro",)))
    await case.complete(TaskKind.OPTIONS_DECISION, decision())
    task = await case.task(TaskKind.INFORMED_CONSENT)
    # Workflow time: the time-skipping server's clock runs ahead of the wall clock.
    now = (await case.events())[-1].occurred_at

    def with_consent(**kw):
        return msg.TaskCompletion(task_id=task.task_id, organisation_id=SENDING,
                                  actor_id="u-1", result=consent(now, **kw))

    assert "the person reads ro" in await rejected(case, with_consent(form_language="en"))
    assert "not in use" in await rejected(case, with_consent(form_version="2019-3"))
    assert "record the interpreter" in await rejected(case, with_consent(interpreter_used=True))
    assert "future" in await rejected(case, with_consent(signed_at=now + timedelta(days=1)))
    await case.handle.execute_update(ReturnCaseWorkflow.complete_task,
                                     with_consent(interpreter_used=True,
                                                  interpreter_record_id="rec_interp0001"))
    assert (await case.event_types())[-1] == "consent.recorded"
    await case.terminate()


async def test_reception_refuses_a_branded_item_and_a_wrong_code(
    workflow_env, worker, task_queue, store
):
    case = await CaseDriver.start(workflow_env.client, task_queue, store, case_input())
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    task = await case.task(TaskKind.RECEPTION_HANDOFF)
    before = await case.event_types()

    def handoff(**kw):
        result = {"identification": IdentificationMethod.HANDOFF_CODE,
                  "safe_arrival_confirmed": True, **kw}
        return msg.TaskCompletion(task_id=task.task_id, organisation_id=RECEIVING,
                                  actor_id="u-7", result=msg.ReceptionHandoffResult(**result))

    why = await rejected(case, handoff(identification=IdentificationMethod.BRANDED_ITEM))
    assert "branded item is refused" in why and "stigmatises" in why
    assert "does not match" in await rejected(case, handoff(handoff_code="ABCDEFGH"))
    code = await case.handle.query(ReturnCaseWorkflow.handoff_code)
    assert "safe arrival" in await rejected(case, handoff(handoff_code=code,
                                                          safe_arrival_confirmed=False))
    wrong_org = handoff(handoff_code=code).model_copy(update={"organisation_id": SENDING})
    assert "assigned to iom-chisinau" in await rejected(case, wrong_org)
    assert await case.event_types() == before

    await case.handle.execute_update(ReturnCaseWorkflow.complete_task, handoff(handoff_code=code))
    assert (await case.result()).outcome == "returned"
    assert await case.handle.query(ReturnCaseWorkflow.handoff_code) is None


async def test_a_second_interview_needs_a_reason_and_happens_before_consent(
    workflow_env, worker, task_queue, store
):
    case = await CaseDriver.start(workflow_env.client, task_queue, store, case_input())

    def request(org=SENDING, reason="new_information"):
        return msg.RepeatInterviewRequest(organisation_id=org, actor_id="u-1", reason=reason)

    await case.task(TaskKind.SCREENING_INTERVIEW)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.handle.execute_update(ReturnCaseWorkflow.request_repeat_interview, request())
    assert "first screening interview is not recorded" in str(refused.value.cause)
    await case.complete(TaskKind.SCREENING_INTERVIEW, screening())
    await case.task(TaskKind.OPTIONS_DECISION)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.handle.execute_update(ReturnCaseWorkflow.request_repeat_interview,
                                         request(org=RECEIVING))
    assert "only the sending mission" in str(refused.value.cause)

    opened = await case.handle.execute_update(ReturnCaseWorkflow.request_repeat_interview,
                                              request())
    assert opened.kind == TaskKind.SCREENING_INTERVIEW
    # Completing it without saying why is refused: the first interview is reused by default.
    why = await rejected(case, msg.TaskCompletion(task_id=opened.task_id, organisation_id=SENDING,
                                                  actor_id="u-1", result=screening()))
    assert "needs a recorded reason" in why
    await case.handle.execute_update(ReturnCaseWorkflow.complete_task, msg.TaskCompletion(
        task_id=opened.task_id, organisation_id=SENDING, actor_id="u-1",
        result=screening(repeat_reason="new_information")))
    await case.complete(TaskKind.OPTIONS_DECISION, decision())
    await case.complete(TaskKind.INFORMED_CONSENT, consent(datetime.now(UTC)))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.handle.execute_update(ReturnCaseWorkflow.request_repeat_interview, request())
    assert "screening is over" in str(refused.value.cause)

    await case.task(TaskKind.TRAVEL_DOCUMENTS)
    events = await case.events()
    assert [e.event_type for e in events] == [
        "case.referral_registered", "task.opened", "screening.interview_recorded",
        "task.opened",  # options decision
        "task.opened", "screening.repeat_interview_requested",
        "screening.interview_recorded", "options.decision_recorded",
        "task.opened", "consent.recorded", "documents.requested", "task.opened",
    ]
    assert (events[4].author_org, events[5].author_org) == ("homeward", SENDING)
    assert events[5].payload["reason"] == "new_information"
    await case.terminate()


async def test_two_people_completing_the_same_task_at_once_exactly_one_wins(
    workflow_env, worker, task_queue, store
):
    import asyncio

    case = await CaseDriver.start(workflow_env.client, task_queue, store, case_input())
    task = await case.task(TaskKind.SCREENING_INTERVIEW)
    completions = [
        msg.TaskCompletion(task_id=task.task_id, organisation_id=SENDING, actor_id=f"u-{n}",
                           result=screening())
        for n in range(4)
    ]
    outcomes = await asyncio.gather(
        *(case.handle.execute_update(ReturnCaseWorkflow.complete_task, c) for c in completions),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, msg.TaskCompleted)]
    lost = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
    assert len(won) == 1 and len(lost) == 3
    assert all("already completed" in str(o.cause) for o in lost)
    await case.task(TaskKind.OPTIONS_DECISION)
    assert (await case.event_types()).count("screening.interview_recorded") == 1
    await case.terminate()


async def test_a_case_id_starts_one_workflow_only(workflow_env, worker, task_queue, store):
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from workflows.client import start_return_case

    case = await CaseDriver.start(workflow_env.client, task_queue, store, case_input())
    await case.task(TaskKind.SCREENING_INTERVIEW)
    with pytest.raises(WorkflowAlreadyStartedError):
        await start_return_case(workflow_env.client, case.input, task_queue)
    await case.terminate()
    with pytest.raises(WorkflowAlreadyStartedError):
        await start_return_case(workflow_env.client, case.input, task_queue)
