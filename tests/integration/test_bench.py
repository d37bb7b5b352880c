"""The bench harness runs end to end in its smallest configuration against the test
session's PostgreSQL, and its JSON holds every field a reader of the report needs. No
timing is asserted: benchmarks are not timed tests (machines are noisy)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bench.cli import add_arguments, config_from, run
from bench.harness import table, write_json


def _config(*argv: str):
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from(parser.parse_args(list(argv)))


async def test_the_smallest_bench_run_reports_every_field(pg_server_url, tmp_path):
    cfg = _config("--rows", "append_single,read_stream", "--rounds", "1", "--events", "20")
    results = await run(cfg, pg_server_url)
    path = tmp_path / "bench.json"
    write_json(str(path), results, {"config": "smallest"})
    report = json.loads(path.read_text())

    assert [row["row"] for row in report["rows"]] == ["append_single", "read_stream"]
    for row in report["rows"]:
        assert {"row", "title", "unit", "better", "rounds", "subjects", "ratios", "targets",
                "extra", "notes"} <= row.keys()
        assert row["rounds"] == 1
        assert set(row["subjects"]) == {"homeward", "eventsourcing", "asyncpg"}
        assert set(row["ratios"]) == {"eventsourcing", "asyncpg"}
        for spread in [*row["subjects"].values(), *row["ratios"].values()]:
            assert {"median", "min", "max", "samples"} <= spread.keys()
            assert len(spread["samples"]) == 1 and spread["median"] > 0
        [target] = row["targets"]
        assert target["baseline"] == "eventsourcing" and isinstance(target["met"], bool)
    rendered = table(results)
    assert "append, 1 event per call, 1 case" in rendered
    assert "eventsourcing" in rendered and "asyncpg" in rendered


def test_quick_covers_every_row_of_the_issue():
    """Every row of the table, memory too (smaller: 100 and 500 open cases, a cache of
    100); the 1,000-case run to reception is its own mode, `homeward bench scale`."""
    cfg = _config("--quick")
    assert cfg.rows == ["append_single", "append_batch10", "append_8_writers", "read_stream",
                        "rebuild", "statistics", "registration", "journey", "memory"]
    assert cfg.rounds == 3
    assert cfg.memory_cases == (100, 500)
    assert _config().memory_cases == (1_000, 5_000)


async def test_the_memory_row_counts_the_runs_its_bounded_cache_evicts(pg_server_url):
    """The memory row's worker holds at most the smaller number of open runs in its cache:
    past it, the row reads from the worker's own metrics that runs were evicted, and how
    many the cache still holds."""
    cfg = dataclasses.replace(_config("--rows", "memory"), memory_cases=(10, 25))
    [row] = await run(cfg, pg_server_url)

    small, large = row.extra["cache"]["10 open cases"], row.extra["cache"]["25 open cases"]
    assert row.extra["cache_limit"] == 10 and row.extra["cache_bounded"]
    assert small["held"] <= 10 and large["held"] <= 10
    # Every run entered the cache once: those it no longer holds, it evicted.
    assert large["held"] + large["evicted"] >= 25
    assert "evicted between the two" in table([row])
    assert set(row.subjects) == {"homeward", "10 open cases"}


async def test_a_worker_s_metrics_are_summed_over_their_labels(tmp_path):
    """Child.metrics reads a Prometheus endpoint: each family summed over its labels, a
    counter under its name without `_total` (its `_created` sample left out)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

    from bench.servers import Child, free_port

    registry = CollectorRegistry()
    evicted = Counter("temporal_sticky_cache_total_forced_eviction", "", ["task_queue"],
                      registry=registry)
    held = Gauge("temporal_sticky_cache_size", "", ["task_queue"], registry=registry)
    evicted.labels("a").inc(3)
    evicted.labels("b").inc(4)
    held.labels("a").set(10)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        child = Child(proc=None, log=tmp_path / "worker.log",  # type: ignore[arg-type]
                      metrics_url=f"http://127.0.0.1:{port}/metrics")
        series = await child.metrics()
    finally:
        server.shutdown()
        thread.join()
    assert series["temporal_sticky_cache_total_forced_eviction"] == 7
    assert series["temporal_sticky_cache_size"] == 10
    with pytest.raises(RuntimeError, match="no metrics endpoint"):
        await Child(proc=None, log=tmp_path / "api.log").metrics()  # type: ignore[arg-type]
