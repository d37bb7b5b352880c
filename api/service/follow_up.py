"""The receiving mission's follow-up through the API (decision 0064): a risk, an opt-out
(whole or per service line), a plan or schedule change, closure, reopening, each forwarded
to the case's reintegration workflow as its Update, whose validator decides.

Retrying safely: with an idempotency key the change is applied once and a retry gets the
first answer (``api.service.keyed``). Nothing is written on a refusal: the validator
refuses before the history holds anything, and a note (a risk's description) is stored in
the vault only after the risk was decided on the case's recorded events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from api.errors import ApiError
from api.service.calls import Unconfirmed, now
from api.service.cases import PLACEHOLDER_RECORD_ID, CaseService, LoadedCase
from api.service.keyed import Keyed, execute
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


class FollowUpService:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases

    async def record(self, caller: Principal, case: LoadedCase, forward: Forward,
                     idempotency_key: str | None) -> rm.Recorded:
        state = follow_up_state(case)
        if state is None:
            raise ApiError(409, "no_follow_up", "her follow-up has not started: it starts when "
                           "the receiving mission confirms her safe arrival")
        message = forward.message
        workflow_id = wf.reintegration_workflow_id_for(case.case_id)
        keyed = Keyed.of(idempotency_key, caller, forward.update, workflow_id, type(message),
                         rm.Recorded, {forward.note_field: True} if forward.note_field else {})
        if forward.note_text is not None:
            # A retry must not store the note twice: the first answer, if there is one.
            if keyed is not None:
                first = await keyed.first_answer(self.cases.call, self.cases.temporal,
                                                 message)
                if first is not None:
                    return first
            self._precheck(state, forward)
            note_id = await self.cases.add_note(caller, case.case_id, NoteKind.FOLLOW_UP_NOTE,
                                                forward.note_text)
            message = message.model_copy(update={forward.note_field: record_id_of(note_id)})
        try:
            return await execute(self.cases.call, self.cases.temporal, workflow_id,
                                 forward.update, message, rm.Recorded, keyed,
                                 what="recording the follow-up change")
        except Unconfirmed:
            raise FollowUpPending(case.case_id) from None

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


__all__ = ["PLACEHOLDER_RECORD_ID", "FollowUpPending", "FollowUpService", "Forward",
           "follow_up_state"]
