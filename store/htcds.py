"""The HTCDS export's rows, read in one statement over the read models (``rm_cases``,
``rm_report_facts``, ``rm_trafficking``, ``rm_trafficking_route``; decision 0069), never
the event log or the vault. The statement selects no case id: nothing that could link a
row back leaves the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.htcds import CaseFacts
from store.reports import SPECS

_IN_PERIOD = ("r.registered_at >= :start AND r.registered_at < :end AND NOT EXISTS "
              "(SELECT 1 FROM case_packages_imported i WHERE i.case_id = r.case_id)")

_SELECT = (
    "SELECT r.registered_at, r.sex, r.age_category, r.destination_country, r.host_country, "
    "r.referral_source, r.outcome, f.trafficking_status, t.recruitment_method, "
    "COALESCE(t.exploitation_types, '{}') AS exploitation_types, "
    "ARRAY(SELECT DISTINCT rt.country::text FROM rm_trafficking_route rt "
    "WHERE rt.case_id = r.case_id) AS route_countries, "
    "t.duration_band, COALESCE(t.transport_means, '{}') AS transport_means, "
    f"{SPECS['follow_up_reach'].sql} AS follow_up_reach, "
    "ARRAY(SELECT jsonb_array_elements_text(COALESCE(f.services_delivered, '[]'))) "
    "AS services_delivered "
    "FROM rm_cases r LEFT JOIN rm_report_facts f ON f.case_id = r.case_id "
    "LEFT JOIN rm_trafficking t ON t.case_id = r.case_id "
    f"WHERE {_IN_PERIOD}")


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def params(self) -> dict[str, datetime]:
        return {"start": datetime.combine(self.start, datetime.min.time()),
                "end": datetime.combine(self.end + timedelta(days=1), datetime.min.time())}


async def imported_in_period(engine: AsyncEngine, period: Period) -> int:
    """Cases imported from another deployment (left out: their deployment exports them)."""
    sql = ("SELECT count(*) FROM rm_cases r JOIN case_packages_imported i "
           "ON i.case_id = r.case_id WHERE r.registered_at >= :start "
           "AND r.registered_at < :end")
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), period.params())).scalar_one()


async def case_facts(engine: AsyncEngine, period: Period,
                     progress: Callable[[int], None] | None = None,
                     batch: int = 1000) -> AsyncIterator[CaseFacts]:
    """The period's cases, streamed (``progress`` hears the count every ``batch``)."""
    read = 0
    async with engine.connect() as conn:
        result = await conn.stream(text(_SELECT), period.params())
        async for partition in result.partitions(batch):
            for row in partition:
                yield CaseFacts(**row._mapping)
            read += len(partition)
            if progress is not None:
                progress(read)


__all__ = ["Period", "case_facts", "imported_in_period"]
