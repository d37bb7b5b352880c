"""A worker process of the workflow rows, so that its CPU time and memory are its own:
``python -m bench.worker homeward`` (homeward's worker as `homeward worker` builds it,
without the projector) or ``python -m bench.worker bare`` (the bare workflow, on the task
queue ``<queue>-bare``). Settings come from the HOMEWARD_ environment, as for homeward;
HOMEWARD_METRICS_PORT serves the SDK's series, among them the sticky cache's size and
evictions."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

BARE_TABLE = """CREATE TABLE IF NOT EXISTS bench_bare_events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, case_id text NOT NULL,
    step integer NOT NULL, payload text NOT NULL, UNIQUE (case_id, step))"""


async def _serve(kind: str) -> None:
    from temporalio.worker import Worker

    from store.database import create_engine
    from store.event_store import EventStore
    from workers.settings import load_settings
    from workers.temporal import connect_with, metrics_runtime
    from workers.worker import build_worker

    settings = load_settings()
    client = await connect_with(settings, runtime=metrics_runtime(settings))
    engine = create_engine(settings.database_url)
    if kind == "homeward":
        worker = build_worker(client, EventStore(engine), settings.task_queue,
                              settings.travel_adapter)
    else:
        from sqlalchemy import text
        from temporalio import activity

        from bench.bare_workflow import BARE_ACTIVITY, BareJourney
        from bench.events import SAMPLE_PAYLOAD

        async with engine.begin() as conn:
            await conn.execute(text(BARE_TABLE))
        payload = json.dumps(SAMPLE_PAYLOAD)

        @activity.defn(name=BARE_ACTIVITY)
        async def bare_append(case_id: str, step: int) -> None:
            async with engine.begin() as conn:
                await conn.execute(text(
                    "INSERT INTO bench_bare_events (case_id, step, payload) "
                    "VALUES (:c, :s, :p) ON CONFLICT DO NOTHING"),
                    {"c": case_id, "s": step, "p": payload})

        worker = Worker(client, task_queue=f"{settings.task_queue}-bare",
                        workflows=[BareJourney], activities=[bare_append])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(worker.run())
    print("worker ready", flush=True)
    await stop.wait()
    await worker.shutdown()
    await running
    await engine.dispose()


def main() -> None:
    import logging
    import os

    from workers.logging import configure_logging
    from workers.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(_serve(sys.argv[1]))
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)  # as workers.cli.entrypoint: no interpreter teardown after the SDK's threads


if __name__ == "__main__":
    main()
