"""Analysts read aggregated statistics only: small cells suppressed, the population
stated, minors and unknown ages visible; nobody else reads them."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from test_read_models import new, referral

from api.app import ApiServices, create_app
from api.routes.operations import COVERAGE, suppress
from store.accounts import Accounts, OrgKind, UserRole
from store.event_store import EventStore
from store.keys import Key, Keyring
from store.vault import PersonVault
from workers.codec import EncryptionCodec


@pytest.fixture
async def api(engine):
    accounts = Accounts(engine)
    await accounts.add_org("analysts", OrgKind.ANALYST, "Analysts", "CH")
    await accounts.add_org("mission-rs", OrgKind.SENDING_MISSION, "Sending", "RS")
    await accounts.add_user("analyst", "analysts", UserRole.ANALYST)
    await accounts.add_user("coord.rs", "mission-rs", UserRole.COORDINATOR)
    tokens = {u: (await accounts.create_token(u, timedelta(hours=1))).bearer
              for u in ("analyst", "coord.rs")}
    store = EventStore(engine)
    keys = Keyring(Key(b"k" * 32))
    services = ApiServices(engine=engine, store=store, temporal=None, accounts=accounts,
                           vault=PersonVault(engine, keys, store),
                           payload_codec=EncryptionCodec(keys), task_queue="unused",
                           codec_cors_origins=[])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                 base_url="http://homeward.test") as http:
        yield http, store, tokens


S = "suppressed"
AGE_BANDS = ["under_12", "12_17", "18_24", "25_34", "35_plus", "unknown", "disputed"]


def test_small_cells_are_suppressed_and_a_lone_one_is_protected_by_another():
    assert suppress(Counter({"a": 9, "b": 7})) == {"a": 9, "b": 7}
    assert suppress(Counter({"a": 9, "b": 7, "c": 2})) == {"a": 9, "b": S, "c": S}
    assert suppress(Counter({"a": 9, "b": 3, "c": 2})) == {"a": 9, "b": S, "c": S}


def test_the_protecting_cell_reads_like_the_small_one():
    """With the total known, a complementary cell labelled apart from the small cell
    (">= 5" against "1-4") gave both back: 6 persons, 5 + 1."""
    assert suppress(Counter({"a": 5, "b": 1})) == {"a": S, "b": S}


def test_zeros_are_shown_and_never_protect_a_small_cell():
    assert suppress(Counter({"a": 9, "b": 7, "z": 0})) == {"a": 9, "b": 7, "z": 0}
    assert suppress(Counter({"a": 9, "b": 6, "c": 2, "z": 0})) == {
        "a": 9, "b": S, "c": S, "z": 0}
    assert suppress(Counter({"a": 0, "b": 0})) == {"a": 0, "b": 0}  # nobody yet


def test_a_table_over_fewer_than_five_people_hides_its_zeros_too():
    """Which rows are empty would say what each of the few people is."""
    assert suppress(Counter({"a": 3, "z": 0})) == {"a": S, "z": S}
    assert suppress(Counter({"a": 2, "b": 2, "z": 0})) == {"a": S, "b": S, "z": S}


async def _register(store, *cases: tuple[str, str]) -> None:
    for destination, age in cases:
        await store.append(f"c-{uuid.uuid4().hex[:12]}", None, [
            new(referral(destination_country=destination, age_category=age), 0, "mission-rs")])


async def _statistics(http, tokens) -> dict:
    response = await http.get("/statistics",
                              headers={"Authorization": f"Bearer {tokens['analyst']}"})
    assert response.status_code == 200, response.text
    assert "c-" not in response.text  # no case ids, nothing per person
    return response.json()


async def test_statistics_state_their_coverage_and_hide_small_cells(api):
    http, store, tokens = api
    await _register(store, *[("MD", "18_24")] * 6, ("UA", "unknown"))
    stats = await _statistics(http, tokens)
    assert stats["coverage"] == COVERAGE
    assert "declined" in stats["coverage"] and "did not return" in stats["coverage"]
    assert stats["persons_assisted"] == 7
    assert stats["by_destination_country"] == {"MD": S, "UA": S}
    assert stats["minor_or_age_unknown"] == {"minor_or_unknown": S, "adult": S}
    assert stats["by_age_band"] == {"under_12": 0, "12_17": 0, "18_24": S, "25_34": 0,
                                    "35_plus": 0, "unknown": S, "disputed": 0}
    assert stats["by_outcome"]["open"] == 7
    assert {"returned", "assistance_declined", "missing"} <= set(stats["by_outcome"])
    assert set(stats["by_outcome"].values()) == {7, 0}

    refused = await http.get("/statistics",
                             headers={"Authorization": f"Bearer {tokens['coord.rs']}"})
    assert refused.status_code == 403


async def test_minors_and_unknown_ages_are_shown_at_zero(api):
    """README: every report lists minors and unknown ages, even when it counts none."""
    http, store, tokens = api
    await _register(store, *[("MD", "25_34")] * 6)
    stats = await _statistics(http, tokens)
    assert list(stats["by_age_band"]) == AGE_BANDS
    assert stats["by_age_band"] == {**dict.fromkeys(AGE_BANDS, 0), "25_34": 6}
    assert stats["minor_or_age_unknown"] == {"minor_or_unknown": 0, "adult": 6}
    assert stats["by_outcome"]["missing"] == 0


async def test_an_empty_programme_shows_every_row_at_zero(api):
    http, _, tokens = api
    stats = await _statistics(http, tokens)
    assert stats["persons_assisted"] == 0
    assert stats["by_age_band"] == dict.fromkeys(AGE_BANDS, 0)
    assert stats["minor_or_age_unknown"] == {"minor_or_unknown": 0, "adult": 0}
    assert stats["by_destination_country"] == {}


async def test_a_programme_of_fewer_than_five_people_shows_rows_but_no_figures(api):
    http, store, tokens = api
    await _register(store, ("MD", "12_17"), ("MD", "12_17"), ("MD", "unknown"))
    stats = await _statistics(http, tokens)
    assert stats["persons_assisted"] == "<5"
    assert stats["by_age_band"] == dict.fromkeys(AGE_BANDS, S)
    assert stats["minor_or_age_unknown"] == {"minor_or_unknown": S, "adult": S}
    assert stats["by_destination_country"] == {"MD": S}
    assert set(stats["by_outcome"].values()) == {S}
