"""The field's rules, one small named function each.

A policy that can say no returns a ``Refusal`` (or None when satisfied): a sentence a
coordinator understands, never an exception. ``Refusal`` itself and the minor rule
(``treated_as_minor``), which both aggregates apply, are in ``domain.kernel``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from domain.journey.config import JourneyConfig
from domain.journey.vocabulary import (
    ChildPresence,
    DecidedBy,
    EscortKind,
    EscortScope,
    IdentificationMethod,
    LanguageCode,
    RiskLevel,
)
from domain.kernel import Refusal

# --- minors (§6.5.3, rec. 10) -----------------------------------------------------------


def child_interview_refusal(*, minor: bool, guardian_appointed: bool,
                            accompanied_by: ChildPresence | None) -> Refusal | None:
    """A child is never interviewed alone: her guardian sits with her, or, before one is
    appointed, a child protection officer (UNICEF guidelines)."""
    if not minor:
        return None
    if accompanied_by is None:
        return Refusal("a child is interviewed only with her guardian or a child protection "
                       "officer present: record who was there (child_accompanied_by)",
                       code="child_unaccompanied")
    if accompanied_by is ChildPresence.GUARDIAN and not guardian_appointed:
        return Refusal("no guardian is appointed yet: until one is, a child protection "
                       "officer sits with the child", code="guardian_not_appointed")
    return None


def child_decision_refusal(*, what: str, minor: bool, guardian_appointed: bool,
                           decided_by: DecidedBy) -> Refusal | None:
    """A child decides her options and consents together with her legal guardian, who is
    therefore appointed first; an adult decides herself."""
    if not minor:
        if decided_by is DecidedBy.CHILD_WITH_GUARDIAN:
            return Refusal(f"she is an adult: she gives her {what} herself (person)",
                           code="adult_decides_herself")
        return None
    if not guardian_appointed:
        return Refusal(f"a child gives her {what} together with her legal guardian: no "
                       "guardian is appointed yet", code="guardian_not_appointed")
    if decided_by is not DecidedBy.CHILD_WITH_GUARDIAN:
        return Refusal(f"a child gives her {what} together with her legal guardian: record "
                       "child_with_guardian", code="guardian_must_take_part")
    return None


# --- escorts and security (§4.3.3) ------------------------------------------------------


def police_escort_required(risk: RiskLevel) -> bool:
    return risk is RiskLevel.HIGH


def required_escorts(minor: bool, risk: RiskLevel) -> list[tuple[EscortKind, EscortScope]]:
    """Staff always; a minor's escort stays to the guardian / family (end to end); high risk
    adds police to the handoff."""
    escorts = [(EscortKind.STAFF, EscortScope.END_TO_END if minor else EscortScope.TO_HANDOFF)]
    if police_escort_required(risk):
        escorts.append((EscortKind.POLICE, EscortScope.TO_HANDOFF))
    return escorts


# --- witness (§4.3.3, §5.3.5) -----------------------------------------------------------


def earliest_witness_departure(notified_at: datetime, notice: timedelta) -> datetime:
    return notified_at + notice


def witness_departure_refusal(
    departure_at: datetime, earliest: datetime | None, notice: timedelta
) -> Refusal | None:
    if earliest is not None and departure_at < earliest:
        return Refusal(
            f"a witness cannot depart before {earliest:%Y-%m-%d %H:%M} UTC: the prosecutor "
            f"must be told at least {notice.days} days in advance",
            code="witness_notice_period", allowed_from=earliest,
        )
    return None


# --- consent (§6.5.2 "Language", rec. 18) -----------------------------------------------


def consent_refusal(
    *,
    form_language: LanguageCode,
    reads_languages: tuple[LanguageCode, ...],
    form_version: str,
    accepted_versions: tuple[str, ...],
    interpreter_used: bool,
    interpreter_recorded: bool,
    signed_at: datetime,
    now: datetime,
) -> Refusal | None:
    """Consent counts only if signed on a form in a language she reads, on a current form
    version, with the interpreter recorded when one was used, and not in the future."""
    if form_language not in reads_languages:
        return Refusal(
            f"consent form in {form_language!r} is not valid: the person reads "
            f"{', '.join(reads_languages)}; use a form in a language she reads"
        )
    if form_version not in accepted_versions:
        return Refusal(
            f"consent form version {form_version!r} is not in use; current: "
            f"{', '.join(accepted_versions)}"
        )
    if interpreter_used and not interpreter_recorded:
        return Refusal("an interpreter was used: record the interpreter with the consent")
    if not interpreter_used and interpreter_recorded:
        return Refusal("an interpreter is recorded but the consent says none was used")
    if signed_at > now:
        return Refusal("consent cannot be signed in the future")
    return None


# --- reflection period (Serbia: 4 weeks; Tirana Agreement: at least 3 months) -----------


def reflection_minimum_days(host_country: str, config: JourneyConfig) -> int:
    return config.reflection_minimum_days.get(host_country, config.default_reflection_minimum_days)


def reflection_period_refusal(
    granted_days: int | None, host_country: str, config: JourneyConfig
) -> Refusal | None:
    minimum = reflection_minimum_days(host_country, config)
    if granted_days is None:
        return Refusal("a reflection period needs its length in days")
    if granted_days < minimum:
        return Refusal(
            f"a reflection period in {host_country} is at least {minimum} days; "
            f"{granted_days} were recorded"
        )
    return None


# --- discreet identification at the handoff (§6.5.2, rec. 11) ---------------------------

DISCREET_IDENTIFICATION = frozenset(
    {IdentificationMethod.HANDOFF_CODE, IdentificationMethod.PHOTO_MATCH}
)


def identification_refusal(method: IdentificationMethod) -> Refusal | None:
    if method in DISCREET_IDENTIFICATION:
        return None
    return Refusal(
        f"identification by {method.value.replace('_', ' ')} is refused: it marks the person "
        "for traffickers and stigmatises her at home; use the one-time handoff code or a "
        "photo match known only to the escort and the receiving officer"
    )


HANDOFF_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def handoff_code_from(random_ints: list[int]) -> str:
    """An 8-character code from 8 integers (the workflow passes ``workflow.random()`` draws)."""
    if len(random_ints) != 8:
        raise ValueError("a handoff code has 8 characters")
    return "".join(HANDOFF_CODE_ALPHABET[i % len(HANDOFF_CODE_ALPHABET)] for i in random_ints)


def handoff_code_hash(case_id: str, code: str) -> str:
    """What events keep instead of the code (salted by case, so equal codes differ)."""
    return hashlib.sha256(f"homeward-handoff:{case_id}:{code}".encode()).hexdigest()


# --- escalation timing ------------------------------------------------------------------


def border_hold_steps(config: JourneyConfig) -> list[tuple[timedelta, str]]:
    """What a long border hold triggers, in order (§4.4.3: a border can hold for two days)."""
    return sorted(
        [
            (config.border_companion_after, "companion"),
            (config.border_escalation_after, "escalate"),
        ]
    )
