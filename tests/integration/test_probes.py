"""`homeward probe api|worker` against `homeward api` and `homeward worker` processes on a
real Temporal dev server and database (decision 0060): exit 0 and one line while they are
healthy, 1 and one line saying why when they are not. Around it, what the two metrics
endpoints serve: the API's /metrics holds the HTTP, homeward and its client's temporal_
series; the worker's endpoint its heartbeat and build id beside the SDK's series."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from workers.metrics import HEARTBEAT_MAX_AGE_SECONDS
from workers.probe import probe_worker
from workers.settings import Settings
from workflows.search_attributes import ALL

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def probe(env: dict[str, str], target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "homeward"), "probe", target], env=env,
                          capture_output=True, text=True, timeout=120)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stdout + done.stderr).splitlines()
             if line.startswith("homeward probe")]
    assert len(lines) == 1, done.stdout + done.stderr
    return lines[0]


async def until_answers(url: str, wanted: str) -> str:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            try:
                response = await http.get(url)
                if wanted in response.text:
                    return response.text
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail(f"{url} never showed {wanted}")


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[dict[str, str]]:
    temporal = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), search_attributes=ALL,
        dev_server_log_level="error")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWARD_")}
    environ.update(
        HOMEWARD_DATABASE_URL=database_url, HOMEWARD_LOG_FORMAT="json",
        HOMEWARD_TEMPORAL_ADDRESS=temporal.client.service_client.config.target_host,
        HOMEWARD_TASK_QUEUE="probes", HOMEWARD_METRICS_PORT=str(free_port()),
        HOMEWARD_API_PORT=str(free_port()), HOMEWARD_BUILD_ID="probe-build-7",
        HOMEWARD_PAYLOAD_KEY=base64.b64encode(b"p" * 32).decode(),
        HOMEWARD_MASTER_KEY=base64.b64encode(b"m" * 32).decode())
    try:
        yield environ
    finally:
        await temporal.shutdown()


async def test_probes_say_healthy_then_not(env: dict[str, str]):
    # Nothing runs yet: both probes fail, each with one line naming where it looked.
    api_url = f"http://127.0.0.1:{env['HOMEWARD_API_PORT']}"
    worker_url = f"http://127.0.0.1:{env['HOMEWARD_METRICS_PORT']}/metrics"
    for target, where in (("api", f"{api_url}/health/ready"), ("worker", worker_url)):
        done = probe(env, target)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "not reachable at " + where in one_line(done)

    processes = [subprocess.Popen([str(BIN / "homeward"), command], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for command in ("worker", "api")]
    try:
        worker_text = await until_answers(worker_url, "homeward_worker_heartbeat")
        await until_answers(f"{api_url}/metrics", "temporal_request")

        done = probe(env, "worker")
        assert done.returncode == 0, done.stdout + done.stderr
        assert one_line(done).startswith(f"homeward probe worker: worker alive at {worker_url}")
        done = probe(env, "api")
        assert done.returncode == 0, done.stdout + done.stderr
        assert one_line(done) == (f"homeward probe api: api ready at {api_url}/health/ready: "
                                  "database ok, temporal ok, migrations ok")

        # The worker's endpoint: the SDK's series and homeward's, side by side.
        assert "temporal_" in worker_text
        assert 'homeward_worker_build_info{build_id="probe-build-7"' in worker_text
        # The API's /metrics: requests, homeward's counts and its client's SDK series.
        api_text = httpx.get(f"{api_url}/metrics", timeout=60).text
        assert 'http_requests_total{handler="/health/ready"' in api_text
        assert "homeward_cases_open{stage=" in api_text
        assert "temporal_request" in api_text

        # A heartbeat older than the bound is a stuck worker.
        settings = Settings(metrics_port=int(env["HOMEWARD_METRICS_PORT"]))
        healthy, line = await probe_worker(
            settings, now=time.time() + HEARTBEAT_MAX_AGE_SECONDS + 60)
        assert not healthy and "old" in line and "stopped or stuck" in line
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(120)

    for target in ("api", "worker"):
        done = probe(env, target)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "not reachable" in one_line(done)


def test_the_worker_probe_needs_the_metrics_port():
    """Outside the embedded stack (whose worker serves 9464 unless told otherwise)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWARD_")}
    environ["HOMEWARD_DATABASE_URL"] = "postgresql+asyncpg://homeward@127.0.0.1:1/unused"
    done = probe(environ, "worker")
    assert done.returncode == 1
    assert "set HOMEWARD_METRICS_PORT" in one_line(done)


async def test_the_worker_probe_asks_the_dev_stacks_port_on_the_embedded_stack():
    healthy, line = await probe_worker(Settings(metrics_port=None, database_url=None,
                                                metrics_host="127.0.0.2"))
    assert not healthy
    assert line.startswith("worker metrics not reachable at http://127.0.0.2:9464/metrics")
