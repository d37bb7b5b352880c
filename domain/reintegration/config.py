"""The follow-up programme's schedule, grant and limits, with the field's defaults.

Passed in the case input (``ReturnCaseInput.reintegration``), so a demo can run a year of
follow-up in seconds and a test can state the numbers it relies on.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.reintegration.vocabulary import CurrencyCode, InstalmentTrigger, PaymentMethod


class GrantInstalmentSpec(BaseModel):
    """One instalment of the reinstallation grant: amount in minor units (cents)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trigger: InstalmentTrigger
    check_in: int | None = Field(default=None, ge=1, description="With trigger at_check_in.")
    amount_minor: int = Field(gt=0, le=10_000_000)
    currency: CurrencyCode = "USD"
    method: PaymentMethod = PaymentMethod.CASH


def _programme_grant() -> tuple[GrantInstalmentSpec, ...]:
    """150 USD: 50 before departure, then 50 at reception and 50 at the first check-in."""
    return (
        GrantInstalmentSpec(trigger=InstalmentTrigger.BEFORE_DEPARTURE, amount_minor=5000),
        GrantInstalmentSpec(trigger=InstalmentTrigger.AT_RECEPTION, amount_minor=5000),
        GrantInstalmentSpec(trigger=InstalmentTrigger.AT_CHECK_IN, check_in=1,
                            amount_minor=5000),
    )


_MONTH = timedelta(days=30)


class ReintegrationConfig(BaseModel):
    """The follow-up programme: schedule, grant and limits. Part of the case input, so a
    demo runs a year in seconds and a test states the numbers it relies on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    needs_assessment_within: timedelta = Field(default=timedelta(days=7))
    plan_within: timedelta = Field(default=timedelta(days=30),
                                   description="After arrival, like the needs assessment.")
    check_ins_after_arrival: tuple[timedelta, ...] = Field(
        default=(_MONTH, 3 * _MONTH, 6 * _MONTH, timedelta(days=365)), min_length=1,
        max_length=24)
    check_in_window: timedelta = Field(default=timedelta(days=14),
                                       description="A check-in task is due this long after "
                                       "its date; later it escalates as overdue.")
    misses_before_contact_lost: int = Field(default=2, ge=1, le=10)
    tracing_within: timedelta = Field(default=timedelta(days=14))
    tracing_retry_after: timedelta = Field(default=timedelta(days=30))
    tracing_attempts: int = Field(default=3, ge=1, le=10,
                                  description="Unsuccessful tracings before the case closes "
                                  "as no longer reachable.")
    grant: tuple[GrantInstalmentSpec, ...] = Field(default_factory=_programme_grant,
                                                   max_length=12)
    payment_within: timedelta = Field(default=timedelta(days=7))
    payment_attempts: int = Field(default=3, ge=1, le=10,
                                  description="Failed attempts before the payment escalates.")
    payment_retry_after: timedelta = Field(default=timedelta(days=2))
    payment_retry_max: timedelta = Field(default=timedelta(days=14))
    review_within: timedelta = Field(default=timedelta(days=3))
    sustainability_within: timedelta = Field(default=timedelta(days=14))
    delivery_report_within: timedelta = Field(
        default=timedelta(days=14), description="A provider's delivery report is due at its "
        "line's date, and never sooner than this after the task opens.")
    reopen_window: timedelta = Field(default=timedelta(days=365),
                                     description="How long a closed case can be reopened "
                                     "before its workflow ends.")
    check_ins_after_reopening: tuple[timedelta, ...] = Field(
        default=(_MONTH, 3 * _MONTH), min_length=1, max_length=24)
    continue_as_new_after_events: int = Field(
        default=2000, ge=40, le=20_000,
        description="History length at which a run continues as new (or earlier, when the "
        "server suggests it), once every handler has finished (decision 0032).")

    @model_validator(mode="after")
    def _consistent(self) -> ReintegrationConfig:
        if list(self.check_ins_after_arrival) != sorted(set(self.check_ins_after_arrival)):
            raise ValueError("check-ins must be strictly increasing")
        if any(d <= timedelta(0) for d in self.check_ins_after_arrival):
            raise ValueError("check-ins come after arrival")
        for spec in self.grant:
            if (spec.trigger is InstalmentTrigger.AT_CHECK_IN) != (spec.check_in is not None):
                raise ValueError("a check-in number belongs to (and only to) an at_check_in "
                                 "instalment")
            if spec.check_in is not None and spec.check_in > len(self.check_ins_after_arrival):
                raise ValueError(f"no check-in {spec.check_in} in the schedule")
        return self

    def payment_retry_delay(self, failed_attempts: int) -> timedelta:
        delay = self.payment_retry_after * (2 ** max(failed_attempts - 1, 0))
        return min(delay, self.payment_retry_max)
