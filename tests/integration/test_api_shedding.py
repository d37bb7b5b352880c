"""Load shedding (decision 0054): past ``max_inflight`` requests in progress, the API answers
503 ``overloaded`` with ``Retry-After`` at once, in its error format, and serves again as
soon as a slot is free; ``/health`` is never shed. No assertion is about time: the slow
requests are held open by an event the test sets."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import ApiServices, create_app
from api.shedding import LoadShedding
from store.accounts import Accounts
from store.event_store import EventStore
from store.keys import Key, Keyring
from store.vault import PersonVault
from workers.codec import EncryptionCodec
from workers.services import api_services
from workers.settings import Settings


def _app(engine: AsyncEngine, max_inflight: int):
    keys = Keyring(Key(b"k" * 32))
    store = EventStore(engine)
    app = create_app(ApiServices(
        engine=engine, store=store, temporal=None, accounts=Accounts(engine),
        vault=PersonVault(engine, keys, store), payload_codec=EncryptionCodec(keys),
        task_queue="unused", codec_cors_origins=[], own_projector=False,
        max_inflight=max_inflight))
    release, entered = asyncio.Event(), []

    async def slow() -> dict[str, str]:
        entered.append(1)
        await release.wait()
        return {"status": "done"}

    app.add_api_route("/slow", slow)
    return app, release, entered


async def test_requests_past_the_limit_are_shed_with_retry_after(engine: AsyncEngine):
    app, release, entered = _app(engine, max_inflight=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://homeward.test") as http:
        held = [asyncio.create_task(http.get("/slow")) for _ in range(2)]
        while len(entered) < 2:  # both in progress
            await asyncio.sleep(0.01)

        shed = await asyncio.gather(*(http.get("/slow") for _ in range(3)))
        for response in shed:
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "1"
            error = response.json()
            assert error["code"] == "overloaded"
            assert error["request_id"] == response.headers["X-Request-ID"]
        assert len(entered) == 2  # a shed request never reached its endpoint

        health = await http.get("/health")  # never shed (degraded here: no Temporal)
        assert "checks" in health.json(), health.text

        release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        after = await http.get("/slow")  # the slots are free again
        assert after.status_code == 200, after.text


async def test_the_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch, engine: AsyncEngine,
                                      tmp_path) -> None:
    monkeypatch.setenv("HOMEWARD_API_MAX_INFLIGHT", "3")
    settings = Settings(data_dir=tmp_path)  # its development keys go there
    assert settings.api_max_inflight == 3
    services = api_services(settings, engine, client=None)  # type: ignore[arg-type]
    assert services.max_inflight == 3
    assert Settings.model_fields["api_max_inflight"].default >= 100  # 100 registrations at once
    with pytest.raises(ValueError):
        LoadShedding(app=None, max_inflight=0)  # type: ignore[arg-type]
