"""Handing a role of the case to another organisation (decision 0068).

The sending mission offers the receiving mission's role, or the border partner's, to
another organisation with a coded reason; a transfer decision task opens for that
organisation, which accepts or declines. On acceptance it holds the role: the open tasks
of the role move to it, and every later task of the role is opened for it
(``JourneyState.organisation_for``). Both roles move only before she leaves: once she is
on the road, escorts, the handoff and a border companion are arranged with the holders,
and changing them then could leave her alone at a border or an airport.

``decide`` in ``domain.journey.decider`` calls these for ``RequestTransfer`` and for the
completion of a transfer decision task; they share its state and return its decisions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.journey import events as ev
from domain.journey import messages as msg
from domain.journey.vocabulary import TaskKind, TransferredRole
from domain.kernel import Refusal

if TYPE_CHECKING:
    from domain.journey.decider import JourneyState, OpenJourneyTask, RequestTransfer


def too_late(state: JourneyState) -> Refusal | None:
    if state.on_road:
        return Refusal("she has left: the receiving mission and the border partner stay "
                       "as they are until the journey ends", code="transfer_too_late")
    return None


def request(state: JourneyState, command: RequestTransfer) -> list[ev.JourneyEvent] | Refusal:
    """The events of a transfer request; none when the same transfer is pending already
    (a repeated request), a refusal otherwise."""
    role = command.role.role
    holder = state.organisation_for(role)
    pending = pending_for(state, command.role)
    if pending is not None:
        if pending.to_org == command.to_org:
            return []  # requested already: nothing more to write
        return Refusal(f"a transfer of the {_say(command.role)} role to {pending.to_org} "
                       "awaits its answer; it is answered or cancelled first",
                       code="transfer_pending")
    if refusal := too_late(state):
        return refusal
    if command.to_org == holder:
        return Refusal(f"{command.to_org} already holds the {_say(command.role)} role",
                       code="already_holder")
    if command.to_org in parties(state):
        return Refusal(f"{command.to_org} already plays another part in this case",
                       code="already_a_party")
    return [
        ev.TransferRequested(transfer_id=command.task_id, role=command.role, from_org=holder,
                             to_org=command.to_org, reason=command.reason,
                             details_record_id=command.details_record_id),
        ev.TaskOpened(task_id=command.task_id, kind=TaskKind.TRANSFER_DECISION,
                      assignee_org=command.to_org, assignee_role=role,
                      due_at=command.due_at),
    ]


def answer(state: JourneyState, task: OpenJourneyTask,
           result: msg.TransferDecisionResult) -> list[ev.JourneyEvent] | Refusal:
    """The offered organisation's answer to the transfer behind ``task``."""
    offer = state.transfers.get(task.task_id)
    if offer is None:  # pragma: no cover - a transfer decision task is opened with its offer
        return Refusal("there is no transfer behind this task")
    if not result.accepted:
        return [ev.TransferDeclined(task_id=task.task_id, role=offer.role,
                                    from_org=offer.from_org, to_org=offer.to_org,
                                    reason=result.decline_reason)]
    if refusal := too_late(state):
        return refusal
    moving = tuple(t.task_id for t in state.open_tasks.values()
                   if t.assignee_org == offer.from_org and t.assignee_role is offer.role.role
                   and t.task_id != task.task_id)
    return [ev.TransferAccepted(task_id=task.task_id, role=offer.role, from_org=offer.from_org,
                                to_org=offer.to_org, reassigned_tasks=moving)]


def pending_for(state: JourneyState, role: TransferredRole) -> ev.TransferRequested | None:
    return next((t for t in state.transfers.values() if t.role is role), None)


def parties(state: JourneyState) -> set[str]:
    from domain.kernel import Role

    return {state.organisation_for(r) for r in (Role.SENDING_MISSION, Role.RECEIVING_MISSION,
                                                 Role.PARTNER)}


def _say(role: TransferredRole) -> str:
    return role.value.replace("_", " ")
