"""The projector: keeps the API's read models current by running every projection's
catch-up about twice a second until told to stop. Safe to run beside the API's own
catch-ups and in several processes: the checkpoint row lock serialises them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from store.projections import Projection, ProjectionRunner
from store.read_models import all_projections

log = structlog.get_logger("homeward.projector")

INTERVAL_SECONDS = 0.5


async def run_projector(engine: AsyncEngine, stop: asyncio.Event,
                        projections: Sequence[Projection] | None = None,
                        interval: float = INTERVAL_SECONDS) -> int:
    """Catch up until ``stop`` is set; return how many events were applied in all. A
    failing round is logged and retried after the interval (the database may be
    restarting); it never ends the loop."""
    runner = ProjectionRunner(engine, list(projections or all_projections()))
    applied = 0
    failures = 0
    while not stop.is_set():
        try:
            applied += await runner.catch_up()
            failures = 0
        except Exception as exc:  # noqa: BLE001 - logged and retried
            failures += 1
            log.warning("projection round failed", error_type=type(exc).__name__,
                        consecutive_failures=failures)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval * min(2 ** failures, 20))
    return applied
