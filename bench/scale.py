"""`homeward bench scale`: many concurrent cases driven to reception through the HTTP API
(default 1,000; ``bench.api_journey``): first 300 with a steady worker (the reference
rate), then all of them with a steady worker, then all of them again with the worker
killed (SIGKILL) and restarted three times along the way. The API, the worker,
PostgreSQL and the Temporal dev server run as separate processes. Reports per run: cases
completed, failed (with their reasons), stuck (not done by the deadline), wall time,
cases per second, each case's time to reception (p50, p95), the requests sent again
after a 503 or a lost connection, and the worker's CPU and memory. Long by design: not
part of --quick."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from typing import Any

import httpx

from bench.api_journey import Api, Board, to_reception
from bench.harness import progress
from bench.servers import Postgres
from bench.stack_rows import StackRows

DEADLINE = 45 * 60.0  # seconds a run may take before its unfinished cases count as stuck
KILLS = 3
CONNECTIONS = 96  # the cases' requests in flight at once (the API sheds past 128)


async def _one_run(rows: StackRows, api: Api, board_api: Api, cases: int,
                   kills: int, kill_every: float = 60.0) -> dict[str, Any]:
    done = {"completed": 0, "failed": 0, "kills": 0}
    reasons: Counter[str] = Counter()
    durations: list[float] = []
    board = Board(board_api)
    retries_before = api.retries

    async def one() -> None:
        began = time.perf_counter()
        try:
            await to_reception(api, board)
        except Exception as exc:  # noqa: BLE001 - counted with its reason: the run goes on
            done["failed"] += 1
            reason = f"{type(exc).__name__}: {str(exc)[:400]}"
            if reason not in reasons:
                progress(f"  scale: a case failed: {reason}")
            reasons[reason] += 1
            return
        done["completed"] += 1
        durations.append(time.perf_counter() - began)

    async def killer(every: float) -> None:
        for n in range(kills):
            await asyncio.sleep(every)
            progress(f"  scale: kill -9 of the worker ({n + 1}/{kills}), "
                     f"{done['completed']} cases done")
            rows.children["homeward"].kill()
            done["kills"] += 1
            await rows.start_worker("homeward")

    async def report_progress(every: float = 30.0) -> None:
        while True:
            await asyncio.sleep(every)
            progress(f"  scale: {done['completed']:,} of {cases:,} cases at reception, "
                     f"{done['failed']} failed, {time.perf_counter() - started:,.0f} s")

    worker_cpu = rows.children["homeward"].cpu_seconds()
    started = time.perf_counter()
    helpers = [asyncio.create_task(board.run()), asyncio.create_task(report_progress())]
    if kills:
        helpers.append(asyncio.create_task(killer(every=kill_every)))
    tasks = [asyncio.create_task(one()) for _ in range(cases)]
    finished, pending = await asyncio.wait(tasks, timeout=DEADLINE)
    for task in [*pending, *helpers]:
        task.cancel()
    elapsed = time.perf_counter() - started
    worker = rows.children["homeward"]
    ordered = sorted(durations)
    return {"cases": cases, "worker_kills": done["kills"], "completed": done["completed"],
            "failed": done["failed"], "stuck": len(pending), "seconds": round(elapsed, 1),
            "cases_per_second": round(done["completed"] / elapsed, 3),
            "case_seconds_p50": round(statistics.median(ordered), 1) if ordered else None,
            "case_seconds_p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1)
            if ordered else None,
            "requests_sent_again": api.retries - retries_before,
            "board_requests": board.requests,
            # after a kill, the restarted worker's figures would count part of the run only
            "worker_cpu_seconds": None if done["kills"]
            else round(worker.cpu_seconds() - worker_cpu, 1),
            "worker_rss_mib": round(worker.rss_bytes() / 2**20),
            "failures": dict(reasons.most_common())}


async def run_scale(args, server_url: str | None) -> int:
    cases = args.scale_cases
    pg = Postgres(server_url)
    await pg.start()
    rows = None
    report = []
    try:
        rows = await StackRows.start(pg, temporal_in_memory=args.temporal_in_memory)
        # The cases' requests share CONNECTIONS connections, fewer than the API takes
        # in at once (its load shedding stays for true overload): a thousand clients
        # that all retried every shed request each second spent the machine's two
        # cores on the retries (decision 0072). The board has its own connections.
        api_process, http = await rows.start_api(
            CONNECTIONS, HOMEWARD_API_ALLOW_JOURNEY_CONFIG="true")
        watching = httpx.AsyncClient(base_url=http.base_url, timeout=120)
        api = Api(http, rows.tokens)
        board_api = Api(watching, rows.tokens)
        try:
            # The reference rate first (--scale-reference): by default the 300
            # concurrent cases, steady worker.
            reference = min(args.scale_reference, cases)
            runs = [(reference, 0)] if reference > 0 else []
            for n, kills in [*runs, (cases, 0), (cases, KILLS)]:
                progress(f"scale: {n:,} concurrent cases to reception through the API, "
                         f"{kills} worker kills")
                result = await _one_run(rows, api, board_api, n, kills, args.kill_every)
                progress(f"scale: {result}")
                report.append(result)
        finally:
            await http.aclose()
            await watching.aclose()
            api_process.stop()
    finally:
        if rows is not None:
            await rows.stop()
        await pg.stop()
    print("| cases | worker kills | completed | failed | stuck | seconds | cases/s "
          "| case p50 / p95 s | sent again |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in report:
        print(f"| {r['cases']:,} | {r['worker_kills']} | {r['completed']:,} | {r['failed']} | "
              f"{r['stuck']} | {r['seconds']:,.0f} | {r['cases_per_second']:.2f} | "
              f"{r['case_seconds_p50']} / {r['case_seconds_p95']} | "
              f"{r['requests_sent_again']:,} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"scale": report}, handle, indent=2)
    return 0 if all(r["completed"] == r["cases"] for r in report) else 1
