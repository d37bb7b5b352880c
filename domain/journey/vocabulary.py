"""The journey's controlled vocabularies and constrained identifier types.

Values are codes, never free text: ISO 639 languages, HTCDS picklist terms where the
Human Trafficking Case Data Standard has one, booking references and entry points whose
patterns cannot hold a name. The types both aggregates use (countries, organisation,
record and actor ids, roles, age bands) are in ``domain.kernel``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints

from domain.kernel import Role

LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
"""ISO 639-1 (``ro``) or ISO 639-2/3 (``rum``, ``rom``) language code, lower case."""


BookingRef = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9-]{4,32}$")]
"""Carrier / provider booking reference (PNR-like), never a passenger name."""

EntryPoint = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""IATA code of the airport (or UN/LOCODE-like 3-letter code of the crossing) of entry."""

HandoffCode = Annotated[str, StringConstraints(pattern=r"^[A-HJ-NP-Z2-9]{8}$")]
"""One-time handoff code: 8 characters, no look-alikes (no I, O, 0, 1)."""

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


FormVersion = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.-]{1,16}$")]


class ReferralSource(StrEnum):
    """Who referred the person (§3.2.4, §3.3.3)."""

    POLICE_RAID = "police_raid"
    BORDER_SERVICE = "border_service"
    EMBASSY = "embassy"
    SELF_REFERRAL = "self_referral"
    NGO = "ngo"
    HOTLINE = "hotline"


class Sex(StrEnum):
    """A non-identifying referral fact, for statistics by sex (issue 15). HTCDS
    ``prs_Gender`` records gender expression; the programme's figures count sex."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    NOT_RECORDED = "not_recorded"


class Placement(StrEnum):
    """First placement after referral (§4.3.3 Box 5–6)."""

    SAFE_HOUSE = "safe_house"
    SHELTER_HIGH_RISK = "shelter_high_risk"
    SHELTER_LOW_RISK = "shelter_low_risk"


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class TraffickingStatus(StrEnum):
    """HTCDS vic_TraffickingStatus. A victim is a victim whether or not she returns."""

    POSSIBLE = "PossibleVictimOfTrafficking"
    ACTUAL = "ActualVictimOfTrafficking"
    NOT_A_VICTIM = "NotAVictimOfTrafficking"


class RepeatInterviewReason(StrEnum):
    """The only reasons a second full screening interview may be held (rec. 16–17)."""

    FIRST_INTERVIEW_INCOMPLETE = "first_interview_incomplete"
    NEW_INFORMATION = "new_information"
    INTERPRETER_UNAVAILABLE_AT_FIRST = "interpreter_unavailable_at_first"
    PERSON_REQUESTED = "person_requested"


class ReturnOption(StrEnum):
    """What the person chose after counselling on her options (§5.2.1)."""

    RETURN = "return"
    REFLECTION_PERIOD = "reflection_period"
    TEMPORARY_RESIDENCE = "temporary_residence"
    RESETTLEMENT_REFERRAL = "resettlement_referral"
    STAY_IN_SHELTER = "stay_in_shelter"
    DECLINE_ASSISTANCE = "decline_assistance"
    RETURN_BY_OTHER_MEANS = "return_by_other_means"


class ConsentChange(StrEnum):
    WITHDRAWN = "withdrawn"
    DEFERRED = "deferred"  # "Voluntary Deferral of Repatriation Assistance"


class GuardianAuthority(StrEnum):
    COURT = "court"
    SOCIAL_WELFARE_CENTRE = "social_welfare_centre"
    CHILD_PROTECTION_AUTHORITY = "child_protection_authority"


class ChildPresence(StrEnum):
    """Who sat with a child at her screening interview (none may be absent)."""

    GUARDIAN = "guardian"  # her appointed legal guardian
    CHILD_PROTECTION_OFFICER = "child_protection_officer"  # before a guardian is appointed


class DecidedBy(StrEnum):
    """Who took her options decision or gave her consent."""

    PERSON = "person"  # an adult, herself
    CHILD_WITH_GUARDIAN = "child_with_guardian"  # a child, together with her legal guardian


class Determination(StrEnum):
    RETURN_IN_BEST_INTEREST = "return_in_best_interest"
    RETURN_NOT_IN_BEST_INTEREST = "return_not_in_best_interest"


class DocumentRefusalReason(StrEnum):
    IDENTITY_NOT_CONFIRMED = "identity_not_confirmed"
    PHOTOS_REJECTED = "photos_rejected"
    CONSULATE_UNREACHABLE = "consulate_unreachable"
    EXIT_FORMALITIES_INCOMPLETE = "exit_formalities_incomplete"
    OTHER_ADMINISTRATIVE = "other_administrative"


class TestimonyArrangement(StrEnum):
    """How the witness's testimony is safeguarded before she leaves (§5.3.5)."""

    __test__ = False  # not a pytest class

    TESTIMONY_GIVEN = "testimony_given"
    REMOTE_TESTIMONY_ARRANGED = "remote_testimony_arranged"
    PERSON_DECIDED_TO_LEAVE = "person_decided_to_leave"


