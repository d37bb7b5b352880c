"""On the Temporal dev server (real visibility, no time skipping): every operator query the
README gives for the journey ("For operators: finding stuck cases in the Temporal UI"),
taken word for word from README.md, finds exactly the cases it describes: the ones that
should match, and none of the others (the same block on a later moment, another mission,
a closed case).

A query that takes a moment ("held for more than 12 hours": a time 12 hours ago) is run
with a moment between two cases' ``HomewardBlockedSince``: the dev server cannot skip 12
hours, and what the test proves is that the query separates the cases blocked before the
moment from those blocked after it."""

from __future__ import annotations

from datetime import UTC, datetime

from case_driver import CaseDriver, case_input, rec, search_attributes
from temporalio.worker import Worker
from test_follow_up_operator_queries import QUERIES as FOLLOW_UP_QUERIES
from test_follow_up_operator_queries import (
    as_run,
    found_exactly,
    readme_queries,
)

from activities import build_activities
from activities.travel import SimulatedTravelProvider
from domain.journey import messages as msg
from domain.journey.config import JourneyConfig
from domain.journey.vocabulary import LegFailure, TaskKind, TracingFinding
from domain.kernel import AgeCategory
from store.event_store import EventStore
from workflows import WORKFLOWS
from workflows import search_attributes as sa

# The README's queries for the journey, and which of the cases below each must find.
QUERIES = {
    "HomewardBlockedOn = 'border_hold' AND HomewardBlockedSince < '2026-11-28T12:00:00Z'":
        {"held_long"},
    "HomewardBlockedOn = 'rebooking'": {"rebooking"},
    "HomewardBlockedOn STARTS_WITH 'escalation:'": {"escalated"},
    "HomewardStage = 'minor_safeguards' AND HomewardReceivingMission = 'mission-md'":
        {"child_here"},
    "HomewardMinor = true AND ExecutionStatus = 'Running'": {"child_here", "child_elsewhere"},
    "HomewardMissing = true AND ExecutionStatus = 'Running'": {"traced"},
    "HomewardStage = 'to_safety' AND HomewardBlockedOn = 'task:safe_place'": {"to_safety"},
    "HomewardBlockedOn = 'road:in_transit' AND HomewardBlockedSince < '<24 hours ago>'":
        {"in_transit_long"},
}


def test_every_query_in_the_readme_is_run():
    """The README's operator queries are exactly the ones these tests run: a query added,
    changed or removed there without its test here fails."""
    documented = readme_queries()
    assert len(documented) == len(set(documented)), documented
    assert set(documented) == set(QUERIES) | set(FOLLOW_UP_QUERIES), (
        sorted(set(documented) - set(QUERIES) - set(FOLLOW_UP_QUERIES)),
        sorted(set(QUERIES) | set(FOLLOW_UP_QUERIES) - set(documented)))


async def blocked_since(case: CaseDriver) -> datetime:
    value = (await search_attributes(case.client, case.handle.id))[sa.BLOCKED_SINCE.name]
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


async def test_every_journey_query_in_the_readme_finds_exactly_its_cases(
    dev_server, engine, task_queue
):
    env = dev_server
    store = EventStore(engine)
    async with Worker(env.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(store, SimulatedTravelProvider())):
        started: list[CaseDriver] = []

        async def start(**overrides) -> CaseDriver:
            case = await CaseDriver.start(env.client, task_queue, store,
                                          case_input(**overrides))
            started.append(case)
            return case

        async def booked(**overrides) -> CaseDriver:
            case = await start(**overrides)
            await case.through_consent(datetime.now(UTC))
            await case.documents_and_clearances()
            await case.stage("awaiting_departure")
            return case

        async def at_border(case: CaseDriver) -> CaseDriver:
            await case.fact("departed")
            await case.fact("arrived_at_border")
            return case

        try:
            cases: dict[str, CaseDriver] = {}
            # Blocked before the moment the queries with a time are run with ...
            cases["held_long"] = await at_border(await booked())
            await cases["held_long"].fact("border_hold_started")
            cases["in_transit_long"] = await booked()
            await cases["in_transit_long"].fact("departed")
            # ... and after it: the same block, not yet long enough.
            cases["held_recent"] = await at_border(await booked())
            await cases["held_recent"].fact("border_hold_started")
            cases["in_transit_recent"] = await booked()
            await cases["in_transit_recent"].fact("departed")
            early = [await blocked_since(cases[n]) for n in ("held_long", "in_transit_long")]
            late = [await blocked_since(cases[n]) for n in ("held_recent", "in_transit_recent")]
            assert max(early) < min(late), (early, late)
            moment = max(early) + (min(late) - max(early)) / 2

            # Flights failing: waiting to rebook (the back-off is hours of real time).
            cases["rebooking"] = await booked()
            await cases["rebooking"].fact("leg_failed", LegFailure.CANCELLED_FLIGHT)
            await cases["rebooking"].until(lambda v: v.blocked_on == "rebooking",
                                           "the rebooking wait")
            # Waiting for a coordinator's decision: documents refused up to the limit.
            cases["escalated"] = await start(config=JourneyConfig(max_document_refusals=1))
            await cases["escalated"].through_consent(datetime.now(UTC))
            await cases["escalated"].complete(TaskKind.TRAVEL_DOCUMENTS, msg.TravelDocumentsResult(
                issued=False, refusal_reason="photos_rejected"))
            await cases["escalated"].until(
                lambda v: (v.blocked_on or "").startswith("escalation:"), "the escalation")
            # A best-interest determination owed by the README's mission, and one owed by
            # another mission; a child's case that has ended.
            for name, mission in (("child_here", None), ("child_elsewhere", "iom-odesa")):
                cases[name] = await start(age_category=AgeCategory.AGE_12_TO_17,
                                          **({"receiving_mission": mission} if mission else {}))
                await cases[name].through_consent(datetime.now(UTC))
                await cases[name].stage("minor_safeguards")
            cases["child_ended"] = await start(age_category=AgeCategory.AGE_12_TO_17)
            await cases["child_ended"].until(lambda v: bool(v.open_tasks), "its first task")
            await cases["child_ended"].terminate()
            # She did not arrive: traced now, and a case closed as missing.
            cases["traced"] = await booked()
            await cases["traced"].fact("departed")
            await cases["traced"].fact("missing_in_transit")
            cases["closed_missing"] = await booked()
            await cases["closed_missing"].fact("departed")
            await cases["closed_missing"].fact("missing_in_transit")
            await cases["closed_missing"].complete(TaskKind.TRACING, msg.TracingResult(
                finding=TracingFinding.MISSING, tracing_record_id=rec()))
            assert (await cases["closed_missing"].result()).outcome == "missing"
            # Her withdrawal after departure: waiting for a safe place.
            cases["to_safety"] = await booked()
            await cases["to_safety"].fact("departed")
            await cases["to_safety"].withdraw()

            ids = {name: case.handle.id for name, case in cases.items()}
            for query, expected in QUERIES.items():
                await found_exactly(env, as_run(query, task_queue, moment),
                                    {ids[name] for name in expected})
        finally:
            for case in started:
                try:
                    await case.terminate()
                except Exception:  # noqa: BLE001 - already ended
                    pass
