"""When a case is active, and since when it is closed: read from its event types.

The journey is active from the referral until its outcome. A return is followed by
reintegration, so a returned case stays open while follow-up runs and closes with it;
a case without follow-up events closes at its outcome. Reopening opens it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

REFERRAL = "case.referral_registered"
OUTCOME_PREFIX = "outcome."
FOLLOW_UP_PREFIX = "reintegration."
FOLLOW_UP_CLOSED = "reintegration.closed"


def journey_active(event_types: Iterable[str]) -> bool:
    """Referred and no journey outcome yet: identity must not be erased now."""
    referred = ended = False
    for event_type in event_types:
        referred = referred or event_type == REFERRAL
        ended = ended or event_type.startswith(OUTCOME_PREFIX)
    return referred and not ended


def closed_at(events: Iterable[tuple[str, datetime]]) -> datetime | None:
    """The moment the case closed, or None while it is open (or was never referred)."""
    closed: datetime | None = None
    for event_type, occurred_at in events:
        if event_type.startswith(OUTCOME_PREFIX):
            closed = occurred_at
        elif event_type == FOLLOW_UP_CLOSED:
            closed = occurred_at
        elif event_type.startswith(FOLLOW_UP_PREFIX):
            closed = None  # follow-up running, or reopened
    return closed
