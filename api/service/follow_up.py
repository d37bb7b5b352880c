"""The receiving mission's follow-up through the API (decision 0064): a risk, an opt-out
(whole or per service line), a plan or schedule change, closure, reopening, each forwarded
to the case's reintegration workflow as its Update, whose validator decides.

Retrying safely: with an idempotency key, the Update's id is derived from the caller's
organisation and the key, so Temporal applies it once; the request Temporal accepted under
that id is read back and compared with the retry's (like a task completion, decision
0044): the same request gets the first answer, another is refused (422
``idempotency_key_reused``). Nothing is written on a refusal: the validator refuses before
the history holds anything, and a note (a risk's description) is stored in the vault only
after the risk was decided on the case's recorded events."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from api.completions import FirstCompletion, first_completion
from api.errors import ApiError
from api.service.calls import Unconfirmed, now
from api.service.cases import PLACEHOLDER_RECORD_ID, CaseService, LoadedCase
from domain import boundary as wf
from domain import catalogue
from domain.kernel import Refusal
from domain.reintegration import decider as r
from domain.reintegration import messages as rm
from domain.reintegration.config import ReintegrationConfig
from store.accounts import Principal
from store.vault import NoteKind, record_id_of

_FOLLOW_UP_TYPES = catalogue.FOLLOW_UP_TYPES


class FollowUpPending(Exception):
    """Sent, not confirmed in time: applied once if it arrives (202)."""

    def __init__(self, case_id: str):
        super().__init__(f"follow-up change of case {case_id} pending")
        self.case_id = case_id


@dataclass(frozen=True)
class Forward:
    """One Update to send: its name, its message, and the message field a vault note
    fills (its text stored only once the request is decided)."""

    update: str
    message: Any
    note_text: str | None = None
    note_field: str | None = None


def follow_up_state(case: LoadedCase) -> rm.ReintegrationState | None:
    """Her follow-up, folded from the events its workflow recorded (None: not started)."""
    assert case.facts is not None
    events = [catalogue.parse_event(e.event_type, e.schema_version, e.payload)
              for e in case.events if e.event_type in _FOLLOW_UP_TYPES]
    state = r.fold(rm.ReintegrationState(case_id=case.case_id,
                                         receiving_mission=case.facts.receiving_mission),
                   events)
    return state if state.started else None


def update_id(update: str, caller: Principal, key: str) -> str:
    """Scoped to the organisation, and a digest: a key never reaches the history."""
    digest = hashlib.sha256(f"{caller.org_id}\n{key}".encode()).hexdigest()[:32]
    return f"{update}-{digest}"


class FollowUpService:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases

    def _handle(self, case_id: str) -> WorkflowHandle:
        return self.cases.temporal.get_workflow_handle(
            wf.reintegration_workflow_id_for(case_id))

    async def record(self, caller: Principal, case: LoadedCase, forward: Forward,
                     idempotency_key: str | None) -> rm.Recorded:
        state = follow_up_state(case)
        if state is None:
            raise ApiError(409, "no_follow_up", "her follow-up has not started: it starts when "
                           "the receiving mission confirms her safe arrival")
        message = forward.message
        the_id = (update_id(forward.update, caller, idempotency_key)
                  if idempotency_key is not None else None)
        if forward.note_text is not None:
            # A retry must not store the note twice: the first answer, if there is one.
            if the_id is not None:
                first = await self._first(case.case_id, forward, the_id)
                if first is not None and first.answer is not None:
                    self._same_or_refuse(first.request, message, forward)
                    return first.answer
            self._precheck(state, forward)
            note_id = await self.cases.add_note(caller, case.case_id, NoteKind.FOLLOW_UP_NOTE,
                                                forward.note_text)
            message = message.model_copy(update={forward.note_field: record_id_of(note_id)})
        try:
            answer = await self.cases.call(self._handle(case.case_id).execute_update(
                forward.update, message, id=the_id, result_type=rm.Recorded),
                what="recording the follow-up change")
        except Unconfirmed:
            raise FollowUpPending(case.case_id) from None
        except ApiError as refused:
            # With a key, a retry after the workflow moved on (closed and ended, or
            # continued as new) still finds the first answer in the history.
            if refused.status != 409 or the_id is None:
                raise
            first = await self._first(case.case_id, forward, the_id)
            if first is None or first.answer is None:
                raise
            self._same_or_refuse(first.request, message, forward)
            return first.answer
        if the_id is not None:
            first = await self._first(case.case_id, forward, the_id)
            if first is None:
                raise ApiError(503, "temporal_unavailable",
                               "the change could not be confirmed; send it again")
            self._same_or_refuse(first.request, message, forward)
        return answer

    @staticmethod
    def _precheck(state: rm.ReintegrationState, forward: Forward) -> None:
        """Decided on the recorded events before a note is stored (the workflow's validator
        decides again). Only for risks: they depend on no part of the programme's
        configuration, which the workflow holds."""
        command = r.RecordRisk(forward.message)
        decision = r.decide(state, command, r.Context(ReintegrationConfig(), now(),
                                                      lambda: uuid.UUID(int=0)))
        if isinstance(decision, Refusal):
            raise ApiError(409, decision.code, decision.reason)

    async def _first(self, case_id: str, forward: Forward,
                     the_id: str) -> FirstCompletion | None:
        try:
            return await first_completion(
                self.cases.temporal, wf.reintegration_workflow_id_for(case_id), the_id,
                request_type=type(forward.message), answer_type=rm.Recorded)
        except RPCError:
            raise ApiError(503, "temporal_unavailable",
                           "the workflow service did not answer; try again") from None

    @staticmethod
    def _same_or_refuse(first: Any, message: Any, forward: Forward) -> None:
        ignored = {"actor_id"} | ({forward.note_field} if forward.note_field else set())
        if first.model_dump(exclude=ignored) == message.model_dump(exclude=ignored):
            return
        raise ApiError(422, "idempotency_key_reused",
                       "this idempotency key was used for another request; use a new key "
                       "for a new request")


__all__ = ["PLACEHOLDER_RECORD_ID", "FollowUpPending", "FollowUpService", "Forward",
           "follow_up_state"]
