"""`homeward bench scale`: many concurrent cases driven to reception (default 1,000), once
with a steady worker and once with the worker killed (SIGKILL) and restarted three times
along the way. Reports per run: cases completed, stuck (not done by the deadline), wall
time and cases per second. Long by design: not part of --quick."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.harness import progress
from bench.servers import Postgres
from bench.stack_rows import StackRows

DEADLINE = 45 * 60.0  # seconds a run may take before its unfinished cases count as stuck
KILLS = 3


async def _one_run(rows: StackRows, cases: int, kills: int) -> dict[str, Any]:
    done = {"completed": 0, "failed": 0}

    async def one() -> None:
        try:
            await rows._homeward_journeys(1)
            done["completed"] += 1
        except Exception:  # noqa: BLE001 - counted: the run goes on
            done["failed"] += 1

    async def killer(every: float) -> None:
        for n in range(kills):
            await asyncio.sleep(every)
            progress(f"  scale: kill -9 of the worker ({n + 1}/{kills}), "
                     f"{done['completed']} cases done")
            rows.children["homeward"].kill()
            await rows.start_worker("homeward")

    started = time.perf_counter()
    tasks = [asyncio.create_task(one()) for _ in range(cases)]
    kill_task = asyncio.create_task(killer(every=60.0)) if kills else None
    finished, pending = await asyncio.wait(tasks, timeout=DEADLINE)
    for task in pending:
        task.cancel()
    if kill_task is not None:
        kill_task.cancel()
    elapsed = time.perf_counter() - started
    return {"cases": cases, "worker_kills": kills, "completed": done["completed"],
            "failed": done["failed"], "stuck": len(pending), "seconds": round(elapsed, 1),
            "cases_per_second": round(done["completed"] / elapsed, 3)}


async def run_scale(args, server_url: str | None) -> int:
    cases = args.scale_cases
    pg = Postgres(server_url)
    await pg.start()
    rows = None
    report = []
    try:
        rows = await StackRows.start(pg)
        for kills in (0, KILLS):
            progress(f"scale: {cases:,} concurrent cases to reception, {kills} worker kills")
            result = await _one_run(rows, cases, kills)
            progress(f"scale: {result}")
            report.append(result)
    finally:
        if rows is not None:
            await rows.stop()
        await pg.stop()
    print("| cases | worker kills | completed | failed | stuck | seconds | cases/s |")
    print("|---|---|---|---|---|---|---|")
    for r in report:
        print(f"| {r['cases']:,} | {r['worker_kills']} | {r['completed']:,} | {r['failed']} | "
              f"{r['stuck']} | {r['seconds']:,.0f} | {r['cases_per_second']:.2f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"scale": report}, handle, indent=2)
    return 0 if all(r["completed"] == r["cases"] for r in report) else 1
