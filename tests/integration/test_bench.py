"""The bench harness runs end to end in its smallest configuration against the test
session's PostgreSQL, and its JSON holds every field a reader of the report needs. No
timing is asserted: benchmarks are not timed tests (machines are noisy)."""

from __future__ import annotations

import json

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


def test_quick_covers_every_row_of_the_issue_but_the_long_ones():
    cfg = _config("--quick")
    assert cfg.rows == ["append_single", "append_batch10", "append_8_writers", "read_stream",
                        "rebuild", "statistics", "registration", "journey"]
    assert cfg.rounds == 3
