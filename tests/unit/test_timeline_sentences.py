"""Every event a case's timeline can show reads as a sentence made of codes and ids (not
its type name), including the follow-up's, the trafficking account and case packages."""

from __future__ import annotations

import uuid

from api.timeline import _SENTENCES
from domain import catalogue
from domain.maintenance import MAINTENANCE_EVENTS


def test_every_event_of_a_case_has_a_sentence():
    not_on_a_case = {m.model_fields["type"].default for m in MAINTENANCE_EVENTS}
    missing = set(catalogue.CATALOGUE) - set(_SENTENCES) - catalogue.OUTCOME_TYPES - not_on_a_case
    assert missing == set()


def test_sentences_say_what_happened_in_words():
    say = {t: render for t, render in _SENTENCES.items()}
    assert say["trafficking.account_recorded"]({
        "recruitment_method": "job_offer", "exploitation_types": ["sexual_exploitation"],
        "route": [{"role": "recruitment", "country": "MD"},
                  {"role": "exploitation", "country": "RS"}],
        "duration_band": "one_to_six_months", "transport_means": ["bus"]}) == (
        "how trafficking occurred recorded: recruited by job offer; exploited: sexual "
        "exploitation; route MD → RS; for one to six months; by bus")
    assert say["trafficking.account_recorded"]({}) == (
        "how trafficking occurred recorded: every question skipped")
    assert say["reintegration.plan_agreed"]({"task_id": str(uuid.uuid4()), "lines": [
        {"service": "vocational_training", "provider_org": "ngo-md-skills"}]}) == (
        "reintegration plan agreed: vocational training (ngo-md-skills)")
    assert say["reintegration.service_delivery_reported"]({
        "provider_org": "ngo-md-skills", "service": "vocational_training",
        "status": "in_progress"}) == "ngo-md-skills reports vocational training: in progress"
    assert say["case.exported"]({"recipient_org": "mission-hq", "event_count": 12,
                                 "field_groups": []}) == (
        "case sent to mission-hq in a package (12 events, identity: none)")
    assert say["reintegration.contact_lost"]({"consecutive_misses": 3}) == (
        "contact lost after 3 missed check-ins: tracing begins")
