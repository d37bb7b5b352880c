"""Linked cases in the statistical report (decision 0070): a person whose cases were
linked (``case.linked``, folded into ``rm_case_links``, however the links chain) counts
once, by her latest case of the period, and shows in the "returns" table as a repeat
returnee; a rebuilt projection gives the same persons."""

from __future__ import annotations

from sqlalchemy import text
from test_api_reports import _cases, _get, _one_way, api  # noqa: F401 - the fixture
from test_read_models import new

from domain.outside_events import CaseLinked, LinkBasis
from store.case_links import CaseLinksProjection
from store.event_store import EventStore
from store.projections import ProjectionRunner


async def _link(store: EventStore, case_id: str, other: str, minutes: int) -> None:
    await store.append(case_id, None, [new(CaseLinked(
        linked_case_id=other, basis=LinkBasis.BOTH_VISIBLE), minutes, "mission-rs",
        "coord.rs")])


async def _persons(engine) -> dict[str, str]:
    async with engine.connect() as conn:
        return dict((await conn.execute(text(
            "SELECT case_id, person_key FROM rm_case_links"))).all())


async def test_linked_cases_count_once_and_as_a_repeat(api, engine):  # noqa: F811
    await _cases(engine, 14, registered="2026-03-10", outcome="returned")
    await _cases(engine, 6, registered="2026-05-10", outcome="returned",
                 destination="UA")
    async with engine.connect() as conn:
        first = (await conn.execute(text(
            "SELECT case_id FROM rm_cases WHERE destination_country = 'MD' "
            "ORDER BY case_id"))).scalars().all()
        later = (await conn.execute(text(
            "SELECT case_id FROM rm_cases WHERE destination_country = 'UA' "
            "ORDER BY case_id"))).scalars().all()
    store = EventStore(engine)
    # Six persons came back: five once, one twice (linked as a chain: a-b, then b-c).
    for minutes, (earlier, again) in enumerate(zip(first[:5], later[:5], strict=True)):
        await _link(store, again, earlier, minutes)
    await _link(store, later[5], first[5], 10)
    await _link(store, first[6], later[5], 11)
    runner = ProjectionRunner(engine, [CaseLinksProjection()])
    await runner.catch_up()
    persons = await _persons(engine)
    assert len(set(persons.values())) == 6 and len(persons) == 13
    assert persons[first[6]] == persons[first[5]] == persons[later[5]]

    report = (await _get(api, "analyst", "/reports/statistical")).json()
    assert report["persons_referred"] == 20 - 7  # 13 linked cases are 6 persons
    assert _one_way(report, "returns") == {"first_known_return": 7, "repeat_returnee": 6}
    # Each person counts by her latest case: those linked count under May's destination.
    assert _one_way(report, "destination_country") == {"MD": 7, "UA": 6}
    assert "counted once" in report["coverage"]

    await runner.rebuild("case_links")
    assert await _persons(engine) == persons
