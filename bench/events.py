"""Realistic events for the bench: the journeys of the recorded workflow histories
(tests/scenarios/histories, each the run of a real case through the workflow), read back
from their ``append_events`` activity inputs with the appends grouped as the workflow made
them, and replayed as many synthetic cases: new case ids, new event ids, every id in a
payload (task ids, booking ids) mapped to a new one per case, times shifted, and the
API's identity-sharing grant added after the referral as the API writes it."""

from __future__ import annotations

import importlib.util
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from store.events import NewEvent

ROOT = Path(__file__).resolve().parents[1]
HISTORIES = ROOT / "tests" / "scenarios" / "histories"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# A payload of the size of a typical journey event (a task opened), for the append rows.
SAMPLE_PAYLOAD: dict[str, Any] = {
    "task_id": "5b0f8a34-2c1e-4d8e-9a6b-1f2e3d4c5b6a",
    "kind": "screening_interview",
    "assignee_org": "mission-rs",
    "assignee_role": "sending_mission",
    "due_at": "2026-11-03T08:00:00+00:00",
}


@dataclass(frozen=True)
class Template:
    """One recorded case: its appends in order, each a list of (offset, event) pairs."""

    name: str
    appends: list[list[tuple[timedelta, NewEvent]]]

    @property
    def size(self) -> int:
        return sum(len(a) for a in self.appends)


def _converter():
    path = ROOT / "tests" / "scenarios" / "converter.py"
    spec = importlib.util.spec_from_file_location("_bench_history_converter", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.TEST_DATA_CONVERTER


async def load_templates() -> list[Template]:
    """The journeys of the recorded histories that start with a referral; a small
    hand-made journey when the histories are not there (an installed package)."""
    if not HISTORIES.is_dir():
        return [_fallback()]
    from temporalio.client import WorkflowHistory

    from domain.catalogue import AppendEventsRequest, payload_of

    converter = _converter()
    templates = []
    for path in sorted(HISTORIES.glob("*.json")):
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        appends: list[list[tuple[timedelta, NewEvent]]] = []
        start: datetime | None = None
        for event in history.events:
            if not event.HasField("activity_task_scheduled_event_attributes"):
                continue
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name != "append_events":
                continue
            [request] = await converter.decode(attrs.input.payloads, [AppendEventsRequest])
            group = []
            for envelope in request.events:
                start = start or envelope.occurred_at
                group.append((envelope.occurred_at - start, NewEvent(
                    envelope.event_id, envelope.event.type, envelope.event.schema_version,
                    payload_of(envelope.event), envelope.author_org, envelope.actor,
                    envelope.occurred_at)))
            appends.append(group)
        if appends and appends[0][0][1].event_type == "case.referral_registered":
            referral = appends[0][0][1]
            grant = NewEvent(uuid.uuid4(), "sharing.granted", 1,
                             {"org_id": referral.payload["border_partner"],
                              "consent_record_id": "rec_benchgrant"},
                             referral.payload["sending_mission"], "coord.bench",
                             referral.occurred_at)
            appends.insert(1, [(timedelta(seconds=1), grant)])
            templates.append(Template(path.stem, appends))
    return templates or [_fallback()]


def _fallback() -> Template:
    t0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    task = str(uuid.uuid4())
    referral = {"source": "police_raid", "first_placement": "safe_house", "risk_level": "low",
                "age_category": "18_24", "witness": False, "host_country": "RS",
                "destination_country": "MD", "sending_mission": "mission-rs",
                "receiving_mission": "mission-md", "border_partner": "ngo-md-border"}
    rows = [
        ("case.referral_registered", referral, "mission-rs"),
        ("case.task_opened", {**SAMPLE_PAYLOAD, "task_id": task}, "homeward"),
        ("case.screening_interview_recorded", {
            "task_id": task, "interview_record_id": "rec_abcdefgh", "interview_language": "ro",
            "interpreter_used": False, "reads_languages": ["ro"],
            "trafficking_status": "ActualVictimOfTrafficking"}, "mission-rs"),
    ]
    return Template("fallback", [[(timedelta(minutes=i), NewEvent(
        uuid.uuid4(), t, 1, p, org, "system:workflow", t0 + timedelta(minutes=i)))]
        for i, (t, p, org) in enumerate(rows)])


def _remap(value: Any, ids: dict[str, str], old_case: str | None, new_case: str) -> Any:
    if isinstance(value, dict):
        return {k: _remap(v, ids, old_case, new_case) for k, v in value.items()}
    if isinstance(value, list):
        return [_remap(v, ids, old_case, new_case) for v in value]
    if isinstance(value, str):
        if _UUID.match(value):
            return ids.setdefault(value, str(uuid.uuid4()))
        if old_case is not None and value == old_case:
            return new_case
    return value


def instantiate(template: Template, case_id: str,
                start: datetime) -> list[list[NewEvent]]:
    """The template's appends as a new case: fresh ids, times from ``start``."""
    ids: dict[str, str] = {}
    out = []
    for group in template.appends:
        out.append([NewEvent(uuid.uuid4(), e.event_type, e.schema_version,
                             _remap(e.payload, ids, None, case_id), e.author_org, e.actor,
                             start + offset) for offset, e in group])
    return out


def synthetic_cases(templates: list[Template], events: int,
                    start: datetime | None = None) -> Iterator[tuple[str, list[list[NewEvent]]]]:
    """Cases from the templates in turn until about ``events`` events are made."""
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    made, i = 0, 0
    while made < events:
        template = templates[i % len(templates)]
        case_id = f"b-{i:07d}"
        appends = instantiate(template, case_id, start + timedelta(minutes=i))
        made += sum(len(a) for a in appends)
        i += 1
        yield case_id, appends
