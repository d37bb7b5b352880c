"""Activities on their own: idempotent appends, ownership enforced against the case's
parties, transient store failures left to the retry policy, the simulated carrier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from case_driver import PARTNER, RECEIVING, SENDING, case_input
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.events import EventActivities
from activities.travel import (
    ManualTravelProvider,
    SimulatedTravelProvider,
    TravelActivities,
    make_travel_provider,
)
from domain import catalogue
from domain.journey import decider as c
from domain.journey import events as ev
from domain.journey import messages as msg
from store.event_store import EventStore
from store.events import StoreError

NOW = datetime(2026, 5, 1, 9, tzinfo=UTC)


def envelope(event, org: str, actor: str = "system:workflow") -> catalogue.EventEnvelope:
    return catalogue.EventEnvelope(event_id=uuid.uuid4(), occurred_at=NOW, author_org=org,
                             actor=actor, event=event)


def referral(case_id: str) -> ev.JourneyEvent:
    [event] = c.decide(c.JourneyState(case_id=case_id), c.RegisterReferral(case_input(
        case_id=case_id)), c.Context(now=datetime.now(UTC)))
    return event


async def test_append_is_idempotent_when_the_activity_is_retried(engine):
    store = EventStore(engine)
    case_id = "case-idem-01"
    request = catalogue.AppendEventsRequest(case_id=case_id, events=(
        envelope(referral(case_id), SENDING),
        envelope(ev.HandoffCodeIssued(code_hash="a" * 64), "homeward"),
    ))
    env = ActivityEnvironment()
    first = await env.run(EventActivities(store).append_events, request)
    again = await env.run(EventActivities(store).append_events, request)
    assert first == again == catalogue.AppendEventsResult(versions=(1, 2))
    stored = await store.read_stream(case_id)
    assert [e.event_type for e in stored] == ["case.referral_registered",
                                              "reception.handoff_code_issued"]
    assert stored[0].schema_version == 2
    assert stored[0].causation.workflow_id == env.info.workflow_id


@pytest.mark.parametrize(
    ("org", "event"),
    [
        (RECEIVING, ev.DocumentRequestWithdrawn(request_id=uuid.uuid4())),  # sending's part
        (SENDING, ev.SafeArrivalConfirmed(task_id=uuid.uuid4())),  # the receiving part
        (PARTNER, ev.ReturnedOutcome()),  # system-owned
        ("iom-stranger", ev.ConsentWithdrawn(change="withdrawn")),  # no role in the case
    ],
)
async def test_an_organisation_appends_only_the_events_it_owns(engine, org, event):
    store = EventStore(engine)
    case_id = f"case-own-{uuid.uuid4().hex[:6]}"
    env = ActivityEnvironment()
    activities = EventActivities(store)
    await env.run(activities.append_events, catalogue.AppendEventsRequest(
        case_id=case_id, events=(envelope(referral(case_id), SENDING),)))
    with pytest.raises(ApplicationError) as refused:
        await env.run(activities.append_events, catalogue.AppendEventsRequest(
            case_id=case_id, events=(envelope(event, org, "u-5"),)))
    assert refused.value.type == "OwnershipRefused" and refused.value.non_retryable
    assert len(await store.read_stream(case_id)) == 1


async def test_a_case_starts_with_its_referral(engine):
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as refused:
        await env.run(EventActivities(EventStore(engine)).append_events,
                      catalogue.AppendEventsRequest(case_id="case-noref-1", events=(
                          envelope(ev.ReturnedOutcome(), "homeward"),)))
    assert refused.value.type == "ReferralMissing" and refused.value.non_retryable


async def test_a_reused_event_id_with_other_content_is_a_business_error(engine):
    store = EventStore(engine)
    env = ActivityEnvironment()
    first = envelope(referral("case-dup-01"), SENDING)
    await env.run(EventActivities(store).append_events,
                  catalogue.AppendEventsRequest(case_id="case-dup-01", events=(first,)))
    other = first.model_copy(update={"occurred_at": NOW + timedelta(seconds=1)})
    with pytest.raises(ApplicationError) as refused:
        await env.run(EventActivities(store).append_events,
                      catalogue.AppendEventsRequest(case_id="case-dup-01", events=(other,)))
    assert refused.value.type == "DuplicateEvent"


async def test_store_outage_is_transient_and_left_to_the_retry_policy():
    dead = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    env = ActivityEnvironment()
    # Not an ApplicationError: the activity's retry policy retries it. (A refused connection
    # currently surfaces from the store as the driver's OSError, not as StoreError.)
    with pytest.raises((StoreError, OSError)) as raised:
        await env.run(EventActivities(EventStore(dead)).append_events,
                      catalogue.AppendEventsRequest(case_id="case-down-1", events=(
                          envelope(referral("case-down-1"), SENDING),)))
    assert not isinstance(raised.value, ApplicationError)
    await dead.dispose()


def booking_request(**kw) -> msg.BookingRequest:
    fields = dict(case_id="case-trav-1", request_id=uuid.uuid4(), attempt=1,
                  host_country="RS", destination_country="MD", not_before=NOW)
    fields.update(kw)
    return msg.BookingRequest(**fields)


async def test_simulated_booking_is_idempotent_and_routes_around_refusals():
    provider = SimulatedTravelProvider()
    activities = TravelActivities(provider)
    env = ActivityEnvironment()
    request = booking_request(simulated_disruption="cancelled_flight")
    first = await env.run(activities.book_journey, request)
    assert await env.run(activities.book_journey, request) == first
    assert (first.entry_point, first.route, first.disruption) == ("KIV", "direct",
                                                                  "cancelled_flight")
    assert first.departure_at == NOW
    other = await env.run(activities.book_journey, booking_request(avoid_entry_points=("KIV",)))
    assert (other.entry_point, other.route) == ("IAS", "alternative")
    assert other.booking_ref != first.booking_ref
    with pytest.raises(ApplicationError) as no_route:
        await env.run(activities.book_journey,
                      booking_request(avoid_entry_points=("KIV", "IAS", "BZY")))
    assert no_route.value.type == "NoRouteAvailable" and no_route.value.non_retryable
    cancelled = await env.run(activities.cancel_booking, msg.CancelBookingRequest(
        case_id="case-trav-1", booking_ref=first.booking_ref, provider="simulated"))
    assert cancelled.cancelled and provider.is_cancelled(first.booking_ref)


async def test_cancellation_failures_are_transient_and_manual_bookings_need_follow_up():
    activities = TravelActivities(SimulatedTravelProvider(fail_cancellations=1))
    env = ActivityEnvironment()
    request = msg.CancelBookingRequest(case_id="case-trav-2", booking_ref="SIM-00000001",
                                       provider="simulated")
    with pytest.raises(ConnectionError):
        await env.run(activities.cancel_booking, request)
    assert (await env.run(activities.cancel_booking, request)).cancelled
    manual = await env.run(activities.cancel_booking, request.model_copy(
        update={"provider": "manual"}))
    assert manual.manual_follow_up and not manual.cancelled


async def test_a_manual_worker_refuses_simulated_bookings():
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as refused:
        await env.run(TravelActivities(ManualTravelProvider()).book_journey, booking_request())
    assert refused.value.type == "TravelAdapterUnavailable"


def test_make_travel_provider():
    assert isinstance(make_travel_provider("simulated"), SimulatedTravelProvider)
    assert isinstance(make_travel_provider("manual"), ManualTravelProvider)
    with pytest.raises(ValueError):
        make_travel_provider("teleport")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        make_travel_provider("manual", seed=1)


class CountingReads(EventStore):
    """The event store, counting the stream reads an activity makes."""

    reads = 0

    async def read_stream(self, case_id, from_version=1, limit=500):
        self.reads += 1
        return await super().read_stream(case_id, from_version, limit)


async def test_the_parties_are_read_once_per_case_and_still_enforced(engine):
    """The referral never changes once stored: a worker reads it once, not before every
    append (issue 12), and ownership is enforced against it all the same."""
    store = CountingReads(engine)
    env = ActivityEnvironment()
    activities = EventActivities(store)
    case_id = f"case-once-{uuid.uuid4().hex[:6]}"
    await env.run(activities.append_events, catalogue.AppendEventsRequest(
        case_id=case_id, events=(envelope(referral(case_id), SENDING),)))
    for _ in range(3):
        await env.run(activities.append_events, catalogue.AppendEventsRequest(
            case_id=case_id, events=(envelope(ev.HandoffCodeIssued(code_hash="b" * 64),
                                              "homeward"),)))
    assert store.reads == 1  # the first append, before its referral was stored
    with pytest.raises(ApplicationError) as refused:
        await env.run(activities.append_events, catalogue.AppendEventsRequest(
            case_id=case_id, events=(envelope(ev.SafeArrivalConfirmed(task_id=uuid.uuid4()),
                                              SENDING),)))
    assert refused.value.type == "OwnershipRefused"

    # Another worker (nothing remembered) reads the referral from the stream, once.
    other = CountingReads(engine)
    later = EventActivities(other)
    for _ in range(2):
        await env.run(later.append_events, catalogue.AppendEventsRequest(
            case_id=case_id, events=(envelope(ev.HandoffCodeIssued(code_hash="c" * 64),
                                              "homeward"),)))
    assert other.reads == 1


async def test_a_retry_after_a_committed_append_returns_the_stored_versions(engine):
    """Idempotency holds with the parties remembered: the retry of an append that was
    committed (its answer lost) gets the stored versions, not a conflict."""
    store = EventStore(engine)
    env = ActivityEnvironment()
    activities = EventActivities(store)
    case_id = f"case-retry-{uuid.uuid4().hex[:6]}"
    await env.run(activities.append_events, catalogue.AppendEventsRequest(
        case_id=case_id, events=(envelope(referral(case_id), SENDING),)))
    request = catalogue.AppendEventsRequest(case_id=case_id, events=(
        envelope(ev.HandoffCodeIssued(code_hash="d" * 64), "homeward"),))
    first = await env.run(activities.append_events, request)
    again = await env.run(activities.append_events, request)
    assert first == again == catalogue.AppendEventsResult(versions=(2,))
