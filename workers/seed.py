"""Demo organisations, users and tokens that `homeward dev` sets up for a first walk-through."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from store.accounts import Accounts, OrgKind, UserRole

DEMO_ORGS = [
    ("mission-rs", OrgKind.SENDING_MISSION, "Sending mission, Belgrade", "RS"),
    ("mission-md", OrgKind.RECEIVING_MISSION, "Receiving mission, Chisinau", "MD"),
    ("ngo-md-border", OrgKind.PARTNER_NGO, "Border companion NGO, Moldova", "MD"),
    ("ops", OrgKind.OPERATOR_TEAM, "Operations team", "CH"),
    ("analysts", OrgKind.ANALYST, "Programme analysts", "CH"),
]
DEMO_USERS = [
    ("coord.rs", "mission-rs", UserRole.COORDINATOR),
    ("officer.md", "mission-md", UserRole.RECEIVING_OFFICER),
    ("partner.md", "ngo-md-border", UserRole.PARTNER_WORKER),
    ("operator", "ops", UserRole.OPERATOR),
    ("analyst", "analysts", UserRole.ANALYST),
    ("admin", "ops", UserRole.ADMINISTRATOR),
]
TOKEN_LIFETIME = timedelta(days=1)


async def seed_demo(accounts: Accounts, engine, tokens_file: Path) -> dict[str, str]:
    """Add the demo organisations and users if missing; issue fresh one-day tokens.

    The tokens are written to ``tokens_file`` (mode 600) as shell variables, e.g.
    ``HOMEWARD_TOKEN_COORD_RS=hw_...``, for `source`-ing in another terminal.
    """
    async with engine.connect() as conn:
        orgs = set((await conn.execute(text("SELECT org_id FROM organisations"))).scalars())
        users = set((await conn.execute(text("SELECT user_id FROM users"))).scalars())
    for org_id, kind, name, country in DEMO_ORGS:
        if org_id not in orgs:
            await accounts.add_org(org_id, kind, name, country)
    for user_id, org_id, role in DEMO_USERS:
        if user_id not in users:
            await accounts.add_user(user_id, org_id, role)
    tokens = {}
    for user_id, _org, _role in DEMO_USERS:
        tokens[user_id] = (await accounts.create_token(user_id, TOKEN_LIFETIME)).bearer
    lines = [f"export {token_variable(u)}={bearer}" for u, bearer in tokens.items()]
    # Created 0600 from the start: the tokens are never readable by others, not even briefly.
    fd = os.open(tokens_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    tokens_file.chmod(0o600)
    return tokens


def token_variable(user_id: str) -> str:
    return "HOMEWARD_TOKEN_" + user_id.upper().replace(".", "_")
