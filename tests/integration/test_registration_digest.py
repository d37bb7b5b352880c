"""A registration under an Idempotency-Key is bound to its whole body (decision 0058): the
vault keeps a keyed digest of the canonical request, never the request; a retry with the
same body is told apart from one with another body (her identity included), across a
master key rotation too; the digest goes with her identity (erasure, discard)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.service.referrals import ReferralIn, canonical_request
from store.keys import Key, Keyring
from store.vault import (
    ErasureReason,
    PersonRecord,
    PersonVault,
    VaultKeyError,
    registration_requests,
)

CASE = "c-0123456789abcdef0123"
OTHER_CASE = "c-fedcba98765432100123"
BODY = {"receiving_mission": "mission-md", "border_partner": "ngo-md-border",
        "host_country": "RS", "destination_country": "MD", "referral_source": "police_raid",
        "first_placement": "safe_house", "risk_level": "low", "age_category": "18_24",
        "identity": {"given_names": "Marker-Given Ana", "nationality": "MD"}}


def _request(**changes) -> bytes:
    return canonical_request(ReferralIn.model_validate({**BODY, **changes}))


@pytest.fixture
def vault(engine: AsyncEngine) -> PersonVault:
    return PersonVault(engine, Keyring(Key.generate()))


async def _digests(engine: AsyncEngine) -> list:
    async with engine.connect() as conn:
        return (await conn.execute(select(registration_requests))).all()


def test_the_canonical_request_is_the_parsed_body_not_its_spelling():
    assert _request() == _request(witness=False)  # a default sent or omitted
    reordered = dict(reversed(list(BODY.items())))
    assert canonical_request(ReferralIn.model_validate(reordered)) == _request()
    assert _request(identity={"given_names": "Marker-Given Ana", "nationality": "MD"}) \
        == _request()
    assert _request(identity={"given_names": "Marker-Other"}) != _request()
    assert _request(identity={"given_names": "Marker-Given Ana", "nationality": "MD",
                              "family_name": None}) != _request()  # a null is recorded
    assert _request(risk_level="high") != _request()
    assert _request(identity=None) != _request()


async def test_the_same_body_is_the_same_request_and_another_is_not(vault, engine):
    assert await vault.remember_request(CASE, _request()) is True
    assert await vault.remember_request(CASE, _request()) is None
    assert await vault.remember_request(CASE, _request(
        identity={"given_names": "Marker-Someone Else"})) is False
    assert await vault.remember_request(CASE, _request(first_placement="shelter_low_risk")) is False
    assert await vault.remember_request(CASE, _request()) is None  # the first one kept


async def test_only_a_keyed_digest_is_kept_and_it_differs_between_cases(vault, engine):
    await vault.remember_request(CASE, _request())
    await vault.remember_request(OTHER_CASE, _request())
    rows = await _digests(engine)
    assert len(rows) == 2 and rows[0].digest != rows[1].digest  # no link across cases
    for row in rows:
        assert len(row.digest) == 32
        assert b"Marker" not in row.digest and b"mission" not in row.digest
    # Without the master key the digest cannot be checked against a guess.
    stranger = PersonVault(engine, Keyring(Key.generate()))
    with pytest.raises(VaultKeyError):
        await stranger.remember_request(CASE, _request())


async def test_a_rotated_master_key_still_recognises_the_retry(vault, engine):
    old = vault._keyring.current
    await vault.remember_request(CASE, _request())
    rotated = PersonVault(engine, Keyring(Key.generate(), (old,)))
    assert await rotated.remember_request(CASE, _request()) is None
    assert await rotated.remember_request(CASE, _request(risk_level="high")) is False


async def test_the_digest_goes_with_her_identity(vault, engine):
    record = PersonRecord.model_validate(BODY["identity"])
    await vault.remember_request(CASE, _request())
    await vault.record(CASE, record, by_org="mission-rs", by_actor="coord.rs")

    async def closed(_case_id: str) -> bool:
        return False

    await vault.erase(CASE, ErasureReason.RETENTION_EXPIRED, by_org="mission-rs",
                      by_actor="coord.rs", is_case_active=closed)
    assert await _digests(engine) == []

    await vault.remember_request(OTHER_CASE, _request())
    await vault.stage(OTHER_CASE, record, referral={}, by_org="mission-rs",
                      by_actor="coord.rs")
    assert await vault.discard(OTHER_CASE)  # its case never began
    assert await _digests(engine) == []
    await vault.remember_request(CASE, _request())
    await vault.forget_request(CASE)
    assert await _digests(engine) == []