class EscortKind(StrEnum):
    STAFF = "staff"
    POLICE = "police"


class EscortScope(StrEnum):
    TO_HANDOFF = "to_handoff"  # until the receiving mission takes over at the border
    END_TO_END = "end_to_end"  # minors: to the guardian / family at the final destination


class EscortReleaseReason(StrEnum):
    HANDOFF_COMPLETE = "handoff_complete"
    GUARDIAN_HANDOVER_COMPLETE = "guardian_handover_complete"
    SAFE_PLACE_REACHED = "safe_place_reached"  # after departure: handed over in safety
    # Before departure only: she is still in the host country, in her shelter.
    CONSENT_WITHDRAWN = "consent_withdrawn"
    RETURN_STOPPED = "return_stopped"
    AGE_REASSESSED = "age_reassessed"  # a child's journey is re-planned with her escort
    PERSON_MISSING = "person_missing"  # tracing concluded she is missing: nobody to escort


class TravelAdapter(StrEnum):
    SIMULATED = "simulated"
    MANUAL = "manual"


class RouteKind(StrEnum):
    DIRECT = "direct"
    ALTERNATIVE = "alternative"  # another airport / crossing after a refusal at the border


class LegFailure(StrEnum):
    CANCELLED_FLIGHT = "cancelled_flight"
    DENIED_BOARDING = "denied_boarding"
    MISSED_CONNECTION = "missed_connection"


class FactSource(StrEnum):
    PROVIDER_FEED = "provider_feed"
    FIELD_REPORT = "field_report"  # reported by the escort or a mission


class RoadFact(StrEnum):
    """What can happen on the road, reported as it happens (``report_fact`` Update)."""

    DEPARTED = "departed"
    LEG_FAILED = "leg_failed"
    ARRIVED_AT_BORDER = "arrived_at_border"
    BORDER_HOLD_STARTED = "border_hold_started"
    BORDER_HOLD_LIFTED = "border_hold_lifted"
    BORDER_CLEARED = "border_cleared"
    ENTRY_REFUSED = "entry_refused"
    # She did not arrive (§5.5.4): each opens an urgent tracing task.
    DID_NOT_BOARD = "did_not_board"
    MISSING_IN_TRANSIT = "missing_in_transit"
    NOT_MET_AT_ARRIVAL = "not_met_at_arrival"


DID_NOT_ARRIVE = frozenset({RoadFact.DID_NOT_BOARD, RoadFact.MISSING_IN_TRANSIT,
                            RoadFact.NOT_MET_AT_ARRIVAL})


class TracingFinding(StrEnum):
    FOUND_SAFE = "found_safe"
    MISSING = "missing"


class TracingNext(StrEnum):
    """With ``found_safe``: go on from where she is, or cancel what is booked and re-plan."""

    CONTINUE_JOURNEY = "continue_journey"
    REPLAN = "replan"


class SafePlace(StrEnum):
    """Where she is brought when the return stops after departure; the address, if any,
    is in the vault."""

    RETURN_TO_SHELTER = "return_to_shelter"
    SAFE_ADDRESS_OF_HER_CHOICE = "safe_address_of_her_choice"
    PARTNER_NGO_CARE = "partner_ngo_care"


class SafeHandover(StrEnum):
    """Into whose care the escort handed her at the safe place."""

    SHELTER_STAFF = "shelter_staff"
    PARTNER_NGO = "partner_ngo"
    LEGAL_GUARDIAN = "legal_guardian"
    CHILD_PROTECTION_AUTHORITY = "child_protection_authority"
    NAMED_AUTHORITY = "named_authority"  # police or another authority, named in the record
    HERSELF = "herself"  # an adult who chose her own safe address


