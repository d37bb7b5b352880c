"""A case's events rendered for people: one sentence each, from codes and ids only.

Identity never appears: vault events say which fields were recorded or read and why,
never a value. What a viewer sees of the timeline is decided in ``api.access``.
"""

from __future__ import annotations

from typing import Any

from api.access import OPERATIONS_TIMELINE_EXCLUDES, RECEIVING_TIMELINE_EXCLUDES, View
from domain import catalogue
from domain import outside_events as out
from domain.journey import events as ev
from domain.reintegration import events as rev
from domain.trafficking import TraffickingAccountRecorded
from store.events import StoredEvent
from store.projections import catalogued


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


def _nth(what: str, number: Any) -> str:
    return f"{what} {number}" if number is not None else ""


def _plan(lines: list[dict[str, Any]]) -> str:
    return ", ".join(f"{_words(line['service'])} ({line.get('provider_org') or 'the mission'})"
                     for line in lines) or "no services"


def _trafficking_account(p: dict[str, Any]) -> str:
    parts = []
    if p.get("recruitment_method"):
        parts.append(f"recruited by {_words(p['recruitment_method'])}")
    if p.get("exploitation_types"):
        parts.append("exploited: " + ", ".join(map(_words, p["exploitation_types"])))
    if p.get("route"):
        parts.append("route " + " → ".join(stop["country"] for stop in p["route"]))
    if p.get("duration_band"):
        parts.append(f"for {_words(p['duration_band'])}")
    if p.get("transport_means"):
        parts.append("by " + ", ".join(map(_words, p["transport_means"])))
    return "how trafficking occurred recorded: " + ("; ".join(parts) or "every question skipped")


