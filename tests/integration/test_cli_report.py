"""`homeward report statistical`: the API's report written to a file, progress on
stderr, a clear error for a bad date."""

from __future__ import annotations

import argparse
import json
import zipfile

from test_api_reports import _cases

from workers.report_cli import run


def _args(tmp_path, **kw) -> argparse.Namespace:
    return argparse.Namespace(**{"start": None, "end": None, "basis": "registered",
                                 "mission": None, "format": "json",
                                 "out": str(tmp_path / "report"), **kw})


async def test_the_cli_writes_the_report_in_each_format(engine, tmp_path, capsys):
    await _cases(engine, 6, outcome="returned")
    assert await run(engine, _args(tmp_path, start="2026-03-01", end="2026-03-31")) == 0
    report = json.loads((tmp_path / "report").read_text())
    assert report["persons_referred"] == 6
    assert "counting the registered cases from 2026-03-01" in capsys.readouterr().err
    assert await run(engine, _args(tmp_path, format="csv")) == 0
    assert "outcome.csv" in zipfile.ZipFile(tmp_path / "report").namelist()
    assert await run(engine, _args(tmp_path, format="html")) == 0
    assert '<svg class="chart"' in (tmp_path / "report").read_text()


async def test_a_bad_date_is_one_clear_line(engine, tmp_path, capsys):
    assert await run(engine, _args(tmp_path, start="2026-02-30")) == 2
    assert "--from '2026-02-30' is not a date" in capsys.readouterr().err
    assert await run(engine, _args(tmp_path, start="2026-03-02", end="2026-03-01")) == 2
    assert "--to is before --from" in capsys.readouterr().err
