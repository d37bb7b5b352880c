"""Verify every case's hash chain: the command behind `homeward store verify`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.database import create_engine
from store.events import Causation
from store.hashing import GENESIS_HASH, event_hash
from store.schema import events_table

EXIT_OK = 0
EXIT_TAMPERED = 1


@dataclass(frozen=True)
class BrokenLink:
    case_id: str
    version: int
    reason: str


@dataclass(frozen=True)
class VerifyReport:
    cases_checked: int
    events_checked: int
    broken: BrokenLink | None  # the first broken link, in (case_id, version) order

    @property
    def ok(self) -> bool:
        return self.broken is None


async def verify_chain(
    engine: AsyncEngine, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Walk every case in case_id order, each by version, and stop at the first broken
    link. ``progress(cases_done, cases_total)`` is called after each case."""
    async with engine.connect() as conn:
        # One snapshot for the whole walk: appends made meanwhile are neither half seen
        # nor counted.
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            total = (
                await conn.execute(select(func.count(events_table.c.case_id.distinct())))
            ).scalar()
            rows = await conn.stream(
                select(events_table)
                .order_by(events_table.c.case_id, events_table.c.version)
                .execution_options(yield_per=1000)
            )
            case_id: str | None = None
            cases = checked = 0
            expected_version, prev_hash = 1, GENESIS_HASH
            async for row in rows:
                if row.case_id != case_id:
                    if case_id is not None and progress:
                        progress(cases, total)
                    case_id, cases = row.case_id, cases + 1
                    expected_version, prev_hash = 1, GENESIS_HASH
                checked += 1
                reason = _broken_reason(row, expected_version, prev_hash)
                if reason:
                    return VerifyReport(cases, checked, BrokenLink(case_id, row.version, reason))
                expected_version, prev_hash = row.version + 1, row.hash
            if case_id is not None and progress:
                progress(cases, total)
            return VerifyReport(cases, checked, None)


def _broken_reason(row: Any, expected_version: int, prev_hash: str) -> str | None:
    if row.version != expected_version:
        return f"version gap: expected version {expected_version}, found {row.version}"
    if row.prev_hash != prev_hash:
        return "prev_hash does not match the hash of the previous event"
    recomputed = event_hash(
        prev_hash,
        case_id=row.case_id,
        version=row.version,
        event_id=row.event_id,
        event_type=row.event_type,
        schema_version=row.schema_version,
        payload_json=row.payload,
        author_org=row.author_org,
        actor=row.actor,
        occurred_at=row.occurred_at,
        causation=Causation(
            row.causation_workflow_id, row.causation_run_id, row.causation_activity_id
        ),
    )
    if recomputed != row.hash:
        return "hash mismatch: the event's content differs from what was hashed"
    return None


async def run_verify(
    engine: AsyncEngine, out: TextIO = sys.stdout, progress_every: int = 1000
) -> int:
    """Verify, print progress every ``progress_every`` cases and a summary; return the
    exit code: 0 intact, 1 tampered."""

    def progress(done: int, total: int) -> None:
        if done % progress_every == 0:
            print(f"verified {done}/{total} cases", file=out, flush=True)

    report = await verify_chain(engine, progress)
    if report.broken is None:
        print(
            f"OK: hash chains intact ({report.cases_checked} cases, "
            f"{report.events_checked} events)",
            file=out,
        )
        return EXIT_OK
    broken = report.broken
    print(
        f"TAMPERED: case {broken.case_id!r} version {broken.version}: {broken.reason} "
        f"(checked {report.cases_checked} cases, {report.events_checked} events)",
        file=out,
    )
    return EXIT_TAMPERED


def main_verify(url: str, out: TextIO = sys.stdout, progress_every: int = 1000) -> int:
    """Synchronous entry point for the CLI."""

    async def run() -> int:
        engine = create_engine(url)
        try:
            return await run_verify(engine, out, progress_every)
        finally:
            await engine.dispose()

    return asyncio.run(run())
