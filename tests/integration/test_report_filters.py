"""The statistical report's counts (store/reports.py, before suppression) equal a count in
Python over the same read-model rows, for any caseload, any reporting period (on the
registration or the closing date, open or closed at either end) and any mission scope:
the period and the scope pick exactly the cases they name, and every table and
cross-table counts each of them once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from domain.disclosure import TOTAL
from domain.kernel import AgeCategory, treated_as_minor
from store.reports import OUTCOMES, Period, Reports, Scope

DAY0 = date(2026, 1, 1)

_CASE = st.fixed_dictionaries({
    "sending_mission": st.sampled_from(["mission-rs", "mission-al"]),
    "receiving_mission": st.sampled_from(["mission-md", "mission-al"]),
    "handed_over": st.booleans(),
    "destination_country": st.sampled_from(["MD", "UA"]),
    "age_category": st.sampled_from([a.value for a in AgeCategory]),
    "sex": st.sampled_from(["female", "male", "other", "not_recorded"]),
    "outcome": st.sampled_from([None, *(o for o in OUTCOMES if o != "open")]),
    "registered_day": st.integers(0, 9),
    "closed_after": st.integers(0, 5),
})
_DAY = st.none() | st.integers(0, 14).map(lambda d: DAY0 + timedelta(days=d))
_SCOPE = st.sampled_from([Scope(), Scope("sending", "mission-rs"),
                          Scope("receiving", "mission-md"), Scope("receiving", "mission-al"),
                          Scope("either", "mission-al")])


def _noon(day: int) -> datetime:
    return datetime.combine(DAY0 + timedelta(days=day), datetime.min.time(),
                            UTC) + timedelta(hours=12)


def _in_scope(case: dict, scope: Scope) -> bool:
    sending = case["sending_mission"] == scope.mission
    receiving = case["receiving_mission"] == scope.mission and case["handed_over"]
    return {None: True, "sending": sending, "receiving": receiving,
            "either": sending or receiving}[scope.side]


def _in_period(case: dict, period: Period) -> bool:
    if period.basis == "registered":
        day = DAY0 + timedelta(days=case["registered_day"])
    elif case["outcome"] is None:
        return False  # not closed: outside every period on the closing date
    else:
        day = DAY0 + timedelta(days=case["registered_day"] + case["closed_after"])
    return ((period.start is None or day >= period.start)
            and (period.end is None or day <= period.end))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(_CASE, max_size=30), start=_DAY, end=_DAY,
       basis=st.sampled_from(["registered", "closed"]), scope=_SCOPE)
async def test_the_report_counts_exactly_the_cases_its_period_and_scope_name(
        engine, cases, start, end, basis, scope):
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM rm_cases"))
        for i, case in enumerate(cases):
            registered = _noon(case["registered_day"])
            closed = (_noon(case["registered_day"] + case["closed_after"])
                      if case["outcome"] else None)
            await conn.execute(text(
                "INSERT INTO rm_cases (case_id, sending_mission, receiving_mission, "
                "border_partner, host_country, destination_country, age_category, minor, "
                "witness, risk_level, referral_source, stage, outcome, registered_at, "
                "closed_at, receiving_visible_at, last_event_at, sex) VALUES (:id, "
                ":sending_mission, :receiving_mission, 'ngo-md-border', 'RS', "
                ":destination_country, :age_category, :minor, false, 'low', 'police_raid', "
                ":stage, :outcome, :registered, :closed, :visible, :registered, :sex)"),
                {"id": f"c-{i}", **{k: case[k] for k in (
                    "sending_mission", "receiving_mission", "destination_country",
                    "age_category", "outcome", "sex")},
                 "minor": treated_as_minor(AgeCategory(case["age_category"])),
                 "stage": "closed" if case["outcome"] else "screening",
                 "registered": registered, "closed": closed,
                 "visible": registered if case["handed_over"] else None})
    period = Period(start, end, basis)
    _tables, _dimensions, counts = await Reports(engine).report_counts(period, scope)

    picked = [c for c in cases if _in_scope(c, scope) and _in_period(c, period)]
    assert counts[TOTAL] == len(picked)
    expected: dict[str, Counter] = {
        "sex": Counter(c["sex"] for c in picked),
        "age_band": Counter(c["age_category"] for c in picked),
        "minor": Counter("minor_or_age_unknown"
                         if treated_as_minor(AgeCategory(c["age_category"])) else "adult"
                         for c in picked),
        "outcome": Counter(c["outcome"] or "open" for c in picked),
        "sending_mission": Counter(c["sending_mission"] for c in picked),
        "destination_country": Counter(c["destination_country"] for c in picked),
        # no screening recorded in these rows: nobody is counted as assisted
        "trafficking_status": Counter("not_yet_screened" for _ in picked),
    }
    for dimension, by_value in expected.items():
        found = {v: n for key, n in counts.items() if len(key) == 1
                 for d, v in key if d == dimension and n}
        assert found == dict(by_value), dimension
    crossed = Counter((c["outcome"] or "open", c["destination_country"]) for c in picked)
    found = {(dict(key)["outcome"], dict(key)["destination_country"]): n
             for key, n in counts.items()
             if {d for d, _ in key} == {"outcome", "destination_country"} and n}
    assert found == dict(crossed)
