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


def test_small_cells_are_suppressed_and_a_lone_one_is_protected_by_another():
    assert suppress(Counter({"a": 9, "b": 7})) == {"a": 9, "b": 7}
    assert suppress(Counter({"a": 9, "b": 7, "c": 2})) == {"a": 9, "b": "suppressed", "c": "<5"}
    assert suppress(Counter({"a": 9, "b": 3, "c": 2})) == {"a": 9, "b": "<5", "c": "<5"}


async def test_statistics_state_their_coverage_and_hide_small_cells(api):
    http, store, tokens = api
    for destination, age in [("MD", "18_24")] * 6 + [("UA", "unknown")]:
        await store.append(f"c-{uuid.uuid4().hex[:12]}", None, [
            new(referral(destination_country=destination, age_category=age), 0, "mission-rs")])
    response = await http.get("/statistics",
                              headers={"Authorization": f"Bearer {tokens['analyst']}"})
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["coverage"] == COVERAGE
    assert "declined" in stats["coverage"] and "did not return" in stats["coverage"]
    assert stats["persons_assisted"] == 7
    assert stats["by_destination_country"] == {"MD": "suppressed", "UA": "<5"}
    assert stats["minor_or_age_unknown"] == {"adult": "suppressed", "minor_or_unknown": "<5"}
    assert stats["by_outcome"] == {"open": 7}
    assert "c-" not in response.text  # no case ids, nothing per person

    refused = await http.get("/statistics",
                             headers={"Authorization": f"Bearer {tokens['coord.rs']}"})
    assert refused.status_code == 403
