"""``append_events``: the one way a workflow writes to the event store.

One unit of work: the case's parties → check that each event's author organisation plays
the role owning that event type → append. Event ids come from the workflow
(``workflow.uuid4()``), so a retried activity appends nothing twice: the store returns the
events it already holds when the same ids come again with the same content.

The parties are named by the case's referral, so a worker reads it once per case and
remembers it (decision 0055); before, every append read the stream from version 1 (up to
50 events, every payload decoded) to find it. A transfer (decision 0068) hands a role to
another organisation: the worker that appends the acceptance takes it into what it
remembers, and an author no remembered party explains makes the worker read the whole
stream once before it refuses (another worker may have appended the acceptance). The append
itself goes at the end of the stream (no expected version: the API and the vault write to
the same case), and the store remembers the case's head, so it is one INSERT.
"""

from __future__ import annotations

from collections import OrderedDict

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.log import activity_logger
from domain.catalogue import (
    AppendEventsRequest,
    AppendEventsResult,
    may_author,
    parse_event,
    payload_of,
)
from domain.journey.decider import JourneyState, evolve, role_of
from domain.journey.events import ReferralRegistered, TransferAccepted, TransferDeclined
from domain.kernel import Role
from store.event_store import EventStore
from store.events import Causation, DuplicateEventConflict, NewEvent

# Business errors: retrying cannot help, the workflow must decide.
OWNERSHIP_REFUSED = "OwnershipRefused"
DUPLICATE_EVENT = "DuplicateEvent"
REFERRAL_MISSING = "ReferralMissing"

# Cases whose referral a worker remembers (a few hundred bytes each): far more than it has
# open at once, so an append almost never reads the stream.
PARTIES_REMEMBERED = 20_000


class EventActivities:
    def __init__(self, store: EventStore):
        self._store = store
        # case id → the parties its stored referral names (never changes once stored)
        self._known: OrderedDict[str, JourneyState] = OrderedDict()

    @activity.defn(name="append_events")
    async def append_events(self, request: AppendEventsRequest) -> AppendEventsResult:
        log = activity_logger()
        parties = await self._parties(request.case_id)
        if any(self._role(parties, e) is None for e in request.events
               if parties.referral is not None):
            parties = await self._parties(request.case_id, whole_stream=True)
        info = activity.info()
        causation = Causation(info.workflow_id, info.workflow_run_id, info.activity_id)
        new_events = []
        for envelope in request.events:
            event = envelope.event
            if isinstance(event, ReferralRegistered):
                if parties.referral is None:
                    parties = evolve(parties, event)
            elif parties.referral is None:
                raise ApplicationError(
                    f"case {request.case_id} has no referral; {event.type} cannot be its first "
                    "event",
                    type=REFERRAL_MISSING,
                    non_retryable=True,
                )
            role = self._role(parties, envelope)
            if role is None or not may_author(role, event.type):
                log.warning("append refused", event_type=event.type,
                            author_org=envelope.author_org,
                            author_role=role.value if role else None)
                raise ApplicationError(
                    f"{envelope.author_org} ({role.value if role else 'no role in this case'}) "
                    f"may not append {event.type} (owned by {event.owner.value})",
                    type=OWNERSHIP_REFUSED,
                    non_retryable=True,
                )
            new_events.append(
                NewEvent(
                    event_id=envelope.event_id,
                    event_type=event.type,
                    schema_version=event.schema_version,
                    payload=payload_of(event),
                    author_org=envelope.author_org,
                    actor=envelope.actor,
                    occurred_at=envelope.occurred_at,
                    causation=causation,
                )
            )
            if isinstance(event, TransferAccepted):
                parties = evolve(parties, event)
        try:
            stored = await self._store.append(request.case_id, None, new_events)
        except DuplicateEventConflict as error:
            raise ApplicationError(str(error), type=DUPLICATE_EVENT, non_retryable=True) from error
        # Any other StoreError (database unreachable, serialisation) is transient: raised
        # as is, it is retried by the activity's retry policy.
        if parties.referral is not None:
            self._remember(request.case_id, parties)
        log.info("events appended", event_types=[e.event_type for e in stored],
                 versions=[e.version for e in stored])
        return AppendEventsResult(versions=tuple(e.version for e in stored))

    @staticmethod
    def _role(parties: JourneyState, envelope) -> Role | None:
        event = envelope.event
        role = role_of(parties, envelope.author_org)
        if role is None and getattr(event, "provider_org", None) == envelope.author_org:
            # A plan line's provider, which plays no part in the referral, reports on
            # its own line (decision 0064).
            role = Role.PARTNER
        if (role is None and isinstance(event, (TransferAccepted, TransferDeclined))
                and event.to_org == envelope.author_org):
            # The organisation a transfer offers a role to answers it in that role (0068).
            role = event.role.role
        return role

    def _remember(self, case_id: str, parties: JourneyState) -> None:
        self._known[case_id] = parties
        self._known.move_to_end(case_id)
        if len(self._known) > PARTIES_REMEMBERED:
            self._known.popitem(last=False)

    async def _parties(self, case_id: str, *, whole_stream: bool = False) -> JourneyState:
        """Who plays which role in the case: the referral names them, and the transfers
        accepted since (``whole_stream``: read them all, not the referral alone). The
        referral is the journey's first event, but the person vault may record identity
        (``identity.*``) before the workflow's first append lands, so it is looked up by
        type, not by version 1."""
        known = self._known.get(case_id)
        if known is not None and not whole_stream:
            return known
        state = JourneyState(case_id=case_id)
        version, limit = 1, 8  # a few identity events at most come before the referral
        while True:
            page = await self._store.read_stream(case_id, from_version=version, limit=limit)
            for stored in page:
                if stored.event_type in (ReferralRegistered.TYPE, TransferAccepted.TYPE):
                    event = parse_event(stored.event_type, stored.schema_version, stored.payload)
                    state = evolve(state, event)
                    if not whole_stream:
                        self._remember(case_id, state)
                        return state
            if len(page) < limit:
                if whole_stream and state.referral is not None:
                    self._remember(case_id, state)
                return state
            version, limit = page[-1].version + 1, 50
