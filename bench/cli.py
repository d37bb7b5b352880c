"""`homeward bench` (and `python -m bench`): options, the run, the table and the JSON."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from bench.harness import RowResult, progress, table, write_json

STORE_ROWS = ["append_single", "append_batch10", "append_8_writers", "read_stream", "rebuild",
              "statistics"]
STACK_ROWS = ["registration", "journey", "memory"]
ALL_ROWS = [*STORE_ROWS, *STACK_ROWS]


@dataclass
class BenchConfig:
    rows: list[str]
    rounds: int
    events: int  # append rows: events per round (batches: ×10)
    reads: int  # read_stream: reads per sample
    rebuild_events: int
    rebuild_rounds: int
    cases: int  # statistics: rm_cases rows
    statistics_calls: int
    registrations: int
    journeys: int
    journey_rounds: int
    memory_cases: tuple[int, int]  # open cases; the worker's cache holds the first number
    quick: bool


def config_from(args: argparse.Namespace) -> BenchConfig:
    quick = args.quick
    rows = args.rows.split(",") if args.rows else list(ALL_ROWS)
    unknown = [r for r in rows if r not in ALL_ROWS]
    if unknown:
        raise SystemExit(f"homeward bench: no row {unknown[0]!r}; known: {', '.join(ALL_ROWS)}")
    rounds = args.rounds or (3 if quick else 5)
    return BenchConfig(
        rows=rows, rounds=rounds,
        events=args.events or (200 if quick else 500),
        reads=10 if quick else 30,
        rebuild_events=args.rebuild_events or (5_000 if quick else 50_000),
        rebuild_rounds=min(rounds, 3),
        cases=args.cases or (10_000 if quick else 100_000),
        statistics_calls=5 if quick else 10,
        registrations=args.registrations or (30 if quick else 100),
        journeys=args.journeys or (8 if quick else 20),
        journey_rounds=min(rounds, 2 if quick else 3),
        memory_cases=(100, 500) if quick else (1_000, 5_000),
        quick=quick,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mode", nargs="?", choices=["rows", "scale"], default="rows",
                        help="rows (default): the table; scale: 1,000 concurrent cases to "
                        "reception, with and without worker kills (long, not in --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and 3 rounds: under 3 minutes on 2 cores")
    parser.add_argument("--rows", help="comma-separated rows to run; known: "
                        + ", ".join(ALL_ROWS))
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 3)")
    parser.add_argument("--events", type=int, help="events per append round")
    parser.add_argument("--rebuild-events", type=int, help="events of the rebuild row")
    parser.add_argument("--cases", type=int, help="rm_cases rows of the statistics row")
    parser.add_argument("--registrations", type=int, help="concurrent POST /cases")
    parser.add_argument("--journeys", type=int, help="cases per journey round")
    parser.add_argument("--scale-cases", type=int, default=1_000,
                        help="scale mode: concurrent cases (default 1,000)")
    parser.add_argument("--kill-every", type=float, default=60.0, metavar="SECONDS",
                        help="scale mode: seconds between two worker kills (default 60)")
    parser.add_argument("--temporal-in-memory", action="store_true",
                        help="scale mode: the Temporal dev server without its SQLite file "
                        "(every history write otherwise waits on that one file)")
    parser.add_argument("--scale-reference", type=int, default=300,
                        help="scale mode: concurrent cases of the reference run that comes "
                        "first (default 300; 0: none)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--database-url", help=argparse.SUPPRESS)  # tests: a running server


async def run(cfg: BenchConfig, server_url: str | None = None) -> list[RowResult]:
    from bench import stack_rows, store_rows
    from bench.servers import Postgres

    pg = Postgres(server_url)
    progress("starting PostgreSQL" if not server_url else "using the given PostgreSQL")
    await pg.start()
    results: list[RowResult] = []
    stack = None
    try:
        for row in cfg.rows:
            progress(f"row {row}")
            if row in STACK_ROWS:
                if stack is None:
                    stack = await stack_rows.StackRows.start(pg)
                made = await getattr(stack, row)(cfg)
                results.extend(made if isinstance(made, list) else [made])
            else:
                results.append(await getattr(store_rows, {
                    "append_batch10": "append_batch",
                    "append_8_writers": "append_concurrent"}.get(row, row))(pg, cfg))
    finally:
        if stack is not None:
            await stack.stop()
        await pg.stop()
    return results


def meta(cfg: BenchConfig, started: float) -> dict[str, object]:
    return {
        "started_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.monotonic() - started, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "config": {k: v for k, v in asdict(cfg).items()},
    }


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    parser = argparse.ArgumentParser(prog="homeward bench",
                                     description="homeward against baselines, in one run")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def run_from_args(args: argparse.Namespace) -> int:
    from workers.logging import configure_logging

    # stdout carries the table only: the in-process API's request lines stay out of it.
    configure_logging("console", "WARNING", stream=sys.stderr)
    cfg = config_from(args)
    started = time.monotonic()
    if args.mode == "scale":
        from bench.scale import run_scale

        return asyncio.run(run_scale(args, args.database_url))
    results = asyncio.run(run(cfg, args.database_url))
    print(table(results))
    if args.json:
        write_json(args.json, results, meta(cfg, started))
        progress(f"JSON written to {args.json}")
    progress(f"done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
