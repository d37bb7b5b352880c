"""The Temporal connection as an operator meets it (decision 0059): every command that
needs Temporal says in one line where it could not reach it and what to do, with a
non-zero exit and no traceback; and the one connect function reaches the dev server with
TLS off, its worker recording homeward's build id."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog
from temporalio.testing import WorkflowEnvironment

from store.event_store import EventStore
from workers.settings import Settings
from workers.temporal import connect_with
from workers.worker import build_id, build_worker
from workflows.search_attributes import ALL
from workflows.stack_check import StackCheckResult, StackCheckWorkflow

BIN = Path(sys.executable).parent
API_KEY = "tcld-SECRET-api-key-0123456789"
PAYLOAD_KEY = base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOMEWARD_", "TEMPORAL_"))}
    # A configured database (never reached: Temporal is asked first) and a payload key.
    env.update(HOMEWARD_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/none",
               HOMEWARD_PAYLOAD_KEY=PAYLOAD_KEY, HOMEWARD_LOG_FORMAT="json", **env_vars)
    return subprocess.run([str(BIN / "homeward"), command], env=env, capture_output=True,
                          text=True, timeout=300)  # generous: only stops a hung command


@pytest.mark.parametrize("command", ["check", "demo", "worker"])
def test_temporal_down_is_one_clear_line(command, closed_port):
    done = _run(command, HOMEWARD_TEMPORAL_ADDRESS=f"127.0.0.1:{closed_port}",
                HOMEWARD_TEMPORAL_API_KEY=API_KEY, HOMEWARD_TEMPORAL_TLS="false")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"homeward {command}: cannot reach Temporal at 127.0.0.1:"
                           f"{closed_port} (namespace default, TLS off, API key set): "
                           "Connection refused. check that Temporal runs there")
    assert API_KEY not in done.stdout + done.stderr


def test_a_contradictory_tls_setting_is_one_clear_line(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not read")
    done = _run("check", HOMEWARD_TEMPORAL_TLS="false", HOMEWARD_TEMPORAL_TLS_CA_FILE=str(ca))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == ("homeward check: HOMEWARD_TEMPORAL_TLS is false but "
                                   "HOMEWARD_TEMPORAL_TLS_CA_FILE is set: remove one")


def test_help_names_the_configured_ui_port():
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWARD_")}
    env["HOMEWARD_TEMPORAL_UI_PORT"] = "9444"
    done = subprocess.run([str(BIN / "homeward"), "--help"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert "Temporal (UI on :9444)" in done.stdout
    assert "8233" not in done.stdout


@pytest.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), search_attributes=ALL)
    try:
        yield env
    finally:
        await env.shutdown()


async def test_connect_with_reaches_the_dev_server_and_the_worker_records_its_build_id(
        dev_server, engine, tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("TEMPORAL_"):
            monkeypatch.delenv(name)
    settings = Settings(data_dir=tmp_path, temporal_address=dev_server.client.service_client
                        .config.target_host, temporal_tls=False, build_id="test-build-7")
    with structlog.testing.capture_logs() as logs:
        client = await connect_with(settings)
    assert client.namespace == "default"
    assert await client.service_client.check_health()
    assert [e["tls"] for e in logs if e["event"] == "connected to Temporal"] == ["off"]

    task_queue = f"test-{uuid.uuid4()}"
    async with build_worker(client, EventStore(engine), task_queue, "simulated", settings):
        handle = await client.start_workflow(
            StackCheckWorkflow.run, id=f"stack-check-{uuid.uuid4()}", task_queue=task_queue)
        result = await handle.result()
    assert isinstance(result, StackCheckResult)
    # Recorded on every workflow task this worker completed (no versioning: it routes
    # nothing, it tells which code ran).
    recorded = [event.workflow_task_completed_event_attributes.worker_version.build_id
                async for event in handle.fetch_history_events()
                if event.HasField("workflow_task_completed_event_attributes")]
    assert recorded and set(recorded) == {build_id(settings)} == {"test-build-7"}


def test_an_invalid_setting_is_named_without_its_value():
    done = _run("check", HOMEWARD_TEMPORAL_TLS=f"maybe-{API_KEY}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == ("homeward check: HOMEWARD_TEMPORAL_TLS: Input should be a "
                                   "valid boolean, unable to interpret input")
