"""Organisations, users, keys and the ``Stack`` handle shared by the API tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.app import ApiServices
from store.accounts import Accounts, OrgKind, UserRole
from store.event_store import EventStore
from store.keys import Key, Keyring

PAYLOAD_KEYRING = Keyring(Key(b"p" * 32))
VAULT_KEYRING = Keyring(Key(b"v" * 32))

ORGS = [
    ("mission-rs", OrgKind.SENDING_MISSION, "RS"),
    ("mission-md", OrgKind.RECEIVING_MISSION, "MD"),
    ("ngo-md-border", OrgKind.PARTNER_NGO, "MD"),
    ("mission-al", OrgKind.SENDING_MISSION, "AL"),
    ("mission-ua", OrgKind.RECEIVING_MISSION, "UA"),
    ("ngo-ua", OrgKind.PARTNER_NGO, "UA"),
    ("ops", OrgKind.OPERATOR_TEAM, "CH"),
    ("analysts", OrgKind.ANALYST, "CH"),
]
USERS = [
    ("coord.rs", "mission-rs", UserRole.COORDINATOR),
    ("coord2.rs", "mission-rs", UserRole.COORDINATOR),
    ("officer.md", "mission-md", UserRole.RECEIVING_OFFICER),
    ("partner.md", "ngo-md-border", UserRole.PARTNER_WORKER),
    ("coord.al", "mission-al", UserRole.COORDINATOR),
    ("officer.ua", "mission-ua", UserRole.RECEIVING_OFFICER),
    ("partner.ua", "ngo-ua", UserRole.PARTNER_WORKER),
    ("operator", "ops", UserRole.OPERATOR),
    ("analyst", "analysts", UserRole.ANALYST),
    ("admin", "ops", UserRole.ADMINISTRATOR),
    ("admin.al", "mission-al", UserRole.ADMINISTRATOR),
]

# A journey that takes seconds: every wait a second or two.
FAST_CONFIG = {
    "departure_lead": "PT1S",
    "rebook_backoff": "PT1S",
    "rebook_backoff_max": "PT2S",
    "border_companion_after": "PT2S",
    "border_escalation_after": "PT1H",
    "medical_reassessment_after": "PT1S",
}


@dataclass
class Stack:
    http: httpx.AsyncClient
    engine: AsyncEngine
    store: EventStore
    client: Client
    tokens: dict[str, str]
    services: ApiServices
    token_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    travel: Any = None

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def count(self, table: str) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()

    async def written(self) -> tuple[int, int, int, int]:
        """Everything a request could write about a case (the audit log aside)."""
        return (await self.count("events"), await self.count("person_fields"),
                await self.count("person_notes"), await self.count("person_keys"))


async def seed(accounts: Accounts) -> tuple[dict[str, str], dict[str, uuid.UUID]]:
    for org_id, kind, country in ORGS:
        await accounts.add_org(org_id, kind, org_id, country)
    tokens, ids = {}, {}
    for user_id, org_id, role in USERS:
        await accounts.add_user(user_id, org_id, role)
        issued = await accounts.create_token(user_id, timedelta(hours=1))
        tokens[user_id], ids[user_id] = issued.bearer, issued.token_id
    return tokens, ids


async def seed_missing(accounts: Accounts, engine: AsyncEngine,
                       ttl: timedelta = timedelta(hours=1)) -> tuple[dict[str, str],
                                                                     dict[str, uuid.UUID]]:
    """``seed`` for a database that may already hold some of these organisations and users
    (the dev stack seeds its demo accounts): add what is missing, issue a token to every
    user of ``USERS``."""
    async with engine.connect() as conn:
        orgs = set((await conn.execute(text("SELECT org_id FROM organisations"))).scalars())
        users = set((await conn.execute(text("SELECT user_id FROM users"))).scalars())
    for org_id, kind, country in ORGS:
        if org_id not in orgs:
            await accounts.add_org(org_id, kind, org_id, country)
    tokens, ids = {}, {}
    for user_id, org_id, role in USERS:
        if user_id not in users:
            await accounts.add_user(user_id, org_id, role)
        issued = await accounts.create_token(user_id, ttl)
        tokens[user_id], ids[user_id] = issued.bearer, issued.token_id
    return tokens, ids
