"""GET /reports/statistical and /reports/snapshot (issue 15, decision 0065): JSON, CSV and
HTML over a period, scoped to the caller's mission, every table suppressed alike; the HTML
page rendered in headless Chromium with its charts and nothing loaded from elsewhere."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import shutil
import tempfile
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from api_without_temporal import services_without_temporal
from sqlalchemy import text
from test_read_models import new, referral

from api.app import create_app
from domain.journey import events as ev
from store.accounts import Accounts, OrgKind, UserRole
from store.projections import ProjectionRunner
from store.read_models import all_projections

S = "suppressed"
USERS = {"analyst": ("analysts", UserRole.ANALYST),
         "coord.rs": ("mission-rs", UserRole.COORDINATOR),
         "coord.al": ("mission-al", UserRole.COORDINATOR),
         "officer.md": ("mission-md", UserRole.RECEIVING_OFFICER),
         "partner.md": ("ngo-md", UserRole.PARTNER_WORKER), "ops": ("ops", UserRole.OPERATOR)}


@pytest.fixture
async def api(engine):
    accounts = Accounts(engine)
    for org, kind in (("analysts", OrgKind.ANALYST), ("mission-rs", OrgKind.SENDING_MISSION),
                      ("mission-al", OrgKind.SENDING_MISSION),
                      ("mission-md", OrgKind.RECEIVING_MISSION),
                      ("ngo-md", OrgKind.PARTNER_NGO), ("ops", OrgKind.OPERATOR_TEAM)):
        await accounts.add_org(org, kind, org, "CH")
    tokens = {}
    for user, (org, role) in USERS.items():
        await accounts.add_user(user, org, role)
        tokens[user] = (await accounts.create_token(user, timedelta(hours=1))).bearer
    app = create_app(services_without_temporal(engine, accounts))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://homeward.test") as http:
        http.tokens = tokens
        yield http


async def _cases(engine, n: int, *, registered: str = "2026-03-10", sending="mission-rs",
                 receiving="mission-md", destination="MD", outcome=None, minor=False,
                 age="25_34", status="ActualVictimOfTrafficking", visible=True,
                 services=(), closed=None) -> None:
    async with engine.begin() as conn:
        for _ in range(n):
            case_id = f"c-{uuid.uuid4().hex[:12]}"
            at = datetime.fromisoformat(registered).replace(tzinfo=UTC)
            await conn.execute(text(
                "INSERT INTO rm_cases (case_id, sending_mission, receiving_mission, "
                "border_partner, host_country, destination_country, age_category, minor, "
                "witness, risk_level, referral_source, stage, outcome, registered_at, "
                "receiving_visible_at, closed_at, last_event_at) VALUES (:id, :s, :r, 'ngo-md', "
                "'RS', :d, :age, :minor, false, 'low', 'police_raid', 'screening', :o, :at, "
                ":visible, :closed, :at)"),
                {"id": case_id, "s": sending, "r": receiving, "d": destination, "age": age,
                 "minor": minor, "o": outcome, "at": at, "visible": at if visible else None,
                 "closed": datetime.fromisoformat(closed).replace(tzinfo=UTC) if closed else None})
            await conn.execute(text(
                "INSERT INTO rm_report_facts (case_id, trafficking_status, follow_up_started, "
                "services_delivered) VALUES (:id, :st, :f, CAST(:sv AS jsonb))"),
                {"id": case_id, "st": status, "f": bool(services),
                 "sv": "[" + ",".join(f'"{s}"' for s in services) + "]"})


async def _get(http, user, path, **params):
    return await http.get(path, params=params,
                          headers={"Authorization": f"Bearer {http.tokens[user]}"})


def _table(report, name):
    return next(t for t in report["tables"] if t["name"] == name)


def _one_way(report, name):
    return {r[name]: r["count"] for r in _table(report, name)["rows"]}


async def test_the_report_counts_victims_as_assisted_and_always_shows_minors(api, engine):
    await _cases(engine, 8, outcome="returned", services=("medical",))
    await _cases(engine, 6, status="NotAVictimOfTrafficking",
                 outcome="not_identified_as_victim")
    await _cases(engine, 5, status=None)
    report = (await _get(api, "analyst", "/reports/statistical")).json()
    assert report["persons_referred"] == 19
    assert report["persons_assisted"] == 8 and report["screened_not_victim"] == 6
    assert _one_way(report, "trafficking_status") == {
        "identified_victim": 8, "screened_not_victim": 6, "not_yet_screened": 5}
    assert _one_way(report, "minor") == {"minor_or_age_unknown": 0, "adult": 19}
    assert _one_way(report, "age_band")["unknown"] == 0
    assert _one_way(report, "outcome")["missing"] == 0
    assert _one_way(report, "assistance")["medical"] == 8
    assert {"minor_by_assistance", "outcome_by_destination_country", "minor_by_outcome"} <= {
        t["name"] for t in report["tables"]}
    assert "not trafficking statistics" in report["coverage"]
    assert "fewer than 5" in report["coverage"] and "2026" not in report["coverage"]


async def test_the_period_filters_by_registration_or_closure(api, engine):
    await _cases(engine, 6, registered="2026-01-15", outcome="returned", closed="2026-04-02")
    await _cases(engine, 7, registered="2026-03-15")
    jan = (await _get(api, "analyst", "/reports/statistical", **{"from": "2026-01-01",
                                                                  "to": "2026-01-31"})).json()
    assert jan["persons_referred"] == 6 and "2026-01-01 to 2026-01-31" in jan["coverage"]
    closed = (await _get(api, "analyst", "/reports/statistical", basis="closed",
                         **{"from": "2026-04-01", "to": "2026-04-02"})).json()
    assert closed["persons_referred"] == 6  # the last day counts whole
    none = (await _get(api, "analyst", "/reports/statistical", basis="closed",
                       **{"from": "2026-04-03"})).json()
    assert none["persons_referred"] == 0


async def test_a_mission_reads_only_its_own_caseload(api, engine):
    await _cases(engine, 6, sending="mission-rs", destination="MD")
    await _cases(engine, 9, sending="mission-al", receiving="mission-xk", destination="XK")
    await _cases(engine, 5, sending="mission-al", receiving="mission-md", visible=False)
    rs = (await _get(api, "coord.rs", "/reports/statistical")).json()
    assert rs["persons_referred"] == 6 and "XK" not in str(rs) and "mission-al" not in str(rs)
    md = (await _get(api, "officer.md", "/reports/statistical")).json()
    assert md["persons_referred"] == 6  # not the five not yet handed to it
    analyst = (await _get(api, "analyst", "/reports/statistical", mission="mission-al")).json()
    assert analyst["persons_referred"] == 14
    assert (await _get(api, "analyst", "/reports/statistical")).json()["persons_referred"] == 20
    other = await _get(api, "coord.rs", "/reports/statistical", mission="mission-al")
    assert other.status_code == 403 and other.json()["code"] == "other_mission"
    stats = await _get(api, "coord.rs", "/statistics")  # no longer 403 for a mission
    assert stats.status_code == 200 and stats.json()["persons_referred"] == 6


@pytest.mark.parametrize("user", ["partner.md", "ops"])
async def test_others_may_not_read_the_report(api, user):
    assert (await _get(api, user, "/reports/statistical")).status_code == 403


@pytest.mark.parametrize("params", [{"from": "2026-13-01"}, {"to": "yesterday"},
                                    {"from": "2026-03-01", "to": "2026-02-01"},
                                    {"basis": "opened"}, {"format": "pdf"},
                                    {"mission": "Not A Mission!"}])
async def test_bad_parameters_are_422(api, params):
    answer = await _get(api, "analyst", "/reports/statistical", **params)
    assert answer.status_code == 422, answer.text


async def test_csv_is_a_zip_of_one_file_per_table_or_one_table(api, engine):
    await _cases(engine, 7)
    answer = await _get(api, "analyst", "/reports/statistical", format="csv")
    assert answer.headers["content-type"] == "application/zip"
    files = zipfile.ZipFile(io.BytesIO(answer.content))
    assert {"coverage.txt", "outcome.csv", "minor.csv",
            "outcome_by_destination_country.csv"} <= set(files.namelist())
    one = await _get(api, "analyst", "/reports/statistical", format="csv", table="minor")
    assert one.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(one.text))) == [
        ["minor", "count"], ["minor_or_age_unknown", "0"], ["adult", "7"], ["all", "7"]]
    unknown = await _get(api, "analyst", "/reports/statistical", format="csv", table="nope")
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_table"


async def test_a_suppressed_cell_cannot_be_recovered_from_totals_or_another_table(api, engine):
    """'missing' counts 2: hidden in the outcome table, and also where outcome ×
    destination prints it as a margin; every subtraction that would give it back meets
    another hidden cell."""
    await _cases(engine, 20, outcome="returned", destination="MD")
    await _cases(engine, 6, outcome="assistance_declined", destination="UA")
    await _cases(engine, 2, outcome="missing", destination="MD")
    await _cases(engine, 7, minor=True, age="12_17", destination="AL")
    report = (await _get(api, "analyst", "/reports/statistical")).json()
    seen: dict[frozenset, object] = {}
    for t in report["tables"]:  # one value per cell, whichever table prints it
        for row in [*t["rows"], *t.get("margins", [])]:
            cell = frozenset((k, v) for k, v in row.items() if k != "count")
            assert seen.setdefault(cell, row["count"]) == row["count"], cell
    outcome = _one_way(report, "outcome")
    assert outcome["missing"] == S
    assert sum(v == S for v in outcome.values()) >= 2  # the total does not give it back
    cross = _table(report, "outcome_by_destination_country")
    md_missing = [r for r in cross["rows"] if r["outcome"] == "missing"]
    assert [r["count"] for r in md_missing if r["destination_country"] == "MD"] == [S]
    md_column = [r["count"] for r in cross["rows"] if r["destination_country"] == "MD"]
    assert md_column.count(S) >= 2  # nor does the destination's column
    for value in report.values():
        assert value != 2


async def test_the_snapshot_counts_open_cases_by_stage_and_block(api, engine):
    await _cases(engine, 3, minor=True, age="unknown")
    await _cases(engine, 4, outcome="returned")
    mine = (await _get(api, "coord.rs", "/reports/snapshot")).json()
    assert mine["open_cases"] == 3 and mine["suppressed"] is False  # her own cases
    minors = _table(mine, "minor_by_stage")
    assert {"minor": "minor_or_age_unknown", "count": 3} in minors["margins"]
    assert {"minor": "adult", "count": 0} in minors["margins"]
    analyst = (await _get(api, "analyst", "/reports/snapshot")).json()
    assert analyst["open_cases"] == S
    assert (await _get(api, "ops", "/reports/snapshot")).json()["open_cases"] == 3
    assert (await _get(api, "partner.md", "/reports/snapshot")).status_code == 403


async def test_the_projection_folds_screening_and_follow_up(api, engine):
    store = services_without_temporal(engine).store
    task = uuid.uuid4()
    for status in ("ActualVictimOfTrafficking",) * 5 + ("NotAVictimOfTrafficking",) * 5:
        await store.append(f"c-{uuid.uuid4().hex[:12]}", None, [
            new(referral(), 0, "mission-rs"),
            new(ev.ScreeningInterviewRecorded(
                task_id=task, interview_record_id="rec_abcdefgh", interview_language="ro",
                interpreter_used=False, reads_languages=("ro",), trafficking_status=status),
                1, "mission-rs", "coord.rs"),
            # what the receiving mission provided on arrival, twice for one person
            *[new(ev.PostArrivalAssistanceRecorded(task_id=uuid.uuid4(), provided=provided),
                  2 + n, "mission-md", "officer.md")
              for n, provided in enumerate([("medical", "onward_transfer"), ("medical",)])]])
    await ProjectionRunner(engine, all_projections()).catch_up()
    report = (await _get(api, "analyst", "/reports/statistical")).json()
    assert report["persons_assisted"] == 5 and report["screened_not_victim"] == 5
    arrival = _one_way(report, "assistance_on_arrival")
    assert (arrival["medical"], arrival["onward_transfer"]) == (10, 10)  # persons, not visits
    assert arrival["needs_assessment"] == 0  # every type listed, also at zero


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def _chromium(*args: str) -> bytes:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        browser = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--disable-extensions", f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1000,3000", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await browser.communicate()
    return out


async def test_the_html_report_renders_its_charts_offline_in_chromium(api, engine, tmp_path: Path):
    await _cases(engine, 12, outcome="returned", services=("medical", "shelter"))
    await _cases(engine, 6, minor=True, age="12_17", destination="AL")
    await _cases(engine, 2, outcome="missing")
    answer = await _get(api, "analyst", "/reports/statistical", format="html")
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert not re.findall(r'(?:src|href)\s*=\s*["\'](?:[a-z]+:)?//', html)  # nothing remote
    assert "<script" not in html and "@media print" in html
    page = tmp_path / "report.html"
    page.write_text(html)
    dom = (await _chromium("--dump-dom", page.as_uri())).decode()
    charts = re.findall(r'<svg class="chart"', dom)
    assert len(charts) >= 15
    bars = re.findall(r'<rect class="bar" data-count="(\d+)"[^>]*width="(\d+)"', dom)
    assert any(int(w) > 100 for _, w in bars)  # drawn, not empty
    assert 'data-count="suppressed"' in dom  # 'missing' drawn as suppressed, not a number
    assert "Minors × assistance delivered" in dom
    shot = tmp_path / "report.png"
    await _chromium(f"--screenshot={shot}", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 20_000  # a page with charts, not blank


async def _trafficking(engine, minor: bool, types: list[str], route: list[str]) -> None:
    """One case with how trafficking occurred: its exploitation types and route."""
    await _cases(engine, 1, minor=minor, age="12_17" if minor else "25_34",
                 services=("medical",) if minor else ("medical", "shelter"))
    async with engine.begin() as conn:
        case_id = (await conn.execute(text(
            "SELECT case_id FROM rm_cases ORDER BY registered_at DESC, ctid DESC LIMIT 1"
        ))).scalar_one()
        await conn.execute(text(
            "INSERT INTO rm_trafficking (case_id, exploitation_types) VALUES (:id, :types)"),
            {"id": case_id, "types": types})
        for seq, country in enumerate(route, start=1):
            await conn.execute(text(
                "INSERT INTO rm_trafficking_route (case_id, seq, role, country) "
                "VALUES (:id, :seq, 'transit', :c)"), {"id": case_id, "seq": seq, "c": country})


async def test_multi_valued_tables_count_each_person_once_per_value(api, engine):
    # Six adults: a route that goes back and forth (HU>AT twice is one flow of hers).
    for _ in range(6):
        await _trafficking(engine, False, ["sexual", "forced_labour"],
                           ["RS", "HU", "AT", "HU", "AT"])
    # Five minors: a stay within one country is no flow.
    for _ in range(5):
        await _trafficking(engine, True, ["sexual"], ["RS", "RS", "HU"])
    report = (await _get(api, "analyst", "/reports/statistical")).json()
    assert report["persons_referred"] == 11
    types = _one_way(report, "exploitation_type")
    assert (types["sexual"], types["forced_labour"]) == (11, 6)
    assert _one_way(report, "route_flow") == {"RS>HU": 11, "HU>AT": 6, "AT>HU": 6}
    assistance = _one_way(report, "assistance")
    assert (assistance["medical"], assistance["shelter"]) == (11, 6)
    cross = {(r["minor"], r["assistance"]): r["count"]
             for r in _table(report, "minor_by_assistance")["rows"]}
    assert cross[("minor_or_age_unknown", "medical")] == 5
    assert cross[("adult", "medical")] == 6 and cross[("adult", "shelter")] == 6
    assert cross[("minor_or_age_unknown", "shelter")] == 0
    assert _one_way(report, "risk_indicator")["offer_to_work_abroad"] == 0
