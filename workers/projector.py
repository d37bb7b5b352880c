"""The projector: keeps the API's read models current by running every projection's
catch-up about twice a second until told to stop. Safe to run in several processes (the
worker's, the API's own) and beside a rebuild: the checkpoint row locks serialise them.
Lists read the read models without catching up themselves (decision 0052)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from store.projections import Projection, ProjectionRunner
from store.read_models import all_projections

INTERVAL_SECONDS = 0.5


async def run_projector(engine: AsyncEngine, stop: asyncio.Event,
                        projections: Sequence[Projection] | None = None,
                        interval: float = INTERVAL_SECONDS) -> int:
    """Catch up until ``stop`` is set; return how many events were applied in all
    (``ProjectionRunner.run``: a failing round is logged and retried, never the end)."""
    runner = ProjectionRunner(engine, list(projections or all_projections()))
    return await runner.run(stop, interval)
