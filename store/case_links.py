"""``rm_case_links``: which person each linked case counts as (decision 0070).

A ``case.linked`` joins the two cases' persons: every case of either takes the smaller
of their ``person_key`` (a case id of hers), so that linked cases, however they were
linked (A–B, then B–C), count as one person in the statistical report and she shows as a
repeat returnee. A case no link names has no row: it is a person of its own."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.outside_events import CaseLinked
from store.events import StoredEvent
from store.projections import catalogued


class CaseLinksProjection:
    name = "case_links"

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM rm_case_links"))

    async def apply_page(self, conn: AsyncConnection, events: Sequence[StoredEvent]) -> None:
        for event in events:  # links are rare: a few statements each
            if not catalogued(event, self.name) or event.event_type != CaseLinked.TYPE:
                continue
            other = event.payload.get("linked_case_id")
            if not other:
                continue
            keys = dict((await conn.execute(text(
                "SELECT case_id, person_key FROM rm_case_links "
                "WHERE case_id = ANY(CAST(:both AS text[]))"),
                {"both": [event.case_id, other]})).all())
            joined = (keys.get(event.case_id, event.case_id), keys.get(other, other))
            person = min(joined)
            await conn.execute(text(
                "UPDATE rm_case_links SET person_key = :person "
                "WHERE person_key = ANY(CAST(:joined AS text[]))"),
                {"person": person, "joined": list(joined)})
            await conn.execute(text(
                "INSERT INTO rm_case_links (case_id, person_key) "
                "SELECT c, :person FROM unnest(CAST(:both AS text[])) AS c "
                "ON CONFLICT (case_id) DO UPDATE SET person_key = EXCLUDED.person_key"),
                {"person": person, "both": [event.case_id, other]})
