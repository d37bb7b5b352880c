"""An Update sent with the caller's ``Idempotency-Key`` (decisions 0064, 0073): applied
once, and a retry gets the first answer, even after the case has moved on.

The Update's id is derived from the caller's organisation and the key (a digest: the key
never reaches the history). Temporal deduplicates by that id, not by content, so the
request it accepted under the id is read back from the history and compared with the
retry's: the same request gets the first answer, another is refused (422
``idempotency_key_reused``). When the workflow refuses the retry (409: the task it
completed is no longer open, the fact is no longer expected, the run continued as new),
the first answer is still in the history and is the answer."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from api.completions import first_completion
from api.errors import ApiError
from store.accounts import Principal

Call = Callable[..., Awaitable[Any]]  # CaseService.call: a Temporal call with a deadline


def keyed_update_id(update: str, caller: Principal, key: str) -> str:
    """Scoped to the organisation, and a digest: a key never reaches the history."""
    digest = hashlib.sha256(f"{caller.org_id}\n{key}".encode()).hexdigest()[:32]
    return f"{update}-{digest}"


@dataclass(frozen=True)
class Keyed:
    """An Update under the caller's key: where it goes, and how its first request is
    read back and compared. ``exclude`` names the fields a retry carries anew and that
    are not compared (a pydantic exclude: the actor, a note's record id, the task id a
    retry may not know any more)."""

    workflow_id: str
    update: str
    update_id: str
    request_type: type
    answer_type: type
    exclude: dict[str, Any] = field(default_factory=lambda: {"actor_id": True})

    @classmethod
    def of(cls, key: str | None, caller: Principal, update: str, workflow_id: str,
           request_type: type, answer_type: type,
           exclude: dict[str, Any] | None = None) -> Keyed | None:
        if key is None:
            return None
        return cls(workflow_id, update, keyed_update_id(update, caller, key), request_type,
                   answer_type, {"actor_id": True, **(exclude or {})})

    async def first_answer(self, call: Call, client: Client, message: Any) -> Any | None:
        """The answer to the first request under this key, if it is the same request as
        ``message`` (else 422); None if nothing was applied under the key (never sent, or
        refused). A first request still running (accepted, its worker killed before it
        answered, while its step is already in the case's stream) is waited for under its
        id, as a retry of it."""
        try:
            first = await first_completion(client, self.workflow_id, self.update_id,
                                           request_type=self.request_type,
                                           answer_type=self.answer_type)
        except RPCError:
            raise ApiError(503, "temporal_unavailable",
                           "the workflow service did not answer; try again") from None
        if first is None or first.failed:
            return None
        self.same_or_refuse(first.request, message)
        if first.answer is not None:
            return first.answer
        return await call(client.get_workflow_handle(self.workflow_id).execute_update(
            self.update, first.request, id=self.update_id, result_type=self.answer_type),
            what="waiting for the first request under this Idempotency-Key")

    def same_or_refuse(self, first: Any, message: Any) -> None:
        if first.model_dump(exclude=self.exclude) == message.model_dump(exclude=self.exclude):
            return
        raise ApiError(422, "idempotency_key_reused",
                       "this idempotency key was used for another request; use a new key "
                       "for a new request")


async def execute(call: Call, client: Client, workflow_id: str, update: str, message: Any,
                  answer_type: type, keyed: Keyed | None, *, what: str,
                  unkeyed_id: str | None = None) -> Any:
    """Send the Update and answer with its answer, or, when the workflow refuses it, with
    the first answer under the key. ``Unconfirmed`` (no answer in time) is the caller's
    to turn into a 202."""
    try:
        return await send(call, client, workflow_id, update, message, answer_type, keyed,
                          what=what, unkeyed_id=unkeyed_id)
    except ApiError as refused:
        return await first_or_raise(call, client, keyed, message, refused)


async def send(call: Call, client: Client, workflow_id: str, update: str, message: Any,
               answer_type: type, keyed: Keyed | None, *, what: str,
               unkeyed_id: str | None = None) -> Any:
    """Send the Update under the key's id (without a key: under ``unkeyed_id``, or an id
    Temporal makes) and answer with its answer, once the request Temporal holds under
    the key is known to be this one; a refusal is raised as it is."""
    handle = client.get_workflow_handle(workflow_id)
    if keyed is None:
        return await call(handle.execute_update(update, message, id=unkeyed_id,
                                                result_type=answer_type), what=what)
    answer = await call(handle.execute_update(update, message, id=keyed.update_id,
                                              result_type=answer_type), what=what)
    if await keyed.first_answer(call, client, message) is None:
        # Answered, so its request is in the history; not finding it means the history
        # cannot be read right now: better no answer than a wrong one.
        raise ApiError(503, "temporal_unavailable",
                       f"{what}: it could not be confirmed; send it again with the same "
                       "Idempotency-Key")
    return answer


async def first_or_raise(call: Call, client: Client, keyed: Keyed | None, message: Any,
                         refused: ApiError) -> Any:
    """A refusal (409) of a request repeated under its key after the workflow moved on
    (the task closed, the fact no longer expected, the run continued as new): the first
    answer, which the history still holds; otherwise the refusal."""
    if keyed is None or refused.status != 409:
        raise refused
    first = await keyed.first_answer(call, client, message)
    if first is None:
        raise refused
    return first
