"""`homeward dev` really starts PostgreSQL, Temporal, the worker and the API, and stops them.

Runs the console script as a user would, on free ports and a temporary data dir, then
`homeward check` (a workflow appends one event through an activity), Ctrl-C, and a second
start that must find the same data. Around it: the UI's codec endpoint, the order of
shutdown, and a busy port named before anything starts.

Bounds on real time below only stop a broken stack from hanging the suite; they are
generous because the machine running the tests may be shared and loaded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from workers.dev import (
    DEV_METRICS_PORT,
    DevStack,
    StackStartError,
    TemporalDevServer,
    check_ports,
)
from workers.settings import Settings

BIN = Path(sys.executable).parent
# The parts of `homeward dev`, in the order they start; they stop in the reverse order.
START_ORDER = ["postgres", "database pool", "temporal", "worker", "projector", "api"]


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
        HOMEWARD_METRICS_PORT=str(_free_port()),  # not the dev default 9464: may be taken
        HOMEWARD_LOG_FORMAT="json",
    )
    return env


def _start(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    log = log_path.open("w")
    proc = subprocess.Popen([str(BIN / "homeward"), "dev"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
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
    return proc.wait(300)


def _check(env: dict[str, str]) -> str:
    done = subprocess.run([str(BIN / "homeward"), "check"], env=env, capture_output=True,
                          text=True, timeout=300)
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


def _parts(log_text: str, event: str) -> list[str]:
    """The ``part`` of every ``event`` log line of the dev stack, in order."""
    parts = []
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event and "part" in entry:
            parts.append(entry["part"])
    return parts


def _codec_flag(cmdline: str) -> str:
    args = cmdline.split()
    return args[args.index("--ui-codec-endpoint") + 1]


def test_dev_stack_starts_runs_a_workflow_and_stops_cleanly(stack_env, tmp_path):
    data_dir = Path(stack_env["HOMEWARD_DATA_DIR"])
    api_port = stack_env["HOMEWARD_API_PORT"]
    codec = f"http://localhost:{api_port}/codec"
    proc, banner = _start(stack_env, tmp_path / "run1.log")
    try:
        ui_port = stack_env["HOMEWARD_TEMPORAL_UI_PORT"]
        assert f"Temporal UI   http://127.0.0.1:{ui_port}" in banner
        # The UI decodes payloads through the API: the flag is passed, printed, and the UI
        # itself reports it.
        assert f"codec         {codec}  (the UI decodes payloads here; sign in once at " \
               f"{codec}/session)" in banner
        [temporal] = [c for c in _processes_using(data_dir.resolve()) if "start-dev" in c]
        assert _codec_flag(temporal) == codec
        ui_settings = httpx.get(f"http://127.0.0.1:{ui_port}/api/v1/settings", timeout=60)
        assert ui_settings.json()["Codec"]["Endpoint"] == codec
        api = f"http://127.0.0.1:{api_port}"
        # ...and the API lets the UI (here not on its default port) call it from its page.
        for ui_origin in (f"http://127.0.0.1:{ui_port}", f"http://localhost:{ui_port}"):
            preflight = httpx.options(f"{api}/codec/decode", timeout=60, headers={
                "Origin": ui_origin, "Access-Control-Request-Method": "POST"})
            assert preflight.status_code == 204, (ui_origin, preflight.status_code)
            assert preflight.headers["access-control-allow-origin"] == ui_origin
        health = httpx.get(f"{api}/health", timeout=60)
        assert health.status_code == 200, health.text
        assert health.json()["checks"] == {"database": "ok", "temporal": "ok",
                                           "migrations": "ok"}
        # Metrics are on, and the banner says where (decision 0060).
        worker_metrics = f"http://127.0.0.1:{stack_env['HOMEWARD_METRICS_PORT']}/metrics"
        assert f"metrics       {api}/metrics (API), {worker_metrics} (worker)" in banner
        api_metrics = httpx.get(f"{api}/metrics", timeout=60).text
        assert "homeward_cases_open{stage=" in api_metrics
        assert "temporal_" in api_metrics  # the stack's client, shared by the API
        worker_text = httpx.get(worker_metrics, timeout=60).text
        assert "homeward_worker_heartbeat_timestamp_seconds" in worker_text
        assert "temporal_" in worker_text
        for target in ("api", "worker"):  # what compose's healthchecks run
            probed = subprocess.run([str(BIN / "homeward"), "probe", target], env=stack_env,
                                    capture_output=True, text=True, timeout=120)
            assert probed.returncode == 0, probed.stdout + probed.stderr
        # The maintenance schedules exist on the dev server, and the banner says where
        # (decision 0062).
        assert (f"schedules     retention erasure and chain verification: "
                f"http://127.0.0.1:{ui_port}/namespaces/default/schedules") in banner
        listed = subprocess.run([str(BIN / "homeward"), "schedules", "list"], env=stack_env,
                                capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        for schedule in ("homeward-retention-erasure", "homeward-store-verify"):
            assert schedule in listed.stdout, listed.stdout
        assert httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=60).status_code == 200
        first = _check(stack_env)
        assert "appended check event number 1 " in first
    finally:
        code = _stop(proc)
    log_text = (tmp_path / "run1.log").read_text()
    assert code == 0, log_text
    assert "stopped." in log_text
    # Ctrl-C stops every part, the last started first: the API before the worker it
    # relies on, Temporal before PostgreSQL.
    assert _parts(log_text, "started") == START_ORDER
    assert _parts(log_text, "stopping") == START_ORDER[::-1]
    assert _parts(log_text, "stopped") == START_ORDER[::-1]
    assert _parts(log_text, "part did not stop cleanly") == []
    assert _processes_using(data_dir.resolve()) == []  # postgres and temporal are gone

    # A second start reuses the data: the next check event is the second.
    proc, _ = _start(stack_env, tmp_path / "run2.log")
    try:
        assert "appended check event number 2 " in _check(stack_env)
    finally:
        assert _stop(proc) == 0
    assert _processes_using(data_dir.resolve()) == []


async def test_a_part_that_fails_to_start_stops_the_ones_before_it(stack_env, tmp_path):
    """Temporal cannot open its database file: PostgreSQL and the pool, started before
    it, are stopped again, in reverse order, and nothing keeps running."""
    data_dir = Path(stack_env["HOMEWARD_DATA_DIR"])
    (data_dir / "temporal.db").mkdir(parents=True)  # a directory where the file should be
    settings = Settings(data_dir=data_dir,
                        temporal_address=stack_env["HOMEWARD_TEMPORAL_ADDRESS"],
                        temporal_ui_port=int(stack_env["HOMEWARD_TEMPORAL_UI_PORT"]),
                        api_port=int(stack_env["HOMEWARD_API_PORT"]))
    stack = DevStack(settings)
    with pytest.raises(StackStartError, match="the Temporal dev server exited with code"):
        async with stack:
            pytest.fail("the stack started without a Temporal database")
    assert stack.stopped == ["temporal", "database pool", "postgres"]
    assert _processes_using(data_dir.resolve()) == []


@pytest.mark.parametrize("api_host", ["127.0.0.1", "0.0.0.0", "localhost"])
def test_the_ui_is_started_with_the_apis_codec_endpoint(api_host, tmp_path):
    # "localhost" like the UI's own address: the codec session cookie must be same-site.
    server = TemporalDevServer(Settings(api_host=api_host, api_port=8123), tmp_path)
    assert _codec_flag(" ".join(server.command())) == "http://localhost:8123/codec"
    other = TemporalDevServer(Settings(api_host="api.example.org", api_port=443), tmp_path)
    assert _codec_flag(" ".join(other.command())) == "http://api.example.org:443/codec"


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on, as another program would."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


PORTS = {
    "temporal": ("HOMEWARD_TEMPORAL_ADDRESS", "the Temporal frontend"),
    "ui": ("HOMEWARD_TEMPORAL_UI_PORT", "the Temporal Web UI"),
    "api": ("HOMEWARD_API_PORT", "the HTTP API"),
    "metrics": ("HOMEWARD_METRICS_PORT", "the worker's metrics endpoint"),
}


def _occupy(env: dict[str, str], which: str, port: int) -> None:
    variable = PORTS[which][0]
    env[variable] = f"127.0.0.1:{port}" if which == "temporal" else str(port)


def _settings(env: dict[str, str]) -> Settings:
    return Settings(temporal_address=env["HOMEWARD_TEMPORAL_ADDRESS"],
                    temporal_ui_port=int(env["HOMEWARD_TEMPORAL_UI_PORT"]),
                    api_port=int(env["HOMEWARD_API_PORT"]),
                    metrics_port=int(env["HOMEWARD_METRICS_PORT"]))


@pytest.mark.parametrize("which", PORTS)
def test_the_port_check_names_the_busy_port(which, listening, stack_env):
    check_ports(_settings(stack_env))  # all free: nothing to say
    _occupy(stack_env, which, listening)
    with pytest.raises(StackStartError) as refused:
        check_ports(_settings(stack_env))
    variable, part = PORTS[which]
    assert str(refused.value).startswith(
        f"port {listening} is already in use (127.0.0.1:{listening}, needed by {part}): ")
    assert variable in str(refused.value)
    if which == "api":  # a stack without its own API (the e2e tests) does not need it
        check_ports(_settings(stack_env), with_api=False)


@pytest.mark.parametrize("which", PORTS)
def test_dev_refuses_a_busy_port_with_a_clear_message(which, listening, stack_env):
    _occupy(stack_env, which, listening)
    done = subprocess.run([str(BIN / "homeward"), "dev"], env=stack_env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    [message] = [line for line in done.stderr.splitlines() if line.startswith("homeward dev:")]
    assert message.startswith(f"homeward dev: port {listening} is already in use "
                              f"(127.0.0.1:{listening}, needed by {PORTS[which][1]}): ")
    # Checked before anything starts: no database was even created.
    data_dir = Path(stack_env["HOMEWARD_DATA_DIR"])
    assert not (data_dir / "postgres").exists()
    assert _parts(done.stdout + done.stderr, "started") == []
    assert _processes_using(data_dir.resolve()) == []


def test_dev_turns_the_worker_metrics_on_at_9464_by_default(stack_env):
    """Without HOMEWARD_METRICS_PORT, `homeward dev` serves the worker's metrics on 9464:
    with that port taken (here, or by anything else), it refuses before starting."""
    env = {k: v for k, v in stack_env.items() if k != "HOMEWARD_METRICS_PORT"}
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            busy.bind(("127.0.0.1", DEV_METRICS_PORT))
            busy.listen()
        except OSError:
            pass  # something else listens there already: as good
        done = subprocess.run([str(BIN / "homeward"), "dev"], env=env, capture_output=True,
                              text=True, timeout=300)
    assert DEV_METRICS_PORT == 9464
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("homeward dev: port 9464 is already in use (127.0.0.1:9464, needed by the "
            "worker's metrics endpoint): ") in done.stderr
