"""``homeward demo --cases N`` on the Temporal dev server: a varied caseload, each case
driven to its outcome (or left open), with accounts of how trafficking occurred, so that
the statistical report has something to show (issue 15, Done means)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import text
from temporalio.worker import Worker

from activities import build_activities
from activities.travel import SimulatedTravelProvider
from domain import catalogue
from store.event_store import EventStore
from store.projections import ProjectionRunner
from store.read_models import all_projections
from workers.demo import run_seed
from workflows import WORKFLOWS


async def test_seeding_a_handful_of_varied_cases(dev_server, engine, task_queue):
    store = EventStore(engine)
    lines: list[str] = []
    async with Worker(dev_server.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(store, SimulatedTravelProvider())):
        # Seed 56 draws three sexes, four age bands (a returned child among them), five
        # outcomes and a follow-up run to its closure.
        code = await run_seed(dev_server.client, store, task_queue, 8, out=lines.append,
                              seed=56)
    text_out = "\n".join(lines)
    assert code == 0, text_out
    assert lines[0].startswith("seeding 8 simulated cases")
    assert sum(line.startswith("[") for line in lines) == 8  # progress: one line a case
    assert lines[-1].startswith("seeded 8 case(s), 0 failed")

    await ProjectionRunner(engine, all_projections()).catch_up()
    async with engine.connect() as conn:
        cases = (await conn.execute(text(
            "SELECT sex, age_category, outcome, destination_country FROM rm_cases"))).all()
        routes = (await conn.execute(text(
            "SELECT count(DISTINCT case_id) FROM rm_trafficking_route"))).scalar_one()
    assert len(cases) == 8
    outcomes = Counter(c.outcome for c in cases)
    assert {"returned", "assistance_declined", "not_identified_as_victim",
            "reflection_period", "alternative_pathway"} <= set(outcomes), outcomes
    assert {c.sex for c in cases} == {"female", "male", "not_recorded"}
    assert {"12_17", "unknown"} <= {c.age_category for c in cases}
    assert routes >= 3
    assert "follow-up closed: support_period_ended" in text_out

    # Every event the seed wrote is catalogued, and the accounts hold codes only.
    for line in lines[1:-1]:
        case_id = line.split()[1]
        for event in await store.read_case(case_id):
            assert catalogue.is_catalogued(event.event_type)
