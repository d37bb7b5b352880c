"""The case service: what the routes ask of a case, over Temporal, the event store and
the person vault.

A request reads the case's stream once (``load``): the access facts and the folded state
every later check of that request needs come from that one read (``LoadedCase``)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetActivityRequest
from temporalio.client import Client, WorkflowHandle

from api.access import Action, CaseFacts, authorise, case_facts
from api.completions import completion_update_id
from api.errors import ApiError
from api.service.calls import (
    TEMPORAL_DEADLINE_SECONDS,
    now,
    pending_if_unconfirmed,
    require,
    temporal_call,
)
from api.service.keyed import Keyed, execute, first_or_raise, send
from domain import boundary as wf
from domain import catalogue
from domain.journey import messages as msg
from domain.journey.decider import CompleteTask, Context, JourneyState, decide, fold
from domain.journey.road import expected_facts
from domain.journey.vocabulary import ConsentChange, LegFailure, RoadFact, TaskKind
from domain.kernel import AgeCategory, Refusal, treated_as_minor
from domain.outside_events import SharingRevoked
from domain.reintegration import messages as rm
from store.accounts import Principal
from store.event_store import EventStore
from store.events import NewEvent, StoredEvent
from store.vault import NoteKind, PersonVault, VaultError, record_id_of

CATCH_UP_SECONDS = 5.0
"""How long a road fact is re-sent while its workflow trails its own stream."""

_WORKFLOW_TYPES = frozenset(cls.TYPE for cls in catalogue.WORKFLOW_EVENTS)  # type: ignore[attr-defined]


@dataclass
class LoadedCase:
    """One read of a case's stream, and what the request's checks derive from it."""

    case_id: str
    events: list[StoredEvent]
    facts: CaseFacts | None
    _state: JourneyState | None = field(default=None, repr=False)

    @property
    def state(self) -> JourneyState:
        """The journey's state folded from the events its workflow recorded, as the
        workflow's validator sees it (once per request). The API's and the vault's events
        (sharing, operator actions, identity) are not the journey's: an operator's
        reassignment names a task but does not complete it."""
        if self._state is None:
            self._state = fold(JourneyState(case_id=self.case_id), [
                catalogue.parse_event(e.event_type, e.schema_version, e.payload)
                for e in self.events if e.event_type in _WORKFLOW_TYPES])
        return self._state


@dataclass(frozen=True)
class Note:
    """A text to keep in the vault before a step is completed; its record id goes into
    the result's field ``field``."""

    kind: NoteKind
    text: str
    field: str


@dataclass(frozen=True)
class Step:
    """A coordinator's step, checked and ready to forward."""

    task_id: uuid.UUID
    completion: msg.TaskCompletion


PLACEHOLDER_RECORD_ID = "rec_" + "0" * 32  # stands in for a record not stored yet


