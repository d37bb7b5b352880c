"""The API's services on a database alone (no Temporal): what the integration tests of
routes that read the store, the read models and the vault build."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import ApiServices
from store.accounts import Accounts
from store.event_store import EventStore
from store.keys import Key, Keyring
from store.vault import PersonVault
from workers.codec import EncryptionCodec

KEYS = Keyring(Key(b"k" * 32))


def services_without_temporal(engine: AsyncEngine, accounts: Accounts | None = None,
                              **options: Any) -> ApiServices:
    store = EventStore(engine)
    return ApiServices(engine=engine, store=store, temporal=None,
                       accounts=accounts or Accounts(engine),
                       vault=PersonVault(engine, KEYS, store),
                       payload_codec=EncryptionCodec(KEYS), task_queue="unused",
                       codec_cors_origins=[], **options)
