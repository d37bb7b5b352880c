"""`homeward org add`, `user add`, `token create` and `token revoke`, run as an
administrator runs them: the console script in a subprocess, on a real PostgreSQL
(HOMEWARD_DATABASE_URL), checked in the database and through the API's authentication.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from api_without_temporal import services_without_temporal
from sqlalchemy import text

from api.app import create_app

HOMEWARD = Path(sys.executable).parent / "homeward"


def cli_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWARD_")}
    env.update(HOMEWARD_DATABASE_URL=database_url, HOMEWARD_LOG_FORMAT="json")
    return env


def homeward(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    # The bound only stops a hung command from hanging the suite; a loaded machine may
    # take many seconds to import and connect, so it is generous.
    return subprocess.run([str(HOMEWARD), *args], env=cli_env(database_url),
                          capture_output=True, text=True, timeout=300)


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one-line message of a refused command (exit 2, no traceback)."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip()


@pytest.fixture
async def api(engine):
    """The HTTP API on the same database: its bearer authentication is the code path a
    token created by the CLI must pass (or, revoked, fail)."""
    services = services_without_temporal(engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                 base_url="http://homeward.test") as http:
        yield http


async def rows(engine, query: str, **params) -> list:
    async with engine.connect() as conn:
        return (await conn.execute(text(query), params)).all()


async def test_an_administrator_sets_up_an_organisation_a_user_and_a_token(
    database_url, engine, api
):
    out = succeeded(homeward(database_url, "org", "add", "mission-rs", "--kind",
                             "sending_mission", "--name", "Sending mission, Belgrade",
                             "--country", "RS"))
    assert out == "organisation mission-rs added (sending_mission, RS)\n"
    assert await rows(engine, "SELECT org_id, kind, display_name, country FROM organisations") \
        == [("mission-rs", "sending_mission", "Sending mission, Belgrade", "RS")]

    out = succeeded(homeward(database_url, "user", "add", "coord.rs", "--org", "mission-rs",
                             "--role", "coordinator"))
    assert out == "user coord.rs added to mission-rs as coordinator\n"
    assert await rows(engine, "SELECT user_id, org_id, role, disabled_at FROM users") \
        == [("coord.rs", "mission-rs", "coordinator", None)]

    before = datetime.now(UTC)
    out = succeeded(homeward(database_url, "token", "create", "coord.rs", "--days", "2"))
    after = datetime.now(UTC)
    first, warning, bearer = out.splitlines()
    match = re.fullmatch(r"token ([0-9a-f-]{36}) for coord\.rs, expires "
                         r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC", first)
    assert match, first
    assert warning == "store it now, it is not shown again:"
    token_id = uuid.UUID(match.group(1))
    assert bearer.startswith(f"hw_{token_id.hex}_")
    [token] = await rows(engine, "SELECT token_id, user_id, secret_hash, expires_at, revoked_at"
                                 " FROM api_tokens")
    assert (token.token_id, token.user_id, token.revoked_at) == (token_id, "coord.rs", None)
    assert before + timedelta(days=2) <= token.expires_at <= after + timedelta(days=2)
    assert match.group(2) == f"{token.expires_at:%Y-%m-%d %H:%M}"
    # Only a hash of the secret is stored; the secret itself is shown once, above.
    secret = bearer.split("_", 2)[2]
    assert token.secret_hash == hashlib.sha256(secret.encode()).digest()

    # The token opens the API as its user...
    tasks = await api.get("/tasks", headers={"Authorization": f"Bearer {bearer}"})
    assert tasks.status_code == 200, tasks.text

    # ...until it is revoked, and then at once no more.
    out = succeeded(homeward(database_url, "token", "revoke", str(token_id)))
    assert out == f"token {token_id} revoked\n"
    [(revoked_at,)] = await rows(engine, "SELECT revoked_at FROM api_tokens")
    assert revoked_at is not None
    tasks = await api.get("/tasks", headers={"Authorization": f"Bearer {bearer}"})
    assert tasks.status_code == 401
    assert tasks.json()["code"] == "token_revoked"

    assert refused(homeward(database_url, "token", "revoke", str(token_id))) \
        == f"homeward: no active token {token_id}"


async def test_bad_input_is_refused_with_a_clear_message_and_changes_nothing(
    database_url, engine
):
    succeeded(homeward(database_url, "org", "add", "mission-rs", "--kind", "sending_mission",
                       "--name", "Sending", "--country", "RS"))
    succeeded(homeward(database_url, "user", "add", "coord.rs", "--org", "mission-rs",
                       "--role", "coordinator"))

    cases = [
        (("user", "add", "officer.md", "--org", "mission-md", "--role", "receiving_officer"),
         "homeward: no organisation 'mission-md': add it first"),
        (("org", "add", "mission-rs", "--kind", "sending_mission", "--name", "Again",
          "--country", "RS"),
         "homeward: organisation 'mission-rs' not added: it exists already"),
        (("org", "add", "mission-xx", "--kind", "sending_mission", "--name", "Bad",
          "--country", "Serbia"),
         "homeward: organisation 'mission-xx' not added: 'Serbia' is not an ISO 3166 alpha-2 "
         "country code (e.g. RS)"),
        (("user", "add", "coord.rs", "--org", "mission-rs", "--role", "coordinator"),
         "homeward: user 'coord.rs' not added: it exists already"),
        (("user", "add", "admin.rs", "--org", "mission-rs", "--role", "partner_worker"),
         "homeward: a sending_mission organisation cannot have a partner_worker; allowed: "
         "administrator, coordinator"),
        (("token", "create", "nobody"), "homeward: no active user 'nobody'"),
        (("token", "create", "coord.rs", "--days", "0"),
         "homeward: a token must live for a positive time"),
        (("token", "revoke", "not-a-token-id"), "homeward: 'not-a-token-id' is not a token id"),
        (("token", "revoke", str(uuid.uuid4())), None),  # checked below: names the id
    ]
    for args, message in cases:
        error = refused(homeward(database_url, *args))
        if message is None:
            assert error == f"homeward: no active token {args[-1]}"
        else:
            assert error == message, args

    # argparse refuses an unknown role or kind before anything connects, naming the choices.
    done = homeward(database_url, "user", "add", "x.rs", "--org", "mission-rs", "--role", "boss")
    assert done.returncode == 2
    assert "invalid choice: 'boss'" in done.stderr and "coordinator" in done.stderr

    assert await rows(engine, "SELECT org_id FROM organisations") == [("mission-rs",)]
    assert await rows(engine, "SELECT user_id FROM users") == [("coord.rs",)]
    assert await rows(engine, "SELECT token_id FROM api_tokens") == []