class CaseService:
    def __init__(self, store: EventStore, vault: PersonVault, temporal: Client,
                 temporal_deadline: float = TEMPORAL_DEADLINE_SECONDS) -> None:
        self.store = store
        self.vault = vault
        self.temporal = temporal
        self.call = partial(temporal_call, deadline=temporal_deadline)

    # --- reading ------------------------------------------------------------------------

    async def load(self, case_id: str) -> LoadedCase:
        events = await self.store.read_case(case_id)
        facts = case_facts(case_id, events)
        if facts is None:
            facts = await self._registered_facts(case_id)
        return LoadedCase(case_id, events, facts)

    async def _registered_facts(self, case_id: str) -> CaseFacts | None:
        """A case registered with an identity (its workflow started, decision 0054) whose
        referral event the workflow has not appended yet: its parties as registered, so
        that the case is there from the registration's answer on. None for an unknown
        case id, and for a registration not finished (its workflow perhaps not started)."""
        registration = await self.vault.registration(case_id)
        if registration is None or not registration.confirmed:
            return None
        referral = registration.referral
        return CaseFacts(case_id, str(referral["sending_mission"]),
                         str(referral["receiving_mission"]), str(referral["border_partner"]),
                         treated_as_minor(AgeCategory(referral["age_category"])))

    def handle(self, case_id: str) -> WorkflowHandle:
        return self.temporal.get_workflow_handle(wf.workflow_id_for(case_id))

    async def handoff_code(self, case_id: str) -> str:
        """The one-time code the escort presents (only its hash is ever stored)."""
        code = await self.call(self.handle(case_id).query(
            wf.HANDOFF_CODE, result_type=str), what="reading the handoff code")
        if code is None:
            raise ApiError(409, "no_handoff_code",
                           "no handoff code is pending: the journey is not booked yet, or the "
                           "handoff is done")
        return code

    async def failing_steps(self, case_id: str) -> list[str]:
        """The activities of the case that failed at least once and wait on a retry (not
        one that is merely running); 409 when there is none."""
        described = await self.call(self.handle(case_id).describe(),
                                        what="reading the workflow")
        pending = [a for a in described.raw_description.pending_activities
                   if a.attempt > 1 or a.HasField("last_failure")]
        if not pending:
            raise ApiError(409, "nothing_to_retry",
                           "no step of this case is failing or waiting on a retry")
        return sorted({a.activity_type.name for a in pending})

    async def retry_now(self, caller: Principal, case_id: str) -> None:
        """Reset the case's pending activities to attempt 1, now."""
        await self.call(self.temporal.workflow_service.reset_activity(ResetActivityRequest(
            namespace=self.temporal.namespace,
            execution=WorkflowExecution(workflow_id=wf.workflow_id_for(case_id)),
            identity=f"{caller.org_id}/{caller.user_id}", match_all=True)),
            what="retrying the step")

    @staticmethod
    def open_task_id(case: LoadedCase, kind: TaskKind) -> uuid.UUID:
        """The case's open task of ``kind``, from the events its workflow recorded (the
        request's one read of the stream), never a workflow query: a query on a workflow
        out of the worker's cache replays its whole history (issue 12). A task the
        workflow opened but has not recorded yet is not open to anyone either: the
        workflow's validator decides the completion again."""
        task = next((t for t in case.state.open_tasks.values() if t.kind == kind), None)
        if task is None:
            raise ApiError(409, "no_open_task",
                           f"no {kind.value.replace('_', ' ')} task is open in this case")
        return task.task_id

    # --- the coordinator's steps --------------------------------------------------------

    @staticmethod
    def may_complete(caller: Principal, case: LoadedCase, task_id: uuid.UUID) -> None:
        """The coordinator's steps complete a task too: the same decision as the inbox (an
        operator may have reassigned it to a colleague)."""
        require(authorise(caller, Action.TASK_COMPLETE, case.facts, task_id=task_id))

    @staticmethod
    def precheck(case: LoadedCase, completion: msg.TaskCompletion) -> None:
        """Decide the completion on the case's recorded events before anything is written
        (the workflow's validator decides again, authoritatively)."""
        decision = decide(case.state, CompleteTask(completion), Context(now=now()))
        if isinstance(decision, Refusal):
            raise ApiError(409, decision.code, decision.reason)

    async def prepare_step(self, caller: Principal, case: LoadedCase, kind: TaskKind,
                           result: Any, note: Note | None = None, *,
                           precheck: bool = False) -> Step:
        """Find the open task of ``kind`` and check that the caller may complete it. With
        ``precheck`` the completion is also decided on the loaded case. With a ``note``,
        ``result`` holds a placeholder record id: the completion is decided first, so that
        a refused step stores nothing, then the note is stored and its record id put in
        the result."""
        task_id = self.open_task_id(case, kind)
        self.may_complete(caller, case, task_id)
        completion = msg.TaskCompletion(task_id=task_id, organisation_id=caller.org_id,
                                        actor_id=caller.user_id, result=result)
        if precheck or note is not None:
            self.precheck(case, completion)
        if note is not None:
            note_id = await self.add_note(caller, case.case_id, note.kind, note.text)
            completion = completion.model_copy(update={"result": result.model_copy(
                update={note.field: record_id_of(note_id)})})
        return Step(task_id, completion)

    @staticmethod
    def steering_key(caller: Principal, case_id: str, key: str | None,
                     note: Note | None) -> Keyed | None:
        """A coordinator's step under her Idempotency-Key: one key per step, whichever task
        it completes (a retry after the task closed no longer finds it open), so the task
        id and a note's record id (stored anew) are not compared."""
        exclude: dict[str, Any] = {"task_id": True}
        if note is not None:
            exclude["result"] = {note.field: True}
        return Keyed.of(key, caller, wf.COMPLETE_TASK, wf.workflow_id_for(case_id),
                        msg.TaskCompletion, msg.TaskCompleted, exclude)

    async def steered_before(self, caller: Principal, case: LoadedCase, kind: TaskKind,
                             result: Any, note: Note | None,
                             keyed: Keyed) -> msg.TaskCompleted | None:
        """The first answer to this step under the caller's key, when the step cannot be
        sent as it is: its task is closed (the answer to the first was lost), or a note
        would be stored a second time. None: send it."""
        if note is None and any(t.kind == kind for t in case.state.open_tasks.values()):
            return None
        asked = msg.TaskCompletion(task_id=uuid.UUID(int=0), organisation_id=caller.org_id,
                                   actor_id=caller.user_id, result=result)
        answer: msg.TaskCompleted | None = await keyed.first_answer(self.call, self.temporal,
                                                                    asked)
        return answer

    async def forward_completion(self, case_id: str, completion: msg.TaskCompletion,
                                 keyed: Keyed | None = None) -> msg.TaskCompleted:
        """The ``complete_task`` Update, with update id ``complete-<task id>`` (or the
        caller's key's): a second call returns the first one's result and writes nothing.
        Unconfirmed in time: ``CompletionPending`` (202)."""
        with pending_if_unconfirmed(completion.task_id):
            answer: msg.TaskCompleted = await execute(
                self.call, self.temporal, wf.workflow_id_for(case_id), wf.COMPLETE_TASK,
                completion, msg.TaskCompleted, keyed, what="completing the task",
                unkeyed_id=completion_update_id(completion.task_id))
            return answer

    async def forward_reintegration_completion(
            self, case_id: str, completion: rm.ReintegrationTaskCompletion) -> rm.Recorded:
        """The reintegration workflow's ``complete_task`` Update, idempotent the same way."""
        handle = self.temporal.get_workflow_handle(wf.reintegration_workflow_id_for(case_id))
        with pending_if_unconfirmed(completion.task_id):
            return await self.call(handle.execute_update(
                wf.COMPLETE_TASK, completion, id=f"complete-{completion.task_id}",
                result_type=rm.Recorded), what="completing the follow-up task")

    # --- facts and decisions from outside -----------------------------------------------

    async def report_fact(self, caller: Principal, case_id: str, fact: RoadFact,
                          failure: LegFailure | None,
                          idempotency_key: str | None = None) -> msg.FactRecorded:
        """The ``report_fact`` Update. The workflow's validator judges the fact against the
        state it has applied, which can trail its own stream for a moment: a step's event
        is in the store (and the case's stage shows it) before the workflow task that
        takes in the step's result has run, e.g. while a killed worker's tasks move to
        another. A fact the stream expects but the workflow refuses is therefore sent
        again until the workflow has caught up (``CATCH_UP_SECONDS``), then answered 503
        ``case_catching_up``, never a 409 that contradicts the case's stage. With a key, a
        retry after the case moved on gets the first answer."""
        report = msg.JourneyFact(organisation_id=caller.org_id, actor_id=caller.user_id,
                                 fact=fact, failure=failure)
        workflow_id = wf.workflow_id_for(case_id)
        keyed = Keyed.of(idempotency_key, caller, wf.REPORT_FACT, workflow_id,
                         msg.JourneyFact, msg.FactRecorded)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + CATCH_UP_SECONDS
        while True:
            try:
                recorded: msg.FactRecorded = await send(
                    self.call, self.temporal, workflow_id, wf.REPORT_FACT, report,
                    msg.FactRecorded, keyed, what="reporting the fact")
                return recorded
            except ApiError as refusal:
                if (refusal.code != "fact_not_expected_now"
                        or fact not in expected_facts((await self.load(case_id)).state)):
                    # Looked up once, not on every round of the catch-up: while the
                    # stream still expects the fact, nothing under the key was applied.
                    first: msg.FactRecorded = await first_or_raise(
                        self.call, self.temporal, keyed, report, refusal)
                    return first
                if loop.time() > give_up:
                    raise ApiError(503, "case_catching_up",
                                   "the case is still taking in its last step; report the "
                                   "fact again in a moment", retry_after=1) from None
                await asyncio.sleep(0.2)

    async def withdraw_consent(self, caller: Principal, case: LoadedCase,
                               change: ConsentChange, form_record_id: str | None,
                               idempotency_key: str | None = None) -> msg.WithdrawalRecorded:
        """Identity sharing ends first, then the workflow records her withdrawal."""
        assert case.facts is not None
        if case.facts.shared_with:
            await self.append_event(caller, case.case_id, SharingRevoked.TYPE,
                                    {"org_id": None, "reason": f"consent_{change.value}"})
        withdrawal = msg.ConsentWithdrawal(organisation_id=caller.org_id,
                                           actor_id=caller.user_id, change=change,
                                           form_record_id=form_record_id)
        recorded: msg.WithdrawalRecorded = await self._send(
            caller, wf.workflow_id_for(case.case_id), wf.RECORD_WITHDRAWAL, withdrawal,
            msg.WithdrawalRecorded, idempotency_key, what="recording her withdrawal")
        return recorded

    async def assess_age(self, caller: Principal, case: LoadedCase,
                         assessment: msg.AgeAssessment,
                         idempotency_key: str | None = None) -> tuple[bool, list[str]]:
        """Whether she is treated as a minor now, and the events recorded: by the journey
        when the sending mission assesses, by her follow-up otherwise."""
        assert case.facts is not None
        if assessment.organisation_id == case.facts.sending_mission:
            recorded: msg.AgeAssessed = await self._send(
                caller, wf.workflow_id_for(case.case_id), wf.RECORD_AGE_ASSESSMENT,
                assessment, msg.AgeAssessed, idempotency_key,
                what="recording the age assessment")
            return recorded.minor, list(recorded.event_types)
        try:
            done: rm.Recorded = await self._send(
                caller, wf.reintegration_workflow_id_for(case.case_id),
                wf.RECORD_AGE_ASSESSMENT, assessment, rm.Recorded, idempotency_key,
                what="recording the age assessment in the follow-up")
        except ApiError as error:
            if error.code != "case_not_running":
                raise
            raise ApiError(409, "no_follow_up", "her follow-up is not running: before the "
                           "handoff, the sending mission records an age assessment") from None
        return treated_as_minor(assessment.result), list(done.event_types)

    async def _send(self, caller: Principal, workflow_id: str, update: str, message: Any,
                    answer_type: type, idempotency_key: str | None, *, what: str) -> Any:
        """An Update, applied once under the caller's key if she sent one."""
        keyed = Keyed.of(idempotency_key, caller, update, workflow_id, type(message),
                         answer_type)
        return await execute(self.call, self.temporal, workflow_id, update, message,
                             answer_type, keyed, what=what)

    # --- what the API itself writes -----------------------------------------------------

    async def add_note(self, caller: Principal, case_id: str, kind: NoteKind,
                       text: str) -> uuid.UUID:
        try:
            return await self.vault.add_note(case_id, kind, text, by_org=caller.org_id,
                                             by_actor=caller.user_id)
        except VaultError as error:
            raise ApiError(409, "vault_refused", str(error)) from None

    async def append_event(self, caller: Principal, case_id: str, event_type: str,
                           payload: dict[str, Any]) -> None:
        """Events the API itself authors (sharing, operator actions), like the vault's."""
        await self.store.append(case_id, None, [NewEvent(
            uuid.uuid4(), event_type, 1, payload, caller.org_id, caller.user_id, now())])
