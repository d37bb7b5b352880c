"""The worker's Prometheus endpoint (issue 14): `homeward worker` with
HOMEWARD_METRICS_PORT serves the Temporal SDK's own series at /metrics, labelled by task
queue and workflow type, never by a case; without the setting there is no endpoint."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from workers.codec import make_data_converter
from workers.settings import Settings
from workers.temporal import payload_keyring
from workflows.search_attributes import ALL
from workflows.stack_check import StackCheckResult, StackCheckWorkflow

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_worker_serves_temporal_sdk_metrics(database_url):
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), search_attributes=ALL,
        dev_server_log_level="error")
    port = free_port()
    task_queue = f"metrics-{uuid.uuid4().hex[:8]}"
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWARD_")}
    worker_env.update(
        HOMEWARD_DATABASE_URL=database_url, HOMEWARD_LOG_FORMAT="json",
        HOMEWARD_TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        HOMEWARD_TASK_QUEUE=task_queue, HOMEWARD_METRICS_PORT=str(port),
        HOMEWARD_PAYLOAD_KEY=base64.b64encode(b"p" * 32).decode(),
        HOMEWARD_MASTER_KEY=base64.b64encode(b"m" * 32).decode())
    worker = subprocess.Popen([str(BIN / "homeward"), "worker"], env=worker_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # A workflow through the worker, so that its series have samples. The client
        # needs the worker's payload codec to read the result.
        client = await Client.connect(
            env.client.service_client.config.target_host,
            data_converter=make_data_converter(payload_keyring(Settings(
                payload_key=worker_env["HOMEWARD_PAYLOAD_KEY"]))))
        workflow_id = f"metrics-{uuid.uuid4()}"
        await client.execute_workflow(StackCheckWorkflow.run, id=workflow_id,
                                      task_queue=task_queue, result_type=StackCheckResult)
        async with httpx.AsyncClient() as http:
            text = ""
            for _ in range(300):
                try:
                    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.TransportError:
                    text = ""
                if "temporal_workflow_completed" in text:
                    break
                await asyncio.sleep(0.2)
        assert "temporal_workflow_completed" in text, text[:2000]
        assert "temporal_workflow_task_execution_latency" in text
        assert f'task_queue="{task_queue}"' in text
        assert "StackCheckWorkflow" in text
        # homeward's own series on the same endpoint (decision 0060): its health signal.
        assert "homeward_worker_heartbeat_timestamp_seconds" in text
        assert 'homeward_worker_build_info{build_id="' in text
        assert workflow_id not in text  # types and queues label the series, never a case
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=60)
        await env.shutdown()
    assert f"http://127.0.0.1:{port}/metrics" in output  # the worker says where
