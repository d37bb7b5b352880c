"""The README's API walk-through (docs/api-walkthrough.sh) runs as written against the
real dev stack, so the documentation cannot rot."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from workers.dev import DevStack
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_readme_walkthrough_runs_against_the_dev_stack(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", temporal_address=f"127.0.0.1:{_free_port()}",
                        temporal_ui_port=_free_port(), api_port=_free_port())
    async with DevStack(settings):
        env = {**os.environ, "HOMEWARD_DATA_DIR": str(settings.data_dir),
               "HOMEWARD_API_PORT": str(settings.api_port)}
        proc = await asyncio.create_subprocess_exec(
            "bash", str(ROOT / "docs" / "api-walkthrough.sh"), env=env, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    text = output.decode()
    assert proc.returncode == 0, text
    assert "['reception.handoff_confirmed', 'reception.safe_arrival_confirmed'" in text
    assert "fact_not_expected_now" in text  # a fact out of its moment is refused
    assert "unknown_record" in text  # a record id that is no record of the vault too
    assert "['border.hold_lifted']" in text  # and each fact is recorded at once
    assert "walk-through complete: case " in text
    assert "Ana" in text.split("stating the purpose")[1]  # the purposeful read answers
