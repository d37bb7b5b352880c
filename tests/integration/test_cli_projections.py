"""`homeward projections rebuild`, as an operator runs it after a fix to a read model:
every read model in one pass over the log (`all`), or one by name, with progress; an
unknown name is refused with the known ones."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from test_cli_accounts import homeward, succeeded
from test_read_models import new, referral

from store.event_store import EventStore
from store.read_models import all_projections


async def _cases(engine) -> set[str]:
    async with engine.connect() as conn:
        return {r for (r,) in await conn.execute(text("SELECT case_id FROM rm_cases"))}


async def test_rebuild_all_in_one_pass_then_one_by_name(database_url, engine):
    store = EventStore(engine)
    case_ids = {f"c-{uuid.uuid4().hex[:12]}" for _ in range(3)}
    for case_id in case_ids:
        await store.append(case_id, 0, [new(referral(), 0, "mission-rs")])

    everything = succeeded(homeward(database_url, "projections", "rebuild", "all"))
    names = [projection.name for projection in all_projections()]
    assert f"rebuilding {', '.join(names)} ..." in everything
    assert "applied up to position" in everything  # progress
    assert await _cases(engine) == case_ids
    async with engine.connect() as conn:
        positions = {name: position for name, position in await conn.execute(text(
            "SELECT name, position FROM projection_checkpoints"))}
    assert set(positions) == set(names)
    assert len(set(positions.values())) == 1 and positions["cases"] > 0

    one = succeeded(homeward(database_url, "projections", "rebuild", "cases"))
    assert "cases rebuilt: 3 events applied" in one
    assert await _cases(engine) == case_ids


async def test_an_unknown_read_model_is_refused_with_the_known_ones(database_url):
    refused = homeward(database_url, "projections", "rebuild", "nope")
    assert refused.returncode == 2
    names = ", ".join(projection.name for projection in all_projections())
    assert f"no projection 'nope'; known: {names}, all" in refused.stderr
