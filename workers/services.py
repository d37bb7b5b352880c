"""Composition root: builds the real services from settings, once per process."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.app import ApiServices
from store.accounts import Accounts
from store.event_store import EventStore
from store.keys import Keyring, load_master_keyring
from store.vault import PersonVault
from workers.codec import EncryptionCodec
from workers.settings import Settings
from workers.temporal import payload_keyring


def master_keyring(settings: Settings) -> Keyring:
    secret = settings.master_key.get_secret_value() if settings.master_key else None
    return load_master_keyring(secret, settings.master_key_file, settings.dev_key_dir)


def allow_journey_config(settings: Settings) -> bool:
    """Whether a referral may carry its own journey durations (demos, tests):
    ``HOMEWARD_API_ALLOW_JOURNEY_CONFIG``, or when unset only on the embedded stack."""
    explicit = settings.api_allow_journey_config
    return settings.embedded if explicit is None else explicit


def api_services(settings: Settings, engine: AsyncEngine, client: Client) -> ApiServices:
    store = EventStore(engine)
    return ApiServices(
        engine=engine,
        store=store,
        temporal=client,
        accounts=Accounts(engine),
        vault=PersonVault(engine, master_keyring(settings), store),
        payload_codec=EncryptionCodec(payload_keyring(settings)),
        task_queue=settings.task_queue,
        codec_cors_origins=settings.codec_cors_origins,
        allow_journey_config=allow_journey_config(settings),
        travel_adapter=settings.travel_adapter,
        max_inflight=settings.api_max_inflight,
        temporal_deadline=settings.api_temporal_deadline,
        metrics_token=(settings.metrics_token.get_secret_value()
                       if settings.metrics_token else None),
    )
