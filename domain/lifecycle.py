"""When a case is active, and since when it is closed: read from its event types.

The journey is active from the referral until its outcome. A return is followed by
reintegration, so a returned case stays open while follow-up runs and closes with it;
a case without follow-up events closes at its outcome. Reopening opens it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from domain.catalogue import FOLLOW_UP_TYPES, OUTCOME_TYPES
from domain.journey.events import ReferralRegistered
from domain.reintegration.events import ReintegrationClosed

# Types the catalogue does not hold match none of these: they neither open nor close a case.


def journey_active(event_types: Iterable[str]) -> bool:
    """Referred and no journey outcome yet: identity must not be erased now."""
    referred = ended = False
    for event_type in event_types:
        referred = referred or event_type == ReferralRegistered.TYPE
        ended = ended or event_type in OUTCOME_TYPES
    return referred and not ended


def closed_at(events: Iterable[tuple[str, datetime]]) -> datetime | None:
    """The moment the case closed, or None while it is open (or was never referred)."""
    closed: datetime | None = None
    for event_type, occurred_at in events:
        if event_type in OUTCOME_TYPES or event_type == ReintegrationClosed.TYPE:
            closed = occurred_at
        elif event_type in FOLLOW_UP_TYPES:
            closed = None  # follow-up running, or reopened
    return closed
