"""Organisations, users and bearer tokens: hashed at rest, expiry, revocation, and failures
throttled by their source, never by the token they name."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from store.accounts import (
    AccountError,
    Accounts,
    AuthenticationFailed,
    OrgKind,
    TooManyFailures,
    UserRole,
)


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def accounts(engine, clock) -> Accounts:
    acc = Accounts(engine, clock=clock, max_failures=3, failure_window=timedelta(minutes=15))
    await acc.add_org("mission-rs", OrgKind.SENDING_MISSION, "Sending mission Belgrade", "RS")
    await acc.add_user("coord.rs", "mission-rs", UserRole.COORDINATOR)
    return acc


async def test_token_authenticates_its_user_and_organisation(accounts):
    issued = await accounts.create_token("coord.rs")
    principal = await accounts.authenticate(issued.bearer)
    assert principal.user_id == "coord.rs"
    assert principal.org_id == "mission-rs"
    assert principal.org_kind is OrgKind.SENDING_MISSION
    assert principal.role is UserRole.COORDINATOR


async def test_only_a_hash_of_the_secret_is_stored(accounts, engine):
    issued = await accounts.create_token("coord.rs")
    # hw_<32 hex>_<secret>: the secret itself may contain "_".
    secret = issued.bearer.split("_", 2)[2]
    assert len(secret) == 43
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM api_tokens"))).all()
    dump = repr(rows)
    assert secret not in dump and secret.encode() not in b"".join(r.secret_hash for r in rows)


async def test_expired_token_refused(accounts, clock):
    issued = await accounts.create_token("coord.rs", ttl=timedelta(hours=1))
    clock.now += timedelta(hours=1, seconds=1)
    with pytest.raises(AuthenticationFailed) as refused:
        await accounts.authenticate(issued.bearer)
    assert refused.value.reason == "expired"


async def test_revoked_token_refused_at_once(accounts):
    issued = await accounts.create_token("coord.rs")
    await accounts.authenticate(issued.bearer)
    await accounts.revoke_token(issued.token_id)
    with pytest.raises(AuthenticationFailed) as refused:
        await accounts.authenticate(issued.bearer)
    assert refused.value.reason == "revoked"
    with pytest.raises(AccountError):
        await accounts.revoke_token(issued.token_id)


def forged(bearer: str) -> str:
    return bearer[:-4] + ("AAAA" if not bearer.endswith("AAAA") else "BBBB")


async def test_wrong_secrets_never_lock_the_token_they_name(accounts):
    """Issue 13: five wrong secrets with a real token id locked its user for 15 minutes,
    and the valid token with it. Anyone who saw a token id (``token create`` prints it,
    ``revoke`` needs it) could lock a user out. Now the source that fails is throttled;
    the user, from anywhere else, is not (this test replaces the one that asserted the
    lockout)."""
    issued = await accounts.create_token("coord.rs")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed) as refused:
            await accounts.authenticate(forged(issued.bearer), source="203.0.113.9")
        assert refused.value.reason == "bad_secret"
    with pytest.raises(TooManyFailures):
        await accounts.authenticate(forged(issued.bearer), source="203.0.113.9")
    principal = await accounts.authenticate(issued.bearer, source="198.51.100.7")
    assert principal.user_id == "coord.rs"


async def test_a_throttled_source_waits_out_the_window(accounts, clock):
    unknown = "hw_" + "0" * 32 + "_" + "a" * 43
    issued = await accounts.create_token("coord.rs")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await accounts.authenticate(unknown, source="203.0.113.9")
    with pytest.raises(TooManyFailures) as throttled:
        await accounts.authenticate(issued.bearer, source="203.0.113.9")
    assert timedelta(0) < throttled.value.retry_after <= timedelta(minutes=15)
    clock.now += timedelta(minutes=15, seconds=1)
    assert (await accounts.authenticate(issued.bearer, source="203.0.113.9")).user_id == \
        "coord.rs"


async def test_failures_spread_over_time_are_not_throttled(accounts, clock):
    issued = await accounts.create_token("coord.rs")
    for _ in range(6):
        with pytest.raises(AuthenticationFailed) as refused:
            await accounts.authenticate(forged(issued.bearer), source="203.0.113.9")
        assert refused.value.reason == "bad_secret"
        clock.now += timedelta(minutes=6)


async def test_the_throttle_forgets_the_quietest_source_beyond_its_bound(engine, clock):
    accounts = Accounts(engine, clock=clock, max_failures=1)
    accounts.throttle._max_sources = 2
    for source in ("a", "b", "c"):
        with pytest.raises(AuthenticationFailed):
            await accounts.authenticate("malformed", source=source)
    with pytest.raises(AuthenticationFailed) as refused:
        await accounts.authenticate("malformed", source="a")  # forgotten: not throttled
    assert refused.value.reason == "malformed"
    with pytest.raises(TooManyFailures):
        await accounts.authenticate("malformed", source="c")


async def test_a_valid_token_writes_nothing_but_a_coarse_last_use(accounts, engine, clock):
    """Authentication took a row lock on the user and wrote two rows on every request.
    Now it locks nothing (a user row held by another transaction does not block it) and
    writes ``last_used_at`` once per few minutes."""
    issued = await accounts.create_token("coord.rs")

    async def last_used() -> datetime | None:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT last_used_at FROM api_tokens WHERE "
                                            "token_id = :t"), {"t": issued.token_id})).scalar()

    await accounts.authenticate(issued.bearer)
    first = await last_used()
    assert first == clock.now
    clock.now += timedelta(minutes=2)
    async with engine.begin() as holder:
        await holder.execute(text("SELECT 1 FROM users WHERE user_id = 'coord.rs' FOR UPDATE"))
        await asyncio.wait_for(accounts.authenticate(issued.bearer), timeout=60)
    assert await last_used() == first
    clock.now += timedelta(minutes=4)
    await accounts.authenticate(issued.bearer)
    assert await last_used() == clock.now


@pytest.mark.parametrize(
    "bearer", ["", "Bearer x", "hw_123_abc", "hw_" + "g" * 32 + "_" + "a" * 43]
)
async def test_malformed_tokens_refused(accounts, bearer):
    with pytest.raises(AuthenticationFailed) as refused:
        await accounts.authenticate(bearer)
    assert refused.value.reason == "malformed"


async def test_unknown_token_refused(accounts):
    with pytest.raises(AuthenticationFailed) as refused:
        await accounts.authenticate("hw_" + "0" * 32 + "_" + "a" * 43)
    assert refused.value.reason == "unknown"


async def test_roles_must_fit_the_organisation(accounts):
    await accounts.add_org("ngo-md", OrgKind.PARTNER_NGO, "Border companion NGO", "MD")
    with pytest.raises(AccountError, match="partner_ngo organisation cannot have a coordinator"):
        await accounts.add_user("x.md", "ngo-md", UserRole.COORDINATOR)
    with pytest.raises(AccountError, match="no organisation"):
        await accounts.add_user("y", "nowhere", UserRole.OPERATOR)
    with pytest.raises(AccountError, match="not a role"):
        await accounts.add_user("z", "ngo-md", "boss")


async def test_bad_organisation_input_refused_clearly(accounts):
    with pytest.raises(AccountError, match="exists already"):
        await accounts.add_org("mission-rs", OrgKind.SENDING_MISSION, "dup", "RS")
    with pytest.raises(AccountError, match="ISO 3166"):
        await accounts.add_org("mission-xx", OrgKind.SENDING_MISSION, "bad", "Serbia")
    with pytest.raises(AccountError, match="not a organisation kind"):
        await accounts.add_org("mission-yy", "ministry", "bad", "RS")


async def test_each_refusal_says_why(accounts, engine):
    """Each refused row names its own reason, not a list of possible ones."""
    with pytest.raises(AccountError) as refused:
        await accounts.add_org("mission-rs", OrgKind.SENDING_MISSION, "dup", "RS")
    assert str(refused.value) == "organisation 'mission-rs' not added: it exists already"
    with pytest.raises(AccountError) as refused:
        await accounts.add_org("Mission RS", OrgKind.SENDING_MISSION, "bad", "RS")
    assert "the id must be 2 to 63 lower-case letters, digits and '-'" in str(refused.value)
    assert "exists already" not in str(refused.value)
    with pytest.raises(AccountError) as refused:
        await accounts.add_org("mission-xx", OrgKind.SENDING_MISSION, "bad", "rs")
    assert "'rs' is not an ISO 3166 alpha-2 country code" in str(refused.value)
    with pytest.raises(AccountError) as refused:
        await accounts.add_user("coord.rs", "mission-rs", UserRole.COORDINATOR)
    assert str(refused.value) == "user 'coord.rs' not added: it exists already"
    with pytest.raises(AccountError) as refused:
        await accounts.add_user("Coord RS", "mission-rs", UserRole.COORDINATOR)
    assert "the id must be 2 to 63 lower-case letters" in str(refused.value)
    async with engine.connect() as conn:
        orgs = (await conn.execute(text("SELECT org_id FROM organisations"))).scalars().all()
        users = (await conn.execute(text("SELECT user_id FROM users"))).scalars().all()
    assert (orgs, users) == (["mission-rs"], ["coord.rs"])
