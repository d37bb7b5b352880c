"""docker-compose.yml cannot be started here; this keeps it honest against the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from workers.settings import Settings
from workflows.search_attributes import ALL

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SETTING_ENV_NAMES = {f"HOMEWARD_{name.upper()}" for name in Settings.model_fields}


def _env(service: str) -> dict[str, str]:
    return dict(SERVICES[service].get("environment") or {})


def test_production_shape_has_every_part():
    expected = {"temporal-postgresql", "temporal-schema", "temporal", "temporal-namespace",
                "temporal-ui", "postgres", "migrate", "worker", "api"}
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


def test_worker_and_api_reach_the_production_servers():
    for name in ("worker", "api", "migrate"):
        env = _env(name)
        assert env["HOMEWARD_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["HOMEWARD_DATABASE_URL"]
        assert env["HOMEWARD_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert _env("api")["HOMEWARD_API_PORT"] == "8000"
    # Settings parse the production environment without error.
    Settings(**{k.removeprefix("HOMEWARD_").lower(): v for k, v in _env("api").items()
                if k.startswith("HOMEWARD_")})


def test_search_attributes_registered_match_the_code():
    script = "\n".join(SERVICES["temporal-namespace"]["command"])
    registered = dict(re.findall(r"--name (\w+) --type (\w+)", script))
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "BOOL": "Bool"}
    expected = {key.name: kinds[key.indexed_value_type.name] for key in ALL}
    assert registered == expected


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
