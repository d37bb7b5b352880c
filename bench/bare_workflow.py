"""The bare workflow of the journey row: the same shape as a homeward case's run (the same
activities, Updates and timers, in the same order, read from a homeward history), with no
domain logic. Each activity inserts one row (bench.worker); each Update is accepted once
the workflow waits for it, as a task completion is accepted once the task is open."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

BARE_WORKFLOW = "BenchBareJourney"
BARE_ACTIVITY = "bench_bare_append"


@workflow.defn(name=BARE_WORKFLOW)
class BareJourney:
    def __init__(self) -> None:
        self._updates = 0
        self._waiting = -1

    @workflow.run
    async def run(self, steps: list[str]) -> int:
        """``steps``: "a" an activity, "u" an Update to wait for, "t:<seconds>" a timer,
        "c" a timer cancelled before it fires."""
        done = 0
        for step in steps:
            if step == "a":
                await workflow.execute_activity(
                    BARE_ACTIVITY, args=[workflow.info().workflow_id, done],
                    start_to_close_timeout=timedelta(seconds=60))
            elif step == "c":  # a timer cancelled before it fires (a task done in time)
                timer = asyncio.ensure_future(workflow.sleep(3600))
                await asyncio.sleep(0)
                timer.cancel()
            elif step == "u":
                self._waiting = self._updates
                await workflow.wait_condition(lambda: self._updates > self._waiting)
            else:
                await workflow.sleep(float(step.removeprefix("t:")))
            done += 1
        return done

    @workflow.update(name="step")
    async def step(self, n: int) -> int:
        await workflow.wait_condition(lambda: self._waiting == n)
        self._updates += 1
        return self._updates