MINOR_SAFE_HANDOVERS = frozenset({SafeHandover.LEGAL_GUARDIAN,
                                  SafeHandover.CHILD_PROTECTION_AUTHORITY})
"""A child is handed only to her guardian or a child protection authority."""

POLICE_ESCORT_HANDOVERS = MINOR_SAFE_HANDOVERS | {SafeHandover.NAMED_AUTHORITY}
"""A police escort hands her over only to a guardian or a named authority."""


class IdentificationMethod(StrEnum):
    """How the receiving officer identifies the person at the handoff.

    Only the first two are discreet. The others are listed so that an attempt to record
    them is refused with a reason, not a schema error (§6.5.2, rec. 11: the branded bag).
    """

    HANDOFF_CODE = "handoff_code"
    PHOTO_MATCH = "photo_match"
    BRANDED_ITEM = "branded_item"
    VISIBLE_MARKER = "visible_marker"
    NAME_CALLED_ALOUD = "name_called_aloud"
    NAME_SIGN = "name_sign"


class PostArrivalAssistance(StrEnum):
    """§5.5.1: what was provided on arrival."""

    MEDICAL = "medical"
    OVERNIGHT_ACCOMMODATION = "overnight_accommodation"
    CUSTOMS_BORDER_FORMALITIES = "customs_border_formalities"
    ONWARD_TRANSFER = "onward_transfer"
    COUNSELLING_NEXT_DAY = "counselling_next_day"
    NEEDS_ASSESSMENT = "needs_assessment"


class HandoverTo(StrEnum):
    LEGAL_GUARDIAN = "legal_guardian"
    FAMILY = "family"


class EscalationReason(StrEnum):
    REBOOKING_LIMIT_REACHED = "rebooking_limit_reached"
    DOCUMENT_REFUSALS_LIMIT_REACHED = "document_refusals_limit_reached"
    BORDER_HOLD_EXCEEDED = "border_hold_exceeded"
    PERSON_MISSING = "person_missing"


class EscalationResolution(StrEnum):
    RETRY = "retry"
    STOP_RETURN = "stop_return"


class TaskCancelReason(StrEnum):
    CONSENT_WITHDRAWN = "consent_withdrawn"
    HOLD_ENDED = "hold_ended"
    RETURN_STOPPED = "return_stopped"
    AGE_REASSESSED = "age_reassessed"  # an assessment resolved a disputed age as adult
    SAFE_PLACE_REACHED = "safe_place_reached"
    PERSON_MISSING = "person_missing"
    CASE_CLOSED = "case_closed"  # the case ended with an outcome that needs the task no more


class TaskKind(StrEnum):
    SCREENING_INTERVIEW = "screening_interview"
    OPTIONS_DECISION = "options_decision"
    INFORMED_CONSENT = "informed_consent"
    GUARDIAN_APPOINTMENT = "guardian_appointment"
    BEST_INTEREST_DETERMINATION = "best_interest_determination"
    TRAVEL_DOCUMENTS = "travel_documents"
    MEDICAL_CLEARANCE = "medical_clearance"
    PROSECUTOR_NOTICE = "prosecutor_notice"
    SECURITY_ASSESSMENT = "security_assessment"
    ENTER_BOOKING = "enter_booking"
    ESCALATION_REVIEW = "escalation_review"
    BORDER_COMPANION = "border_companion"
    RECEPTION_HANDOFF = "reception_handoff"
    GUARDIAN_HANDOVER = "guardian_handover"
    SAFE_PLACE = "safe_place"  # the return stopped after departure: bring her to safety
    TRACING = "tracing"  # she did not arrive: find her
    TRANSFER_DECISION = "transfer_decision"  # the organisation a role is offered to answers


