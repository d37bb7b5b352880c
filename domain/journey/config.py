"""Every duration and limit of the journey, with the field's defaults.

Passed in the workflow input, so a demo can run a whole journey in seconds and a test
can state the numbers it relies on.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from domain.journey.vocabulary import FormVersion, TaskKind
from domain.kernel import CountryCode

DEFAULT_TASK_DUE: dict[TaskKind, timedelta] = {
    TaskKind.SCREENING_INTERVIEW: timedelta(days=2),
    TaskKind.OPTIONS_DECISION: timedelta(days=7),
    TaskKind.INFORMED_CONSENT: timedelta(days=3),
    TaskKind.GUARDIAN_APPOINTMENT: timedelta(days=7),
    TaskKind.BEST_INTEREST_DETERMINATION: timedelta(days=21),
    TaskKind.TRAVEL_DOCUMENTS: timedelta(days=10),
    TaskKind.MEDICAL_CLEARANCE: timedelta(days=3),
    TaskKind.PROSECUTOR_NOTICE: timedelta(days=2),
    TaskKind.SECURITY_ASSESSMENT: timedelta(days=2),
    TaskKind.ENTER_BOOKING: timedelta(days=2),
    TaskKind.ESCALATION_REVIEW: timedelta(days=1),
    TaskKind.BORDER_COMPANION: timedelta(hours=2),
    TaskKind.RECEPTION_HANDOFF: timedelta(hours=12),
    TaskKind.GUARDIAN_HANDOVER: timedelta(days=2),
    TaskKind.SAFE_PLACE: timedelta(hours=12),  # later: escalated as overdue
    TaskKind.TRACING: timedelta(hours=4),  # urgent: she may be in a trafficker's hands
    TaskKind.TRANSFER_DECISION: timedelta(days=3),
}


class JourneyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    border_companion_after: timedelta = Field(
        default=timedelta(hours=6),
        description="A border hold this long opens a companion task for a partner NGO.",
    )
    border_escalation_after: timedelta = Field(
        default=timedelta(hours=24), description="A border hold this long escalates the case."
    )
    witness_notice: timedelta = Field(
        default=timedelta(days=10),
        description="Prosecutor notice before a witness departs (police asked 10 days, §4.3.3).",
    )
    max_rebook_attempts: int = Field(default=3, ge=1, le=20)
    max_document_refusals: int = Field(default=3, ge=1, le=20)
    rebook_backoff: timedelta = Field(default=timedelta(hours=2))
    rebook_backoff_max: timedelta = Field(default=timedelta(hours=24))
    departure_lead: timedelta = Field(
        default=timedelta(days=2), description="Earliest departure after a booking is made."
    )
    medical_reassessment_after: timedelta = Field(default=timedelta(days=2))
    task_due: dict[TaskKind, timedelta] = Field(default_factory=lambda: dict(DEFAULT_TASK_DUE))
    reflection_minimum_days: dict[CountryCode, int] = Field(
        default_factory=lambda: {"RS": 28},
        description="Minimum reflection period by host country (Serbia: 4 weeks humanitarian "
        "visa); other countries use default_reflection_minimum_days.",
    )
    default_reflection_minimum_days: int = Field(
        default=90, ge=1, description="Tirana Agreement: at least 3 months."
    )
    accepted_consent_form_versions: tuple[FormVersion, ...] = Field(default=("2026-1",),
                                                                     min_length=1)

    def due(self, kind: TaskKind) -> timedelta:
        return self.task_due.get(kind, DEFAULT_TASK_DUE[kind])

    def rebook_delay(self, failed_attempts: int) -> timedelta:
        """Exponential backoff after the n-th consecutive failed attempt (1-based)."""
        delay = self.rebook_backoff * (2 ** max(failed_attempts - 1, 0))
        return min(delay, self.rebook_backoff_max)
