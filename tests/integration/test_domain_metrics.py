"""homeward's series counted from the store (api/metrics.py, decision 0060), on events
appended directly: contact lost follows the last contact event of each case, rebookings
count every one scheduled, a code the vocabulary does not know is counted as ``other``,
and a reading is reused within the cache's seconds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.metrics import OTHER, DomainMetrics
from domain import catalogue
from domain.journey import events as ev
from domain.reintegration import events as rev
from store.event_store import EventStore
from store.events import NewEvent
from store.projections import ProjectionRunner
from store.read_models import all_projections

T0 = datetime.now(UTC) - timedelta(hours=1)


def new(event, minutes: int, org: str = "homeward") -> NewEvent:
    return NewEvent(uuid.uuid4(), event.type, event.schema_version,
                    catalogue.payload_of(event), org, "system:workflow",
                    T0 + timedelta(minutes=minutes))


def referral() -> ev.ReferralRegistered:
    return ev.ReferralRegistered(
        source="police_raid", first_placement="safe_house", risk_level="low",
        age_category="18_24", witness=False, host_country="RS", destination_country="MD",
        sending_mission="mission-rs", receiving_mission="mission-md",
        border_partner="ngo-md-border")


async def read(engine: AsyncEngine) -> dict[tuple[str, tuple], float]:
    runner = ProjectionRunner(engine, all_projections())
    await runner.catch_up()
    metrics = DomainMetrics(engine, runner, ttl=0)
    await metrics.refresh()
    registry = CollectorRegistry()
    registry.register(metrics)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(generate_latest(registry).decode())
            for s in f.samples}


async def test_contact_lost_and_rebookings_follow_the_events(engine: AsyncEngine):
    store = EventStore(engine)
    lost, restored = f"c-{uuid.uuid4().hex[:12]}", f"c-{uuid.uuid4().hex[:12]}"
    for case_id in (lost, restored):
        await store.append(case_id, 0, [new(referral(), 0, "mission-rs")])
    rebooking = ev.RebookingScheduled(next_attempt=2, not_before=T0)
    await store.append(lost, None, [new(rebooking, 1, "mission-rs"),
                                    new(ev.RebookingScheduled(next_attempt=3, not_before=T0),
                                        2, "mission-rs")])
    await store.append(lost, None, [new(rev.ContactLost(consecutive_misses=3), 3)])
    await store.append(restored, None, [new(rev.ContactLost(consecutive_misses=3), 3),
                                        new(rev.ContactRestored(), 4)])
    found = await read(engine)
    assert found[("homeward_reintegration_contact_lost", ())] == 1
    assert found[("homeward_rebookings_total", ())] == 2
    assert found[("homeward_cases_awaiting_rebooking", ())] == 1  # the last one is pending
    assert found[("homeward_cases_open", (("stage", "booking"),))] == 1
    assert found[("homeward_domain_metrics_up", ())] == 1

    await store.append(lost, None, [new(rev.ContactRestored(), 5)])
    assert (await read(engine))[("homeward_reintegration_contact_lost", ())] == 0


async def test_a_stored_code_outside_the_vocabulary_is_counted_as_other(engine: AsyncEngine):
    store = EventStore(engine)
    case_id = f"c-{uuid.uuid4().hex[:12]}"
    await store.append(case_id, 0, [new(referral(), 0, "mission-rs")])
    found = await read(engine)
    async with engine.begin() as conn:  # as if a newer version had written a new stage
        await conn.execute(text("UPDATE rm_cases SET stage = 'Ana Marker' WHERE case_id = :c"),
                           {"c": case_id})
    runner = ProjectionRunner(engine, all_projections())
    metrics = DomainMetrics(engine, runner, ttl=0)
    await metrics.refresh()
    registry = CollectorRegistry()
    registry.register(metrics)
    rendered = generate_latest(registry).decode()
    assert "Ana Marker" not in rendered
    assert f'homeward_cases_open{{stage="{OTHER}"}} 1.0' in rendered
    assert found[("homeward_cases_open", (("stage", "screening"),))] == 1


async def test_a_reading_is_reused_within_the_cache_seconds(engine: AsyncEngine):
    store = EventStore(engine)
    runner = ProjectionRunner(engine, all_projections())
    metrics = DomainMetrics(engine, runner, ttl=3600)
    await metrics.refresh()
    await store.append(f"c-{uuid.uuid4().hex[:12]}", 0, [new(referral(), 0, "mission-rs")])
    await runner.catch_up()
    await metrics.refresh()  # within the hour: the first reading stands
    registry = CollectorRegistry()
    registry.register(metrics)
    assert 'homeward_cases_open{stage="screening"} 0.0' in generate_latest(registry).decode()
