"""homeward's series on the Temporal SDK's Prometheus endpoints (decision 0060).

The worker's endpoint (``HOMEWARD_METRICS_PORT``) is the SDK's own exporter. Metrics made
through its runtime's ``metric_meter`` appear there beside the ``temporal_*`` series,
under their own names (the SDK's prefix applies to its metrics only; every series carries
its ``service_name="temporal-core-sdk"`` label):

- ``homeward_worker_heartbeat_timestamp_seconds``: Unix time of the last beat; the worker
  beats every ``HEARTBEAT_SECONDS`` while it runs, on the event loop that runs its
  workflows and activities, so a stopped worker or a blocked loop stops the beats
  (``homeward probe worker`` reads it);
- ``homeward_worker_build_info{build_id, task_queue}``: 1.

The API's client gets a runtime of its own whose exporter listens on a free loopback port
(``api_sdk_metrics``): ``GET /metrics`` appends its text.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import structlog
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

log = structlog.get_logger("homeward.metrics")

HEARTBEAT = "homeward_worker_heartbeat_timestamp_seconds"
BUILD_INFO = "homeward_worker_build_info"
HEARTBEAT_SECONDS = 5.0
HEARTBEAT_MAX_AGE_SECONDS = 30.0
"""``homeward probe worker`` calls a worker whose last beat is older than this unhealthy."""
DEV_METRICS_PORT = 9464
"""The worker's metrics port of `homeward dev` (and of the probe on the embedded stack)
when HOMEWARD_METRICS_PORT is unset."""


class WorkerHeartbeat:
    """Beats on ``runtime``'s endpoint while ``worker`` runs (``run``, until ``stop``)."""

    def __init__(self, runtime: Runtime, worker: Worker, build_id: str, task_queue: str,
                 interval: float = HEARTBEAT_SECONDS):
        meter = runtime.metric_meter
        self._worker = worker
        self._interval = interval
        self._beat = meter.create_gauge_float(
            HEARTBEAT, "Unix time of the worker's last heartbeat (every few seconds while "
            "it runs)")
        meter.create_gauge(BUILD_INFO, "The worker's build id and task queue").set(
            1, {"build_id": build_id, "task_queue": task_queue})

    def beat(self) -> None:
        self._beat.set(time.time())

    async def run(self, stop: asyncio.Event) -> None:
        self.beat()  # at once: the probe passes as soon as the worker is up
        while not stop.is_set():
            if self._worker.is_running and not self._worker.is_shutdown:
                self.beat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api_sdk_metrics() -> tuple[Runtime, str]:
    """A runtime for the API's Temporal client, its SDK exporter on a free loopback port,
    and the URL ``GET /metrics`` reads it from. Loopback: nothing outside the process's
    host sees it but through the API's /metrics (and its token)."""
    bind = f"127.0.0.1:{free_loopback_port()}"
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
    return runtime, f"http://{bind}/metrics"


def reachable_host(host: str) -> str:
    """How a client on the same host reaches a server bound to ``host``: a wildcard bind
    on loopback; an IPv6 address in brackets."""
    reach = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{reach}]" if ":" in reach else reach


def metrics_url(host: str, port: int) -> str:
    return f"http://{reachable_host(host)}:{port}/metrics"
