"""A case's events rendered for people: one sentence each, from codes and ids only.

Identity never appears: vault events say which fields were recorded or read and why,
never a value. What a viewer sees of the timeline is decided in ``api.access``.
"""

from __future__ import annotations

from typing import Any

from api.access import RECEIVING_TIMELINE_EXCLUDES, View
from store.events import StoredEvent


def _words(code: Any) -> str:
    return str(code).replace("_", " ")


_AGE = {"under_12": "under 12", "12_17": "12–17", "18_24": "18–24", "25_34": "25–34",
        "35_plus": "35 or more", "unknown": "unknown (treated as a minor)",
        "disputed": "disputed (treated as a minor)"}

def _withdrawn(p: dict[str, Any]) -> str:
    text = f"consent {p['change']}"
    if p.get("after_departure"):
        text += " after she had left: she is brought to a safe place first"
    if p.get("relayed_by") == "receiving_mission":
        text += " (relayed by the receiving mission)"
    return text


_SENTENCES: dict[str, Any] = {
    "case.referral_registered": lambda p: (
        f"referral registered ({_words(p['source'])}), first placement "
        f"{_words(p['first_placement'])}, risk {p['risk_level']}, age "
        f"{_AGE.get(p['age_category'], _words(p['age_category']))}; "
        f"{p['host_country']} → {p['destination_country']}"),
    "task.opened": lambda p: f"task opened: {_words(p['kind'])} for {p['assignee_org']}, "
                             f"due {p['due_at']}",
    "task.overdue_escalated": lambda p: f"task overdue and escalated: {_words(p['kind'])}",
    "task.cancelled": lambda p: f"task cancelled: {_words(p['kind'])} ({_words(p['reason'])})",
    "case.escalated": lambda p: f"case escalated: {_words(p['reason'])}",
    "case.escalation_resolved": lambda p: (f"escalation ({_words(p['reason'])}) resolved: "
                                           f"{_words(p['resolution'])}"),
    "reception.handoff_code_issued": lambda p: "one-time handoff code issued (only its hash "
                                               "is kept)",
    "screening.interview_recorded": lambda p: (
        f"screening interview recorded in {p['interview_language']}"
        f"{' with an interpreter' if p['interpreter_used'] else ''}: "
        f"{_words(p['trafficking_status'])}"),
    "screening.repeat_interview_requested": lambda p: (
        f"second interview requested: {_words(p['reason'])}"),
    "options.decision_recorded": lambda p: f"her decision: {_words(p['choice'])}",
    "consent.recorded": lambda p: (f"informed consent signed (form {p['form_version']} in "
                                   f"{p['form_language']})"),
    "consent.withdrawn": lambda p: _withdrawn(p),
    "case.age_assessed": lambda p: (f"age assessed by {_words(p['assessed_by'])}: "
                                    f"{_AGE.get(p['result'], _words(p['result']))}"),
    "reintegration.age_assessed": lambda p: (f"age assessed in follow-up by "
                                             f"{_words(p['assessed_by'])}: "
                                             f"{_AGE.get(p['result'], _words(p['result']))}"),
    "journey.did_not_arrive": lambda p: (f"{_words(p['fact'])}, reported by the "
                                         f"{_words(p['reported_by'])}: tracing starts"),
    "tracing.concluded": lambda p: (f"tracing: {_words(p['finding'])}"
                                    f"{', ' + _words(p['then']) if p.get('then') else ''}"),
    "safety.safe_place_confirmed": lambda p: (f"in a safe place ({_words(p['place'])}), "
                                              f"handed to {_words(p['handed_to'])}"),
    "minor.guardian_appointed": lambda p: f"guardian appointed by {_words(p['authority'])}",
    "documents.requested": lambda p: f"travel documents requested (attempt {p['attempt']})",
    "documents.issued": lambda p: "travel documents issued",
    "documents.refused": lambda p: f"travel documents refused: {_words(p['reason'])}",
    "documents.request_withdrawn": lambda p: "travel document request withdrawn",
    "clearance.medical_recorded": lambda p: ("medical clearance: fit to travel"
                                             if p["fit_to_travel"] else
                                             "medical clearance: not fit to travel yet"),
    "clearance.prosecutor_notified": lambda p: (f"prosecutor notified; testimony "
                                                f"{_words(p['testimony'])}"),
    "clearance.security_assessed": lambda p: (
        f"security assessed: risk {p['risk_level']}"
        f"{', police escort required' if p['police_escort_required'] else ''}"),
    "escort.assigned": lambda p: f"{p['kind']} escort assigned ({_words(p['scope'])})",
    "escort.released": lambda p: f"escort released ({_words(p['reason'])})",
    "journey.booked": lambda p: (f"journey booked ({p['route']}, attempt {p['attempt']}) via "
                                 f"{p['entry_point']}, departing {p['departure_at']}"),
    "journey.leg_failed": lambda p: f"journey leg failed: {_words(p['failure'])}",
    "journey.rebooking_scheduled": lambda p: f"rebooking scheduled (attempt "
                                             f"{p['next_attempt']})",
    "journey.booking_cancelled": lambda p: "booking cancelled",
    "journey.departed": lambda p: "departed",
    "journey.arrived_at_border": lambda p: f"arrived at the border ({p['entry_point']})",
    "border.hold_started": lambda p: f"held at the border ({p['entry_point']})",
    "border.hold_lifted": lambda p: f"border hold lifted after {p['held_seconds'] // 60} min",
    "border.entry_refused": lambda p: f"entry refused at {p['entry_point']}",
    "border.cleared": lambda p: f"border cleared at {p['entry_point']}",
    "border.companion_assigned": lambda p: "border companion assigned",
    "minor.best_interest_determined": lambda p: f"best interest: {_words(p['determination'])}",
    "reception.handoff_confirmed": lambda p: (f"handoff confirmed by "
                                              f"{_words(p['identification'])}"),
    "reception.safe_arrival_confirmed": lambda p: "safe arrival confirmed",
    "reception.assistance_recorded": lambda p: ("assistance on arrival: " + ", ".join(
        _words(a) for a in p["provided"])),
    "minor.handed_over_to_guardian": lambda p: f"handed over to {_words(p['handed_to'])}",
    "identity.recorded": lambda p: ("identity recorded: " + ", ".join(
        [_words(f) for f in p.get("fields", [])]
        + [f"note ({_words(n['kind'])})" for n in p.get("notes", [])])),
    "identity.read": lambda p: (f"identity read for {_words(p['purpose'])}: "
                                + ", ".join(_words(g) for g in p.get("field_groups", []))),
    "identity.erased": lambda p: f"identity erased ({_words(p['reason'])})",
    "sharing.granted": lambda p: f"identity shared with {p['org_id']} on recorded consent",
    "sharing.revoked": lambda p: (f"sharing with {p.get('org_id') or 'every organisation'} "
                                  f"revoked ({_words(p['reason'])})"),
    "operator.retry_requested": lambda p: f"operator asked to retry: {_words(p['step'])}",
    "operator.task_reassigned": lambda p: (
        f"operator reassigned the {_words(p['kind'])} task within {p['org']} to "
        f"{p.get('to_user') or 'the whole organisation'} ({_words(p['reason'])})"),
    "operator.escalated": lambda p: f"operator escalated the case: {_words(p['reason'])}",
}


def sentence(event: StoredEvent) -> str:
    t = event.event_type
    if t.startswith("outcome."):
        return f"case closed: {_words(t.removeprefix('outcome.'))}"
    render = _SENTENCES.get(t)
    if render is None:
        return _words(t)
    try:
        return render(event.payload)
    except (KeyError, TypeError):  # an old or unexpected payload: say what happened
        return _words(t)


def visible(event: StoredEvent, view: View) -> bool:
    if view is View.FULL:
        return True
    if view is View.RECEIVING:
        return event.event_type not in RECEIVING_TIMELINE_EXCLUDES
    if view is View.OPERATIONS:
        return not event.event_type.startswith(("identity.", "sharing."))
    return False


def render(event: StoredEvent, view: View) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "version": event.version,
        "occurred_at": event.occurred_at,
        "type": event.event_type,
        "author_org": event.author_org,
    }
    if view is View.OPERATIONS:
        return entry  # what and when, not the contents
    entry["actor"] = event.actor
    entry["text"] = sentence(event)
    return entry
