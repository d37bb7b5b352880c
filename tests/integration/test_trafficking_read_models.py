"""How trafficking occurred, and her sex, in the read models (decision 0066): the account
and its ordered route are projected as given, a later account replaces the earlier whole,
a rebuild gives the same rows, and a referral recorded before sex was asked reads
``not_recorded``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from domain import catalogue
from domain.journey import events as ev
from domain.journey.vocabulary import Sex
from domain.trafficking import (
    DurationBand,
    ExploitationType,
    RecruitmentMethod,
    RouteRole,
    RouteStop,
    TraffickingAccount,
    TraffickingAccountRecorded,
)
from store.event_store import EventStore
from store.events import NewEvent
from store.projections import ProjectionRunner
from store.read_models import CaseListProjection, TraffickingProjection, all_projections

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
REFERRAL_V2_BEFORE_SEX = {  # a v2 referral as stored before sex was asked
    "source": "police_raid", "first_placement": "safe_house", "risk_level": "low",
    "age_category": "18_24", "witness": False, "host_country": "RS",
    "destination_country": "MD", "sending_mission": "mission-rs",
    "receiving_mission": "mission-md", "border_partner": "ngo-md-border",
    "guardian_takes_part": False}


def stored(event_type: str, version: int, payload: dict, minutes: int,
           org: str = "mission-rs") -> NewEvent:
    return NewEvent(uuid.uuid4(), event_type, version, payload, org, "coord.rs",
                    T0 + timedelta(minutes=minutes))


def account_event(account: TraffickingAccount, minutes: int) -> NewEvent:
    event = TraffickingAccountRecorded(**account.model_dump())
    return stored(event.TYPE, event.schema_version, catalogue.payload_of(event), minutes)


async def table(engine, sql: str, **params) -> list[tuple]:
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]


async def route_of(engine, case_id: str) -> list[tuple]:
    return await table(engine, "SELECT role, country FROM rm_trafficking_route "
                       "WHERE case_id = :c ORDER BY seq", c=case_id)


async def everything(engine) -> dict[str, list[tuple]]:
    return {
        "cases": await table(engine, "SELECT case_id, sex FROM rm_cases ORDER BY 1"),
        "accounts": await table(engine, "SELECT * FROM rm_trafficking ORDER BY 1"),
        "route": await table(engine, "SELECT * FROM rm_trafficking_route ORDER BY 1, 2"),
    }


async def test_accounts_and_sex_are_projected_replaced_and_rebuilt_the_same(engine):
    store = EventStore(engine)
    old, new = f"c-{uuid.uuid4().hex[:12]}", f"c-{uuid.uuid4().hex[:12]}"
    # A v1 referral (no age, no sex) and a v2 one without sex: both read not_recorded.
    v1 = {k: v for k, v in REFERRAL_V2_BEFORE_SEX.items()
          if k not in ("age_category", "first_placement", "guardian_takes_part")}
    await store.append(old, None, [stored(ev.ReferralRegistered.TYPE, 1,
                                          {**v1, "placement": "safe_house"}, 0)])
    await store.append(new, None, [stored(ev.ReferralRegistered.TYPE, 2,
                                          {**REFERRAL_V2_BEFORE_SEX, "sex": "female"}, 0)])
    parsed = catalogue.parse_event(ev.ReferralRegistered.TYPE, 2, REFERRAL_V2_BEFORE_SEX)
    assert parsed.sex is Sex.NOT_RECORDED
    assert catalogue.parse_event(ev.ReferralRegistered.TYPE, 1, {
        **v1, "placement": "safe_house"}).sex is Sex.NOT_RECORDED

    first = TraffickingAccount(
        recruitment_method=RecruitmentMethod.THROUGH_AN_ONLINE_ADVERTISEMENT,
        exploitation_types=(ExploitationType.SEXUAL_EXPLOITATION,
                            ExploitationType.FORCED_LABOUR),
        route=(RouteStop(role=RouteRole.RECRUITMENT, country="MD"),
               RouteStop(role=RouteRole.TRANSIT, country="RO"),
               RouteStop(role=RouteRole.EXPLOITATION, country="RS")),
        duration_band=DurationBand.MONTHS_6_12, transport_means=("bus", "car"))
    await store.append(new, None, [account_event(first, 5)])
    runner = ProjectionRunner(engine, all_projections())
    await runner.catch_up()

    assert await table(engine, "SELECT case_id, sex FROM rm_cases ORDER BY case_id") == sorted(
        [(old, "not_recorded"), (new, "female")])
    [row] = await table(engine, "SELECT recruitment_method, exploitation_types, "
                        "duration_band, transport_means, recorded_at FROM rm_trafficking")
    assert row == ("ThroughAnOnlineAdvertisement", ["ForcedLabour", "SexualExploitation"],
                   "6_12_months", ["bus", "car"], T0 + timedelta(minutes=5))
    assert await route_of(engine, new) == [("recruitment", "MD"), ("transit", "RO"),
                                           ("exploitation", "RS")]

    # A later account with questions skipped replaces the first whole.
    await store.append(new, None, [account_event(TraffickingAccount(route=(
        RouteStop(role=RouteRole.EXPLOITATION, country="IT"),)), 9)])
    await runner.catch_up()
    [row] = await table(engine, "SELECT recruitment_method, exploitation_types, "
                        "duration_band, transport_means FROM rm_trafficking")
    assert row == (None, [], None, [])
    assert await route_of(engine, new) == [("exploitation", "IT")]

    before = await everything(engine)
    await runner.rebuild_all()
    assert await everything(engine) == before
    for name in ("cases", "trafficking"):
        await runner.rebuild(name)
    assert await everything(engine) == before


_STOPS = st.lists(st.builds(RouteStop, role=st.sampled_from(RouteRole),
                            country=st.sampled_from(["MD", "RO", "RS", "UA", "IT", "XK", "AL",
                                                     "BG", "TR", "DE"])),
                  max_size=8).map(tuple)
_ACCOUNTS = st.builds(
    TraffickingAccount,
    recruitment_method=st.none() | st.sampled_from(RecruitmentMethod),
    exploitation_types=st.lists(st.sampled_from(ExploitationType), max_size=4).map(tuple),
    route=_STOPS,
    duration_band=st.none() | st.sampled_from(DurationBand),
    transport_means=st.lists(st.sampled_from(["air", "bus", "car", "train", "boat"]),
                             max_size=3).map(tuple))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(accounts=st.lists(_ACCOUNTS, min_size=1, max_size=3), page=st.integers(1, 4))
async def test_the_projection_stores_exactly_the_given_ordered_path(engine, accounts, page):
    """Any subset of the questions answered, any route order (countries repeated, roles in
    any order), accounts replacing each other, read in pages of any size: the read model
    holds the last account's answers and its route in the order given."""
    store = EventStore(engine)
    case_id = f"c-{uuid.uuid4().hex[:12]}"
    for minutes, account in enumerate(accounts):
        await store.append(case_id, None, [account_event(account, minutes)])
    await ProjectionRunner(engine, [TraffickingProjection(), CaseListProjection()],
                           batch_size=page).catch_up()
    last = accounts[-1]
    assert await route_of(engine, case_id) == [(s.role.value, s.country) for s in last.route]
    [row] = await table(engine, "SELECT recruitment_method, exploitation_types, "
                        "duration_band, transport_means FROM rm_trafficking "
                        "WHERE case_id = :c", c=case_id)
    assert row == (last.recruitment_method, list(last.exploitation_types),
                   last.duration_band, list(last.transport_means))
