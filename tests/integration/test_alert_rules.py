"""The Prometheus alert rules in deploy/prometheus/alerts.yml (issue 14) are well formed
and name only series a real worker exports: a worker configured as `homeward worker`
configures it (workers.temporal.metrics_runtime) runs a workflow whose activity fails and
one whose workflow task fails, and every metric an expression reads must appear in its
/metrics scrape. The failure counters exist only after a failure, hence the two."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import yaml
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from workers.settings import Settings
from workers.temporal import metrics_runtime

ROOT = Path(__file__).resolve().parents[2]
RULES = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
BIN = Path(sys.executable).parent
# Series Prometheus makes itself for every scrape target, not the worker's.
PROMETHEUS_OWN = {"up"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "and", "or", "unless", "offset", "inf", "nan"}
REQUIRED = {"temporal_workflow_task_execution_failed",
            "temporal_workflow_task_schedule_to_start_latency_bucket",
            "temporal_activity_execution_failed"}


def _rules() -> list[dict]:
    return [rule for group in RULES["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The series an expression reads: identifiers that are not functions, keywords,
    labels (in braces or after by/without) or durations."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        following = expr[match.end():].lstrip()[:1]
        if following != "(" and match.group(0).lower() not in PROMQL_WORDS:
            names.add(match.group(0))
    return names


def test_metric_names_are_read_from_expressions():
    assert metric_names('histogram_quantile(0.95, sum by (le, task_queue) '
                        '(rate(a_bucket{x="y"}[5m]))) > 1000 and on (x) b == 0') == \
        {"a_bucket", "b"}


def test_the_rules_are_well_formed():
    rules = _rules()
    assert {r["alert"] for r in rules} >= {"HomewardWorkflowTaskFailures",
                                          "HomewardWorkflowTaskScheduleToStartSlow",
                                          "HomewardActivityFailures"}
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    used = set().union(*(metric_names(r["expr"]) for r in rules))
    assert REQUIRED <= used
    failures = next(r for r in rules if r["alert"] == "HomewardActivityFailures")
    assert "activity_type" in failures["expr"]  # by type, as the issue asks


@activity.defn
async def refuse() -> None:
    raise ApplicationError("refused", non_retryable=True)


@workflow.defn
class ActivityFails:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(refuse, start_to_close_timeout=timedelta(seconds=5))
        except ActivityError:
            return "the activity failed"
        return "unexpected"


@workflow.defn
class WorkflowTaskFails:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a bug: fails the workflow task, which Temporal retries")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_every_series_the_rules_read_is_in_a_real_worker_scrape():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), dev_server_log_level="error")
    port = _free_port()
    runtime = metrics_runtime(Settings(metrics_port=port))
    try:
        client = await Client.connect(env.client.service_client.config.target_host,
                                      runtime=runtime)
        task_queue = f"alerts-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue,
                          workflows=[ActivityFails, WorkflowTaskFails], activities=[refuse],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            assert await client.execute_workflow(
                ActivityFails.run, id=f"alerts-{uuid.uuid4()}", task_queue=task_queue) == \
                "the activity failed"
            broken = await client.start_workflow(
                WorkflowTaskFails.run, id=f"alerts-{uuid.uuid4()}", task_queue=task_queue)
            async with httpx.AsyncClient() as http:
                while True:
                    scrape = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                    if "temporal_workflow_task_execution_failed{" in scrape:
                        break
                    await asyncio.sleep(0.2)
            await broken.terminate()
    finally:
        await env.shutdown()
    exported = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", scrape, re.M))
    for rule in _rules():
        missing = metric_names(rule["expr"]) - exported - PROMETHEUS_OWN
        assert not missing, f"{rule['alert']} reads {missing}, which the worker does not export"
    # The labels the rules group by are the SDK's.
    assert re.search(r'temporal_activity_execution_failed\{[^}]*activity_type="refuse"', scrape)
    assert re.search(r'temporal_workflow_task_execution_failed\{[^}]*'
                     r'workflow_type="WorkflowTaskFails"', scrape)
    # The latency thresholds are in milliseconds, the unit the worker's buckets use.
    assert 'temporal_workflow_task_schedule_to_start_latency_bucket{' in scrape
    assert re.search(r'schedule_to_start_latency_bucket\{[^}]*le="1000"', scrape)
