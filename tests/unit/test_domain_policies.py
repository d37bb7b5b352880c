"""The field's rules as small functions (domain brief, "The journey of one case")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.journey.config import JourneyConfig
from domain.journey.policies import (
    consent_refusal,
    earliest_witness_departure,
    handoff_code_from,
    handoff_code_hash,
    identification_refusal,
    police_escort_required,
    reflection_minimum_days,
    reflection_period_refusal,
    required_escorts,
    witness_departure_refusal,
)
from domain.journey.vocabulary import EscortKind, EscortScope, IdentificationMethod, RiskLevel
from domain.kernel import AgeCategory, treated_as_minor

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age", "minor"),
    [
        (AgeCategory.UNDER_12, True),
        (AgeCategory.AGE_12_TO_17, True),
        (AgeCategory.UNKNOWN, True),
        (AgeCategory.DISPUTED, True),
        (AgeCategory.AGE_18_TO_24, False),
        (AgeCategory.AGE_25_TO_34, False),
        (AgeCategory.AGE_35_PLUS, False),
    ],
)
def test_minors_include_unknown_and_disputed_age(age, minor):
    assert treated_as_minor(age) is minor


def test_high_risk_requires_police_escort():
    assert police_escort_required(RiskLevel.HIGH)
    assert not police_escort_required(RiskLevel.MEDIUM)
    assert not police_escort_required(RiskLevel.LOW)


def test_escorts_for_minors_stay_end_to_end_and_police_join_for_high_risk():
    assert required_escorts(False, RiskLevel.LOW) == [(EscortKind.STAFF, EscortScope.TO_HANDOFF)]
    assert required_escorts(True, RiskLevel.HIGH) == [
        (EscortKind.STAFF, EscortScope.END_TO_END), (EscortKind.POLICE, EscortScope.TO_HANDOFF)]


def test_witness_notice_is_ten_days_by_default():
    notice = JourneyConfig().witness_notice
    assert notice == timedelta(days=10)
    earliest = earliest_witness_departure(NOW, notice)
    assert earliest == NOW + timedelta(days=10)
    refusal = witness_departure_refusal(earliest - timedelta(minutes=1), earliest, notice)
    assert refusal is not None and "10 days in advance" in refusal.reason
    assert witness_departure_refusal(earliest, earliest, notice) is None
    assert witness_departure_refusal(NOW, None, notice) is None  # not a witness


def consent(**kw):
    args = dict(form_language="ro", reads_languages=("ro", "ru"), form_version="2026-1",
                accepted_versions=("2026-1",), interpreter_used=False,
                interpreter_recorded=False, signed_at=NOW, now=NOW)
    args.update(kw)
    return consent_refusal(**args)


def test_consent_valid_in_a_language_she_reads():
    assert consent() is None
    assert consent(form_language="ru") is None
    assert consent(interpreter_used=True, interpreter_recorded=True) is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"form_language": "en"}, "language she reads"),
        ({"form_version": "2019-1"}, "not in use"),
        ({"interpreter_used": True}, "record the interpreter"),
        ({"interpreter_recorded": True}, "none was used"),
        ({"signed_at": NOW + timedelta(hours=1)}, "future"),
    ],
)
def test_consent_refusals_explain_themselves(change, words):
    refusal = consent(**change)
    assert refusal is not None and words in refusal.reason


def test_reflection_period_minimum_is_configurable_by_host_country():
    config = JourneyConfig()
    assert reflection_minimum_days("RS", config) == 28  # Serbia: 4 weeks
    assert reflection_minimum_days("AL", config) == 90  # Tirana Agreement: 3 months
    assert reflection_period_refusal(28, "RS", config) is None
    refusal = reflection_period_refusal(27, "RS", config)
    assert refusal is not None and "at least 28 days" in refusal.reason
    assert reflection_period_refusal(None, "RS", config) is not None
    custom = JourneyConfig(reflection_minimum_days={"RS": 60}, default_reflection_minimum_days=120)
    assert reflection_minimum_days("RS", custom) == 60
    assert reflection_minimum_days("BA", custom) == 120


@pytest.mark.parametrize("method", list(IdentificationMethod))
def test_only_discreet_identification_at_the_handoff(method):
    refusal = identification_refusal(method)
    discreet = method in (IdentificationMethod.HANDOFF_CODE, IdentificationMethod.PHOTO_MATCH)
    assert (refusal is None) is discreet
    if refusal:
        assert "stigmatises" in refusal.reason


def test_handoff_code_is_deterministic_and_only_its_salted_hash_is_kept():
    code = handoff_code_from([0, 1, 2, 3, 4, 5, 6, 31])
    assert code == "ABCDEFG9"
    assert handoff_code_from([0, 1, 2, 3, 4, 5, 6, 31]) == code
    assert handoff_code_hash("case-1", code) != handoff_code_hash("case-2", code)
    assert code not in handoff_code_hash("case-1", code)
    with pytest.raises(ValueError):
        handoff_code_from([1, 2])


def test_rebook_backoff_doubles_up_to_a_cap():
    config = JourneyConfig(rebook_backoff=timedelta(hours=2), rebook_backoff_max=timedelta(hours=5))
    assert [config.rebook_delay(n) for n in (1, 2, 3, 4)] == [
        timedelta(hours=2), timedelta(hours=4), timedelta(hours=5), timedelta(hours=5)]


def test_config_defaults_come_from_the_domain_brief():
    config = JourneyConfig()
    assert config.border_companion_after == timedelta(hours=6)
    assert config.border_escalation_after == timedelta(hours=24)
    assert config.max_rebook_attempts == 3
    assert config.max_document_refusals == 3
