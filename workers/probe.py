"""``homeward probe api|worker``: health checks for orchestrators (compose healthchecks; the
image has no curl). Exit 0 healthy, 1 not, and one line that says why (decision 0060).

- ``api``: ``GET /health/ready`` at ``HOMEWARD_API_HOST:HOMEWARD_API_PORT``: database,
  Temporal and migrations at head.
- ``worker``: its metrics endpoint (``HOMEWARD_METRICS_HOST:HOMEWARD_METRICS_PORT``; on the
  embedded stack 9464 when unset, as `homeward dev` serves it) answers, and its heartbeat
  is at most ``HEARTBEAT_MAX_AGE_SECONDS`` old.
"""

from __future__ import annotations

import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from workers.metrics import (
    DEV_METRICS_PORT,
    HEARTBEAT,
    HEARTBEAT_MAX_AGE_SECONDS,
    metrics_url,
    reachable_host,
)
from workers.settings import Settings

TIMEOUT_SECONDS = 5.0


def api_ready_url(settings: Settings) -> str:
    return f"http://{reachable_host(settings.api_host)}:{settings.api_port}/health/ready"


async def probe_api(settings: Settings) -> tuple[bool, str]:
    url = api_ready_url(settings)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
            response = await http.get(url)
    except httpx.HTTPError as exc:
        return False, f"api not reachable at {url}: {type(exc).__name__}"
    try:
        checks = response.json().get("checks", {})
    except ValueError:
        checks = {}
    said = ", ".join(f"{name} {answer}" for name, answer in checks.items())
    if response.status_code != 200:
        return False, f"api not ready ({response.status_code}) at {url}: {said or 'no checks'}"
    return True, f"api ready at {url}: {said}"


async def probe_worker(settings: Settings, now: float | None = None) -> tuple[bool, str]:
    port = settings.metrics_port
    if port is None and settings.embedded:
        port = DEV_METRICS_PORT  # where `homeward dev` serves it
    if port is None:
        return False, ("the worker has no health endpoint: set HOMEWARD_METRICS_PORT (for the "
                       "worker and for this probe)")
    url = metrics_url(settings.metrics_host, port)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
            response = await http.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return False, f"worker metrics not reachable at {url}: {type(exc).__name__}"
    beats = [sample.value for family in text_string_to_metric_families(response.text)
             for sample in family.samples if sample.name == HEARTBEAT]
    if not beats:
        return False, f"worker at {url} has no heartbeat ({HEARTBEAT}) yet"
    age = (time.time() if now is None else now) - max(beats)
    if age > HEARTBEAT_MAX_AGE_SECONDS:
        return False, (f"worker heartbeat at {url} is {age:.0f} s old (more than "
                       f"{HEARTBEAT_MAX_AGE_SECONDS:.0f} s): the worker is stopped or stuck")
    return True, f"worker alive at {url}: heartbeat {max(age, 0):.0f} s ago"


async def run_probe(settings: Settings, target: str) -> int:
    healthy, line = await (probe_api(settings) if target == "api" else probe_worker(settings))
    print(f"homeward probe {target}: {line}", file=sys.stdout if healthy else sys.stderr,
          flush=True)
    return 0 if healthy else 1
