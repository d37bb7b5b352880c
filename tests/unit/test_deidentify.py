"""k-anonymity of the HTCDS export (decision 0069): for any set of cases and any k, every
combination of the quasi-identifiers in the output holds at least k rows, or the output
is empty; no output value is an exact date, and every value is a code of its column's
vocabulary (so no name or id can come out); records are dropped only in groups under k."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.deidentify import SUPPRESSED, Hierarchy, anonymise, is_k_anonymous
from domain.htcds import (
    COLUMNS,
    MULTI,
    QUASI_IDENTIFIERS,
    REGION_OF,
    CaseFacts,
    coverage,
    deidentify,
    record_of,
)
from domain.journey.vocabulary import ReferralSource, Sex, TraffickingStatus
from domain.kernel import ISO_3166_ALPHA_2, AgeCategory
from domain.trafficking import DurationBand, ExploitationType, RecruitmentMethod, TransportMeans

COUNTRIES = ("MD", "RO", "UA", "BG", "RS", "BA", "AL", "XK", "IT", "DE", "TR", "RU")
OUTCOMES = ("returned", "assistance_declined", "missing", "not_identified_as_victim")
REACH = ("all_reached", "some_reached", "none_reached", "none_due_yet", "not_in_follow_up")


def _codes(enum) -> list[str]:
    return [m.value for m in enum]


cases = st.builds(
    CaseFacts,
    registered_at=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31),
                               timezones=st.just(UTC)),
    sex=st.sampled_from(_codes(Sex)),
    age_category=st.sampled_from(_codes(AgeCategory)),
    destination_country=st.sampled_from(COUNTRIES[:4]),
    host_country=st.sampled_from(COUNTRIES[4:]),
    referral_source=st.sampled_from(_codes(ReferralSource)),
    outcome=st.none() | st.sampled_from(OUTCOMES),
    trafficking_status=st.none() | st.sampled_from(_codes(TraffickingStatus)),
    recruitment_method=st.none() | st.sampled_from(_codes(RecruitmentMethod)),
    exploitation_types=st.lists(st.sampled_from(_codes(ExploitationType)), max_size=3),
    route_countries=st.lists(st.sampled_from(COUNTRIES), max_size=4),
    duration_band=st.none() | st.sampled_from(_codes(DurationBand)),
    transport_means=st.lists(st.sampled_from(_codes(TransportMeans)), max_size=3),
    follow_up_reach=st.sampled_from(REACH),
    services_delivered=st.lists(st.sampled_from(["medical", "shelter", "legal_counselling"]),
                                max_size=3),
)

# Every value a column may hold: its codes, their generalisations, '' and '*'.
_MONTH = re.compile(r"^(\d{4}(-\d{2}|-Q[1-4])?|\*)$")
_EXACT_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_GROUPS = {"sexual", "labour", "other", "online", "advertisement", "family_or_friends",
           "at_a_place", "minor_or_age_unknown", "adult", *REGION_OF.values()}
_VOCABULARY = {
    "prs_Gender": {"Feminine", "Masculine", "NonSpecifiedUnknown"},
    "hw_AgeBand": set(_codes(AgeCategory)), "hw_ReturnCountry": set(COUNTRIES),
    "hw_HostCountry": set(COUNTRIES), "vic_TraffickingStatus": set(_codes(TraffickingStatus)),
    "vic_MethodOfRecruitment": set(_codes(RecruitmentMethod)),
    "vic_TypeOfExploitation": set(_codes(ExploitationType)), "hte_Country": set(COUNTRIES),
    "hw_DurationBand": set(_codes(DurationBand)), "hw_TransportMeans": set(_codes(TransportMeans)),
    "hw_ReferralSource": set(_codes(ReferralSource)), "cas_Status": {"Active", "Closed"},
    "cas_ReasonForCaseClosure": set(OUTCOMES), "hw_FollowUpReach": set(REACH),
    "hw_AssistanceDelivered": {"medical", "shelter", "legal_counselling"},
}


@settings(max_examples=200, deadline=None)
@given(st.lists(cases, max_size=120), st.integers(min_value=2, max_value=25))
def test_the_export_is_k_anonymous_and_holds_only_codes(facts, k):
    result = deidentify(facts, k)
    rows = result.records
    assert is_k_anonymous(rows, list(QUASI_IDENTIFIERS), k)
    if len(facts) < k:
        assert rows == []
    assert result.total == len(facts) and len(rows) == len(facts) - result.suppressed
    for row in rows:
        assert set(row) == set(COLUMNS) - {"row_id"}
        assert _MONTH.match(row["cas_IncomingReferralDate"])
        for column, value in row.items():
            assert not _EXACT_DATE.search(value)
            if column in _VOCABULARY:
                allowed = _VOCABULARY[column] | _GROUPS | {"", SUPPRESSED}
                assert set(value.split(MULTI)) <= allowed, (column, value)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "a": st.sampled_from("abcdefgh"), "b": st.sampled_from("xyz"),
    "c": st.integers(0, 30).map(str), "payload": st.text(max_size=3)}), max_size=80),
    st.integers(min_value=1, max_value=20), st.none() | st.integers(0, 10))
def test_any_records_any_hierarchies_any_k(records, k, max_suppressed):
    quasi = {"a": Hierarchy("letter", (("vowel", lambda v: str(v in "aeiou")),)),
             "b": Hierarchy("value"),
             "c": Hierarchy("n", (("tens", lambda v: v[:-1] or "0"),))}
    result = anonymise(records, quasi, k, max_suppressed)
    assert is_k_anonymous(result.records, list(quasi), k)
    assert result.records == [] or len(result.records) >= k
    # only records of groups under k are dropped: the kept ones are the rest, in order
    sizes = Counter(tuple(quasi[q].apply(r[q], result.levels[q]) for q in quasi)
                    for r in records)
    kept = [r for r in records
            if sizes[tuple(quasi[q].apply(r[q], result.levels[q]) for q in quasi)] >= k]
    assert [r["payload"] for r in result.records] == [r["payload"] for r in kept]


def test_small_groups_are_generalised_before_anything_is_dropped():
    base = dict(sex="female", age_category="18_24", destination_country="MD",
                host_country="RS", referral_source="police_raid", outcome="returned",
                trafficking_status="ActualVictimOfTrafficking", recruitment_method=None,
                exploitation_types=("SexualExploitation",), route_countries=("MD", "RS"),
                duration_band=None, transport_means=(), follow_up_reach="not_in_follow_up",
                services_delivered=())
    facts = [CaseFacts(registered_at=datetime(2026, month, 3, tzinfo=UTC), **base)
             for month in (1, 2, 3) for _ in range(4)]  # 4 a month: under k in each month
    result = deidentify(facts, 11)
    assert result.suppressed == 0 and len(result.records) == 12
    assert {r["cas_IncomingReferralDate"] for r in result.records} == {"2026-Q1"}
    assert result.generalised == {"cas_IncomingReferralDate": "quarter"}
    cover = coverage(result, date(2026, 1, 1), date(2026, 3, 31))
    assert cover["records_published"] == 12 and cover["k"] == 11
    assert "cas_IncomingReferralDate to quarter" in cover["text"]
    assert "not trafficking statistics" in cover["text"]
    fewer = deidentify(facts[:10], 11)  # ten cases can never make a group of eleven
    assert fewer.records == [] and fewer.suppressed == 10


def test_a_case_reads_as_htcds_codes():
    facts = CaseFacts(datetime(2026, 5, 17, 9, 30, tzinfo=UTC), "male", "12_17", "MD", "RS",
                      "ngo", None, "PossibleVictimOfTrafficking", "AtWork",
                      ("Servitude", "ForcedLabour"), ("RS", "MD", "RS"), "1_6_months",
                      ("bus",), "none_due_yet", ("medical",))
    record = record_of(facts)
    assert record["cas_IncomingReferralDate"] == "2026-05"
    assert record["prs_Gender"] == "Masculine" and record["cas_Status"] == "Active"
    assert record["vic_TypeOfExploitation"] == "ForcedLabour;Servitude"
    assert record["hte_Country"] == "MD;RS"
    assert QUASI_IDENTIFIERS["vic_TypeOfExploitation"].apply(
        record["vic_TypeOfExploitation"], 1) == "labour"
    assert QUASI_IDENTIFIERS["hw_AgeBand"].apply("disputed", 1) == "minor_or_age_unknown"


def test_every_country_has_a_region():
    assert set(REGION_OF) == ISO_3166_ALPHA_2
