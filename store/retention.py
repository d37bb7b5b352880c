"""Retention: identities of cases closed longer ago than the retention period are erased.

Which cases are closed, and since when, is the journey's knowledge: it is injected as
``closed_at(case_id)`` (None: the case is still active). Listing is separate from
erasing so that a person confirms the list first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from store.vault import Erasure, ErasureReason, PersonVault

DEFAULT_RETENTION_YEARS = 5
RETENTION_ACTOR = "system:retention"

ClosedAt = Callable[[str], Awaitable[datetime | None]]


@dataclass(frozen=True)
class ExpiredCase:
    case_id: str
    closed_at: datetime
    expired_at: datetime  # closed_at + the retention period


def years_after(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February in a year that has none
        return moment.replace(year=moment.year + years, day=28)


async def expired_cases(
    vault: PersonVault,
    closed_at: ClosedAt,
    *,
    retention_years: int = DEFAULT_RETENTION_YEARS,
    now: datetime | None = None,
) -> list[ExpiredCase]:
    """Cases whose identity is still in the vault and whose closure is older than the
    retention period, in case id order. Active cases are never listed."""
    if retention_years < 0:
        raise ValueError("retention_years must not be negative")
    now = now or datetime.now(UTC)
    expired: list[ExpiredCase] = []
    after = None
    while page := await vault.live_case_ids(after=after):
        for case_id in page:
            closed = await closed_at(case_id)
            if closed is not None and years_after(closed, retention_years) <= now:
                expired.append(ExpiredCase(case_id, closed, years_after(closed, retention_years)))
        after = page[-1]
    return expired


@dataclass(frozen=True)
class RetentionRun:
    erased: list[Erasure]
    skipped: list[str]  # listed, but active again or no longer past retention


async def erase_expired(
    vault: PersonVault,
    cases: Sequence[ExpiredCase],
    closed_at: ClosedAt,
    *,
    by_org: str,
    by_actor: str = RETENTION_ACTOR,
    retention_years: int = DEFAULT_RETENTION_YEARS,
    now: datetime | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> RetentionRun:
    """Erase the confirmed ``cases`` with reason ``retention_expired``.

    The list may be old: each case's closure is read again just before its erasure, and
    a case that is active again or no longer past retention is skipped, never erased.
    ``progress(done, total, case_id)`` is called after each case."""
    now = now or datetime.now(UTC)

    async def is_active(case_id: str) -> bool:
        return await closed_at(case_id) is None

    run = RetentionRun([], [])
    for done, case in enumerate(cases, start=1):
        closed = await closed_at(case.case_id)
        if closed is None or years_after(closed, retention_years) > now:
            run.skipped.append(case.case_id)
        else:
            run.erased.append(
                await vault.erase(
                    case.case_id,
                    ErasureReason.RETENTION_EXPIRED,
                    by_org=by_org,
                    by_actor=by_actor,
                    is_case_active=is_active,
                )
            )
        if progress:
            progress(done, len(cases), case.case_id)
    return run
