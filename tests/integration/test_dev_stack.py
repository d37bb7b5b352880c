"""`homeward dev` really starts PostgreSQL, Temporal, the worker and the API, and stops them.

Runs the console script as a user would, on free ports and a temporary data dir, then
`homeward check` (a workflow appends one event through an activity), Ctrl-C, and a second
start that must find the same data.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWARD_")}
    env.update(
        HOMEWARD_DATA_DIR=str(tmp_path / "data"),
        HOMEWARD_TEMPORAL_ADDRESS=f"127.0.0.1:{_free_port()}",
        HOMEWARD_TEMPORAL_UI_PORT=str(_free_port()),
        HOMEWARD_API_PORT=str(_free_port()),
        HOMEWARD_LOG_FORMAT="json",
    )
    return env


def _start(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    log = log_path.open("w")
    proc = subprocess.Popen([str(BIN / "homeward"), "dev"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if "Press Ctrl-C to stop everything" in text:
            return proc, text
        if proc.poll() is not None:
            pytest.fail(f"homeward dev exited with {proc.returncode}:\n{text}")
        time.sleep(0.3)
    proc.kill()
    pytest.fail(f"homeward dev did not come up:\n{log_path.read_text()}")


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(60)


def _check(env: dict[str, str]) -> str:
    done = subprocess.run([str(BIN / "homeward"), "check"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _processes_using(path: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(cmdline)
    return found


def test_dev_stack_starts_runs_a_workflow_and_stops_cleanly(stack_env, tmp_path):
    data_dir = Path(stack_env["HOMEWARD_DATA_DIR"])
    proc, banner = _start(stack_env, tmp_path / "run1.log")
    try:
        ui_port = stack_env["HOMEWARD_TEMPORAL_UI_PORT"]
        assert f"Temporal UI   http://127.0.0.1:{ui_port}" in banner
        api = f"http://127.0.0.1:{stack_env['HOMEWARD_API_PORT']}"
        health = httpx.get(f"{api}/health", timeout=10)
        assert health.status_code == 200, health.text
        assert health.json()["checks"] == {"database": "ok", "temporal": "ok"}
        assert httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=10).status_code == 200
        first = _check(stack_env)
        assert "appended event at global position 1" in first
    finally:
        code = _stop(proc)
    assert code == 0, (tmp_path / "run1.log").read_text()
    assert "stopped." in (tmp_path / "run1.log").read_text()
    assert _processes_using(data_dir.resolve()) == []  # postgres and temporal are gone

    # A second start reuses the data: the next check event lands at position 2.
    proc, _ = _start(stack_env, tmp_path / "run2.log")
    try:
        assert "appended event at global position 2" in _check(stack_env)
    finally:
        assert _stop(proc) == 0
    assert _processes_using(data_dir.resolve()) == []


def test_dev_refuses_a_busy_port_with_a_clear_message(stack_env, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    stack_env["HOMEWARD_TEMPORAL_ADDRESS"] = f"127.0.0.1:{busy.getsockname()[1]}"
    try:
        done = subprocess.run([str(BIN / "homeward"), "dev"], env=stack_env, capture_output=True,
                              text=True, timeout=120)
    finally:
        busy.close()
    assert done.returncode == 1
    assert "already in use" in done.stderr
    assert _processes_using(Path(stack_env["HOMEWARD_DATA_DIR"]).resolve()) == []