_SENTENCES: dict[str, Any] = {
    ev.ReferralRegistered.TYPE: lambda p: (
        f"referral registered ({_words(p['source'])}), first placement "
        f"{_words(p['first_placement'])}, risk {p['risk_level']}, age "
        f"{_AGE.get(p['age_category'], _words(p['age_category']))}; "
        f"{p['host_country']} → {p['destination_country']}"),
    ev.TaskOpened.TYPE: lambda p: f"task opened: {_words(p['kind'])} for {p['assignee_org']}, "
                             f"due {p['due_at']}",
    ev.TaskOverdueEscalated.TYPE: lambda p: f"task overdue and escalated: {_words(p['kind'])}",
    ev.TaskCancelled.TYPE: lambda p: f"task cancelled: {_words(p['kind'])} ({_words(p['reason'])})",
    ev.CaseEscalated.TYPE: lambda p: f"case escalated: {_words(p['reason'])}",
    ev.EscalationResolved.TYPE: lambda p: (f"escalation ({_words(p['reason'])}) resolved: "
                                           f"{_words(p['resolution'])}"),
    ev.HandoffCodeIssued.TYPE: lambda p: "one-time handoff code issued (only its hash "
                                               "is kept)",
    ev.ScreeningInterviewRecorded.TYPE: lambda p: (
        f"screening interview recorded in {p['interview_language']}"
        f"{' with an interpreter' if p['interpreter_used'] else ''}: "
        f"{_words(p['trafficking_status'])}"),
    ev.RepeatInterviewRequested.TYPE: lambda p: (
        f"second interview requested: {_words(p['reason'])}"),
    ev.OptionsDecisionRecorded.TYPE: lambda p: f"her decision: {_words(p['choice'])}",
    ev.ConsentRecorded.TYPE: lambda p: (f"informed consent signed (form {p['form_version']} in "
                                   f"{p['form_language']})"),
    ev.ConsentWithdrawn.TYPE: lambda p: _withdrawn(p),
    ev.AgeAssessed.TYPE: lambda p: (f"age assessed by {_words(p['assessed_by'])}: "
                                    f"{_AGE.get(p['result'], _words(p['result']))}"),
    rev.AgeAssessedInFollowUp.TYPE: lambda p: (f"age assessed in follow-up by "
                                             f"{_words(p['assessed_by'])}: "
                                             f"{_AGE.get(p['result'], _words(p['result']))}"),
    ev.DidNotArrive.TYPE: lambda p: (f"{_words(p['fact'])}, reported by the "
                                         f"{_words(p['reported_by'])}: tracing starts"),
    ev.TracingConcluded.TYPE: lambda p: (f"tracing: {_words(p['finding'])}"
                                    f"{', ' + _words(p['then']) if p.get('then') else ''}"),
    ev.SafePlaceConfirmed.TYPE: lambda p: (f"in a safe place ({_words(p['place'])}), "
                                              f"handed to {_words(p['handed_to'])}"),
    ev.GuardianAppointed.TYPE: lambda p: f"guardian appointed by {_words(p['authority'])}",
    ev.DocumentsRequested.TYPE: lambda p: f"travel documents requested (attempt {p['attempt']})",
    ev.DocumentsIssued.TYPE: lambda p: "travel documents issued",
    ev.DocumentsRefused.TYPE: lambda p: f"travel documents refused: {_words(p['reason'])}",
    ev.DocumentRequestWithdrawn.TYPE: lambda p: "travel document request withdrawn",
    ev.MedicalClearanceRecorded.TYPE: lambda p: ("medical clearance: fit to travel"
                                             if p["fit_to_travel"] else
                                             "medical clearance: not fit to travel yet"),
    ev.ProsecutorNotified.TYPE: lambda p: (f"prosecutor notified; testimony "
                                                f"{_words(p['testimony'])}"),
    ev.SecurityAssessed.TYPE: lambda p: (
        f"security assessed: risk {p['risk_level']}"
        f"{', police escort required' if p['police_escort_required'] else ''}"),
    ev.EscortAssigned.TYPE: lambda p: f"{p['kind']} escort assigned ({_words(p['scope'])})",
    ev.EscortReleased.TYPE: lambda p: f"escort released ({_words(p['reason'])})",
    ev.JourneyBooked.TYPE: lambda p: (f"journey booked ({p['route']}, attempt {p['attempt']}) via "
                                 f"{p['entry_point']}, departing {p['departure_at']}"),
    ev.JourneyLegFailed.TYPE: lambda p: f"journey leg failed: {_words(p['failure'])}",
    ev.RebookingScheduled.TYPE: lambda p: f"rebooking scheduled (attempt "
                                             f"{p['next_attempt']})",
    ev.BookingCancelled.TYPE: lambda p: "booking cancelled",
    ev.JourneyDeparted.TYPE: lambda p: "departed",
    ev.ArrivedAtBorder.TYPE: lambda p: f"arrived at the border ({p['entry_point']})",
    ev.BorderHoldStarted.TYPE: lambda p: f"held at the border ({p['entry_point']})",
    ev.BorderHoldLifted.TYPE: lambda p: f"border hold lifted after {p['held_seconds'] // 60} min",
    ev.BorderEntryRefused.TYPE: lambda p: f"entry refused at {p['entry_point']}",
    ev.BorderCleared.TYPE: lambda p: f"border cleared at {p['entry_point']}",
    ev.BorderCompanionAssigned.TYPE: lambda p: "border companion assigned",
    ev.BestInterestDetermined.TYPE: lambda p: f"best interest: {_words(p['determination'])}",
    ev.HandoffConfirmed.TYPE: lambda p: (f"handoff confirmed by "
                                              f"{_words(p['identification'])}"),
    ev.SafeArrivalConfirmed.TYPE: lambda p: "safe arrival confirmed",
    ev.PostArrivalAssistanceRecorded.TYPE: lambda p: ("assistance on arrival: " + ", ".join(
        _words(a) for a in p["provided"])),
    ev.HandedOverToGuardian.TYPE: lambda p: f"handed over to {_words(p['handed_to'])}",
    out.IdentityRecorded.TYPE: lambda p: ("identity recorded: " + ", ".join(
        [_words(f) for f in p.get("fields", [])]
        + [f"note ({_words(n['kind'])})" for n in p.get("notes", [])])),
    out.IdentityRead.TYPE: lambda p: (f"identity read for {_words(p['purpose'])}: "
                                + ", ".join(_words(g) for g in p.get("field_groups", []))),
    out.IdentityErased.TYPE: lambda p: f"identity erased ({_words(p['reason'])})",
    out.SharingGranted.TYPE: lambda p: f"identity shared with {p['org_id']} on recorded consent",
    out.SharingRevoked.TYPE: lambda p: (f"sharing with {p.get('org_id') or 'every organisation'} "
                                  f"revoked ({_words(p['reason'])})"),
    out.OperatorRetryRequested.TYPE: lambda p: f"operator asked to retry: {_words(p['step'])}",
    out.OperatorTaskReassigned.TYPE: lambda p: (
        f"operator reassigned the {_words(p['kind'])} task within {p['org']} to "
        f"{p.get('to_user') or 'the whole organisation'} ({_words(p['reason'])})"),
    out.OperatorEscalated.TYPE: lambda p: f"operator escalated the case: {_words(p['reason'])}",
    ev.TransferRequested.TYPE: lambda p: (
        f"{_words(p['role'])} role offered to {p['to_org']} in place of {p['from_org']} "
        f"({_words(p['reason'])})"),
    ev.TransferAccepted.TYPE: lambda p: (
        f"{p['to_org']} accepted the {_words(p['role'])} role from {p['from_org']}"
        f" ({len(p.get('reassigned_tasks') or ())} open tasks moved)"),
    ev.TransferDeclined.TYPE: lambda p: (
        f"{p['to_org']} declined the {_words(p['role'])} role ({_words(p['reason'])})"),
    out.CaseExported.TYPE: lambda p: (
        f"case sent to {p['recipient_org']} in a package ({p['event_count']} events, "
        f"identity: {', '.join(map(_words, p.get('field_groups') or ())) or 'none'})"),
    out.CaseImported.TYPE: lambda p: (
        f"case received from {p['source_org']} for {p['recipient_org']} in a package "
        f"({p['event_count']} events, signed by key {p['sender_key_fingerprint']})"),
    out.CaseLinked.TYPE: lambda p: (
        f"linked to case {p['linked_case_id']}: the same person, assisted before "
        f"({_words(p['basis'])})"),
    TraffickingAccountRecorded.TYPE: _trafficking_account,
    # follow-up
    rev.ReintegrationStarted.TYPE: lambda p: (
        f"follow-up started: {len(p['check_ins'])} check-ins, "
        f"{len(p['instalments'])} grant instalments planned"),
    rev.ReintegrationTaskOpened.TYPE: lambda p: (
        f"follow-up task opened: {_words(p['kind'])}"
        f"{_nth(' check-in', p.get('check_in'))}{_nth(' instalment', p.get('instalment'))} "
        f"for {p['assignee_org']}, due {p['due_at']}"),
    rev.ReintegrationTaskOverdue.TYPE: lambda p: f"follow-up task overdue: {_words(p['kind'])}",
    rev.ReintegrationTaskCancelled.TYPE: lambda p: (
        f"follow-up task cancelled: {_words(p['kind'])} ({_words(p['reason'])})"),
    rev.NeedsAssessed.TYPE: lambda p: ("needs assessed: "
                                       + (", ".join(map(_words, p['needs'])) or "none")),
    rev.PlanAgreed.TYPE: lambda p: f"reintegration plan agreed: {_plan(p['lines'])}",
    rev.PlanChanged.TYPE: lambda p: f"reintegration plan changed: {_plan(p['lines'])}",
    rev.PlanDeclined.TYPE: lambda p: "she declined the reintegration plan",
    rev.ServiceDeliveryReported.TYPE: lambda p: (
        f"{p['provider_org']} reports {_words(p['service'])}: {_words(p['status'])}"),
    rev.CheckInReached.TYPE: lambda p: (
        f"check-in {p['check_in']} reached by {_words(p['channel'])}"),
    rev.CheckInNotReached.TYPE: lambda p: (
        f"check-in {p['check_in']} not reached: {_words(p['reason'])}"),
    rev.CheckInScheduleChanged.TYPE: lambda p: (
        f"check-in schedule changed: {len(p['check_ins'])} check-ins"),
    rev.ContactLost.TYPE: lambda p: (
        f"contact lost after {p['consecutive_misses']} missed check-ins: tracing begins"),
    rev.ContactRestored.TYPE: lambda p: "contact restored",
    rev.TracingCompleted.TYPE: lambda p: (
        "tracing: she was located" if p['located'] else "tracing: she was not located"),
    rev.RiskRecorded.TYPE: lambda p: f"risk recorded: {_words(p['indicator'])}",
    rev.ReintegrationEscalated.TYPE: lambda p: (
        f"follow-up escalated: {_words(p['reason'])}"
        f"{_nth(' instalment', p.get('instalment'))}"),
    rev.SustainabilityAssessed.TYPE: lambda p: (
        f"sustainability assessed: economic {p['economic']:.2f}, social "
        f"{p['social']:.2f}, psychosocial {p['psychosocial']:.2f}"),
    rev.GrantInstalmentPaid.TYPE: lambda p: (
        f"grant instalment {p['instalment']} paid by {_words(p['method'])} "
        f"(attempt {p['attempt']})"),
    rev.GrantPaymentFailed.TYPE: lambda p: (
        f"grant instalment {p['instalment']} payment failed: {_words(p['failure'])} "
        f"(attempt {p['attempt']})"),
    rev.PaymentRetryScheduled.TYPE: lambda p: (
        f"grant instalment {p['instalment']}: attempt {p['next_attempt']} not before "
        f"{p['not_before']}"),
    rev.PaymentReviewed.TYPE: lambda p: (
        f"grant instalment {p['instalment']} reviewed: {_words(p['resolution'])}"),
    rev.GrantInstalmentCancelled.TYPE: lambda p: (
        f"grant instalment {p['instalment']} cancelled: {_words(p['reason'])}"),
    rev.OptedOut.TYPE: lambda p: "she opted out of the follow-up",
    rev.ReintegrationClosed.TYPE: lambda p: f"follow-up closed: {_words(p['reason'])}",
    rev.ReintegrationReopened.TYPE: lambda p: f"follow-up reopened: {_words(p['reason'])}",
}


def sentence(event: StoredEvent) -> str:
    t = event.event_type
    if t in catalogue.OUTCOME_TYPES:
        return f"case closed: {_words(catalogue.outcome_code(t))}"
    render = _SENTENCES.get(t)
    if render is None:
        return _words(t)
    try:
        return render(event.payload)
    except (KeyError, TypeError):  # an old or unexpected payload: say what happened
        return _words(t)


def visible(event: StoredEvent, view: View, org: str | None = None) -> bool:
    """Whether ``view`` shows the event; a type the catalogue does not hold is skipped
    (``catalogued``) rather than shown by its name. ``View.AUTHORED`` (an organisation
    that handed its role on, decision 0068) shows what ``org`` wrote, nothing else."""
    if not catalogued(event, "timeline"):
        return False
    if view is View.AUTHORED:
        return org is not None and event.author_org == org
    if view is View.FULL:
        return True
    if view is View.RECEIVING:
        return event.event_type not in RECEIVING_TIMELINE_EXCLUDES
    if view is View.OPERATIONS:
        return event.event_type not in OPERATIONS_TIMELINE_EXCLUDES
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