TASK_ASSIGNEE_ROLE: dict[TaskKind, Role] = {
    TaskKind.SCREENING_INTERVIEW: Role.SENDING_MISSION,
    TaskKind.OPTIONS_DECISION: Role.SENDING_MISSION,
    TaskKind.INFORMED_CONSENT: Role.SENDING_MISSION,
    TaskKind.GUARDIAN_APPOINTMENT: Role.SENDING_MISSION,
    TaskKind.BEST_INTEREST_DETERMINATION: Role.RECEIVING_MISSION,
    TaskKind.TRAVEL_DOCUMENTS: Role.SENDING_MISSION,
    TaskKind.MEDICAL_CLEARANCE: Role.SENDING_MISSION,
    TaskKind.PROSECUTOR_NOTICE: Role.SENDING_MISSION,
    TaskKind.SECURITY_ASSESSMENT: Role.SENDING_MISSION,
    TaskKind.ENTER_BOOKING: Role.SENDING_MISSION,
    TaskKind.ESCALATION_REVIEW: Role.SENDING_MISSION,
    TaskKind.BORDER_COMPANION: Role.PARTNER,
    TaskKind.RECEPTION_HANDOFF: Role.RECEIVING_MISSION,
    TaskKind.GUARDIAN_HANDOVER: Role.RECEIVING_MISSION,
    TaskKind.SAFE_PLACE: Role.SENDING_MISSION,  # the receiving mission once she is across
    TaskKind.TRACING: Role.RECEIVING_MISSION,
    # Opened by a transfer for the organisation it names, in the role it offers
    # (domain.journey.transfers); never through OpenTask.
    TaskKind.TRANSFER_DECISION: Role.RECEIVING_MISSION,
}


# --- transfers between organisations (decision 0068) ------------------------------------


class TransferredRole(StrEnum):
    """The parts of a case the sending mission may hand to another organisation."""

    RECEIVING_MISSION = "receiving_mission"
    BORDER_PARTNER = "border_partner"

    @property
    def role(self) -> Role:
        return Role.RECEIVING_MISSION if self is TransferredRole.RECEIVING_MISSION \
            else Role.PARTNER


class TransferReason(StrEnum):
    """Why the sending mission hands a role on; details, if any, in a vault note."""

    DESTINATION_CHANGED = "destination_changed"  # she will live in another region
    CAPACITY = "capacity"  # the holder cannot take the case on
    SPECIALISED_SERVICE = "specialised_service"  # she needs what the other one offers
    SAFETY_CONCERN = "safety_concern"  # a risk near the holder (a trafficker's reach)
    CONFLICT_OF_INTEREST = "conflict_of_interest"
    HER_REQUEST = "her_request"
    ORGANISATION_UNAVAILABLE = "organisation_unavailable"  # closed, suspended, unreachable


class TransferDeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    OUTSIDE_AREA = "outside_area"
    SERVICE_NOT_OFFERED = "service_not_offered"
    CONFLICT_OF_INTEREST = "conflict_of_interest"
    SAFETY_CONCERN = "safety_concern"


class Stage(StrEnum):
    """Where a case is; the ``HomewardStage`` search attribute."""

    REFERRAL = "referral"
    SCREENING = "screening"
    OPTIONS = "options"
    CONSENT = "consent"
    MINOR_SAFEGUARDS = "minor_safeguards"
    DOCUMENTS = "documents"
    CLEARANCES = "clearances"
    BOOKING = "booking"
    AWAITING_DEPARTURE = "awaiting_departure"
    IN_TRANSIT = "in_transit"
    BORDER = "border"
    RECEPTION = "reception"
    GUARDIAN_HANDOVER = "guardian_handover"
    TRACING = "tracing"  # she did not arrive and is being traced
    TO_SAFETY = "to_safety"  # the return stopped after departure; a safe place is arranged
    COMPENSATING = "compensating"
    CLOSED = "closed"


class Outcome(StrEnum):
    RETURNED = "returned"
    REFLECTION_PERIOD = "reflection_period"
    TEMPORARY_RESIDENCE = "temporary_residence"
    RESETTLEMENT_REFERRAL = "resettlement_referral"
    STAYING_IN_SHELTER = "staying_in_shelter"
    ASSISTANCE_DECLINED = "assistance_declined"
    RETURNED_BY_OTHER_MEANS = "returned_by_other_means"
    NOT_IDENTIFIED_AS_VICTIM = "not_identified_as_victim"
    RETURN_NOT_IN_BEST_INTEREST = "return_not_in_best_interest"
    ALTERNATIVE_PATHWAY = "alternative_pathway"
    RETURN_STOPPED = "return_stopped"
    MISSING = "missing"  # she did not arrive and tracing did not find her
