"""Codes of reintegration and follow-up (§5.5).

Codes only, never prose: a closure "other" reason is a code, wellbeing notes are vault
record ids.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""ISO 4217 currency code (``USD``, ``EUR``, ``MDL``)."""


class ServiceKind(StrEnum):
    """The programme's reintegration services (§5.5 and its annex counts)."""

    MEDICAL = "medical"
    REPRODUCTIVE_HEALTH = "reproductive_health"
    PSYCHOLOGICAL_SUPPORT = "psychological_support"
    LEGAL_COUNSELLING = "legal_counselling"
    SHELTER = "shelter"
    HOUSING = "housing"
    VOCATIONAL_TRAINING = "vocational_training"
    EDUCATION = "education"
    SELF_EMPLOYMENT = "self_employment"
    JOB_REFERRAL = "job_referral"
    MICRO_CREDIT = "micro_credit"
    FAMILY_SUPPORT = "family_support"
    CHILDCARE = "childcare"
    OTHER = "other"


class ServiceStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    DECLINED = "declined"  # her choice: recorded, never penalised
    DROPPED = "dropped"  # stopped part-way (by her or the provider)


TERMINAL_SERVICE_STATUSES = frozenset(
    {ServiceStatus.DELIVERED, ServiceStatus.DECLINED, ServiceStatus.DROPPED}
)


class ReintegrationTaskKind(StrEnum):
    NEEDS_ASSESSMENT = "needs_assessment"
    REINTEGRATION_PLAN = "reintegration_plan"
    GRANT_PAYMENT = "grant_payment"
    PAYMENT_REVIEW = "payment_review"
    CHECK_IN = "check_in"
    TRACING = "tracing"
    SUSTAINABILITY_ASSESSMENT = "sustainability_assessment"
    SERVICE_DELIVERY = "service_delivery"  # the provider of a plan line reports (decision 0064)


class InstalmentTrigger(StrEnum):
    """When an instalment of the reinstallation grant falls due."""

    BEFORE_DEPARTURE = "before_departure"
    AT_RECEPTION = "at_reception"
    AT_CHECK_IN = "at_check_in"  # with the check-in number (1-based)


class PaymentMethod(StrEnum):
    CASH = "cash"
    BANK_TRANSFER = "bank_transfer"
    MOBILE_MONEY = "mobile_money"
    VOUCHER = "voucher"
    PAID_BY_SENDING_MISSION = "paid_by_sending_mission"  # the pre-departure instalment


class PaymentFailure(StrEnum):
    TRANSFER_REJECTED = "transfer_rejected"
    ACCOUNT_UNAVAILABLE = "account_unavailable"
    RECIPIENT_NOT_MET = "recipient_not_met"
    FUNDS_UNAVAILABLE = "funds_unavailable"
    OTHER = "other"


class InstalmentStatus(StrEnum):
    WAITING = "waiting"  # its trigger (a check-in) has not happened yet
    PAYABLE = "payable"  # due: a payment task opens
    OPEN = "open"  # a payment task is open
    FAILED = "failed"  # the last attempt failed; a retry or a review follows
    RETRY_SCHEDULED = "retry_scheduled"
    IN_REVIEW = "in_review"  # failures reached the limit: escalated, a review task is open
    PAID = "paid"
    CANCELLED = "cancelled"


class InstalmentCancelReason(StrEnum):
    OPTED_OUT = "opted_out"
    CASE_CLOSED = "case_closed"
    REVIEW_DECIDED = "review_decided"


class PaymentReviewResolution(StrEnum):
    RETRY = "retry"
    CANCEL = "cancel"


class CheckinStatus(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    REACHED = "reached"
    NOT_REACHED = "not_reached"
    SKIPPED = "skipped"  # its date passed while contact was lost
    CANCELLED = "cancelled"  # the case closed before it


class ContactChannel(StrEnum):
    HOME_VISIT = "home_visit"
    OFFICE_VISIT = "office_visit"
    PHONE = "phone"
    VIA_PARTNER = "via_partner"


class NotReachedReason(StrEnum):
    NO_ANSWER = "no_answer"
    NOT_AT_ADDRESS = "not_at_address"
    CONTACT_REFUSED_BY_FAMILY = "contact_refused_by_family"
    APPOINTMENT_MISSED = "appointment_missed"
    OTHER = "other"


class RiskIndicator(StrEnum):
    """Indicators of re-trafficking or threats, recorded any time; each escalates."""

    RECRUITER_CONTACT = "recruiter_contact"
    THREATS_RECEIVED = "threats_received"
    DEBT_TO_TRAFFICKERS = "debt_to_traffickers"
    OFFER_TO_WORK_ABROAD = "offer_to_work_abroad"
    PLANS_IRREGULAR_MIGRATION = "plans_irregular_migration"
    VIOLENCE_AT_HOME = "violence_at_home"
    RE_TRAFFICKED_REPORTED = "re_trafficked_reported"


THREAT_INDICATORS = frozenset({RiskIndicator.THREATS_RECEIVED, RiskIndicator.VIOLENCE_AT_HOME})


class ReintegrationEscalationReason(StrEnum):
    RE_TRAFFICKING_INDICATOR = "re_trafficking_indicator"
    THREAT = "threat"
    PAYMENT_FAILURES_LIMIT = "payment_failures_limit"


class ReintegrationTaskCancelReason(StrEnum):
    OPTED_OUT = "opted_out"
    CASE_CLOSED = "case_closed"
    RESCHEDULED = "rescheduled"
    PLAN_CHANGED = "plan_changed"  # its service line ended or changed provider


class ClosureReason(StrEnum):
    """The fixed list of reasons a reintegration case closes with."""

    SUPPORT_PERIOD_ENDED = "support_period_ended"
    OPTED_OUT = "opted_out"
    MOVED_AWAY = "moved_away"
    NO_LONGER_REACHABLE = "no_longer_reachable"
    RE_TRAFFICKED = "re_trafficked"
    DIED = "died"
    OTHER = "other"  # with a code, never free text


class ReopenReason(StrEnum):
    CONTACT_RESTORED = "contact_restored"
    NEW_NEEDS = "new_needs"
    SAFETY_CONCERN = "safety_concern"
    PERSON_REQUESTED = "person_requested"
    CLOSED_IN_ERROR = "closed_in_error"


class OwedOnReopening(StrEnum):
    """The receiving mission's decision at reopening about what the closure cancelled
    (decision 0041): what she was still owed is owed again unless it decides otherwise."""

    RESTORED = "restored"  # the default: the grant instalments cancelled at closure are due
    KEPT_CANCELLED = "kept_cancelled"  # decided otherwise, with a reason code


class NotRestoredReason(StrEnum):
    """Why the mission decided at reopening not to restore cancelled instalments."""

    PERSON_DECLINED = "person_declined"  # her choice: she does not want the grant
    PAID_OUTSIDE_PROGRAMME = "paid_outside_programme"  # another programme paid it meanwhile
    REPLACED_BY_OTHER_SUPPORT = "replaced_by_other_support"  # in-kind support instead
    OTHER = "other"  # with the record id of the written decision (vault), never free text


class ReintegrationStage(StrEnum):
    """The ``HomewardReintegrationStage`` search attribute."""

    NEEDS_ASSESSMENT = "needs_assessment"
    PLANNING = "planning"
    FOLLOW_UP = "follow_up"
    CONTACT_LOST = "contact_lost"
    FINAL_ASSESSMENT = "final_assessment"
    CLOSED = "closed"


class Level(StrEnum):
    """A three-step answer to a sustainability indicator."""

    NONE = "none"
    PARTIAL = "partial"
    FULL = "full"
