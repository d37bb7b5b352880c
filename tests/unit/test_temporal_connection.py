"""The Temporal connection the settings produce (decision 0059), without a server: the
arguments of ``Client.connect`` from homeward's settings, the SDK's profiles and the
``TEMPORAL_*`` variables, and that no API key or key material reaches a message or a log."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.service import TLSConfig

from workers import temporal
from workers.settings import Settings
from workers.temporal import (
    TemporalConfigError,
    TemporalConnection,
    TemporalUnavailable,
    connect_with,
    dev_server_connection,
    temporal_connection,
)
from workers.worker import build_id, worker_options

API_KEY = "tcld-api-key-SECRET-0123456789"
CERT = b"-----BEGIN CERTIFICATE-----\nclient-cert\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nPRIVATE-KEY-MATERIAL-xyz\n-----END PRIVATE KEY-----\n"
CA = b"-----BEGIN CERTIFICATE-----\nserver-ca\n-----END CERTIFICATE-----\n"
NO_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _no_homeward_environment(monkeypatch, tmp_path):
    """Settings() reads the process environment: none of the developer's own."""
    import os

    for name in list(os.environ):
        if name.startswith(("HOMEWARD_", "TEMPORAL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.config/temporalio file


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, Path]:
    files = {"cert": CERT, "key": KEY, "ca": CA}
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(data)
    return paths


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_dev_server_without_tls():
    conn = temporal_connection(Settings(), NO_ENV)
    assert conn.connect_kwargs() == {"target_host": "localhost:7233", "namespace": "default",
                                     "tls": False}


def test_mtls_files_give_a_tls_config_with_their_bytes(pems):
    settings = Settings(temporal_address="temporal.example.org:7233",
                        temporal_namespace="homeward-prod",
                        temporal_tls_cert_file=pems["cert"], temporal_tls_key_file=pems["key"],
                        temporal_tls_ca_file=pems["ca"],
                        temporal_tls_server_name="frontend.internal")
    kwargs = temporal_connection(settings, NO_ENV).connect_kwargs()
    assert kwargs["target_host"] == "temporal.example.org:7233"
    assert kwargs["namespace"] == "homeward-prod"
    assert kwargs["tls"] == TLSConfig(server_root_ca_cert=CA, domain="frontend.internal",
                                      client_cert=CERT, client_private_key=KEY)
    assert "api_key" not in kwargs


def test_tls_on_alone_uses_the_system_roots():
    assert temporal_connection(Settings(temporal_tls=True), NO_ENV).tls is True
    only_ca = temporal_connection(Settings(temporal_tls_server_name="x.internal"), NO_ENV)
    assert only_ca.tls == TLSConfig(domain="x.internal")


def test_an_api_key_turns_tls_on_unless_it_is_turned_off():
    conn = temporal_connection(Settings(temporal_api_key=SecretStr(API_KEY)), NO_ENV)
    assert conn.connect_kwargs()["api_key"] == API_KEY
    assert conn.tls is True
    off = Settings(temporal_api_key=SecretStr(API_KEY), temporal_tls=False)
    assert temporal_connection(off, NO_ENV).tls is False


def test_settings_come_from_homeward_variables(monkeypatch, pems):
    monkeypatch.setenv("HOMEWARD_TEMPORAL_ADDRESS", "ns.acct.tmprl.cloud:7233")
    monkeypatch.setenv("HOMEWARD_TEMPORAL_NAMESPACE", "ns.acct")
    monkeypatch.setenv("HOMEWARD_TEMPORAL_API_KEY", API_KEY)
    monkeypatch.setenv("HOMEWARD_TEMPORAL_TLS", "true")
    monkeypatch.setenv("HOMEWARD_TEMPORAL_TLS_CA_FILE", str(pems["ca"]))
    settings = Settings()
    assert API_KEY not in repr(settings)
    kwargs = temporal_connection(settings, NO_ENV).connect_kwargs()
    assert kwargs == {"target_host": "ns.acct.tmprl.cloud:7233", "namespace": "ns.acct",
                      "api_key": API_KEY, "tls": TLSConfig(server_root_ca_cert=CA)}


@pytest.mark.parametrize("given, missing", [("cert", "key"), ("key", "certificate")])
def test_mtls_needs_both_the_certificate_and_its_key(pems, given, missing):
    name = {"cert": "temporal_tls_cert_file", "key": "temporal_tls_key_file"}[given]
    with pytest.raises(TemporalConfigError, match=f"the {missing} is not"):
        temporal_connection(Settings(**{name: pems[given]}), NO_ENV)


def test_tls_off_with_tls_files_is_refused(pems):
    with pytest.raises(TemporalConfigError, match="HOMEWARD_TEMPORAL_TLS is false but "
                                                  "HOMEWARD_TEMPORAL_TLS_CA_FILE is set"):
        temporal_connection(Settings(temporal_tls=False, temporal_tls_ca_file=pems["ca"]),
                            NO_ENV)


def test_an_unreadable_file_is_named_by_its_setting(tmp_path):
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(TemporalConfigError, match="HOMEWARD_TEMPORAL_TLS_CA_FILE names .*"
                                                  "nowhere.pem, which cannot be read"):
        temporal_connection(Settings(temporal_tls_ca_file=missing), NO_ENV)
    with pytest.raises(TemporalConfigError, match="HOMEWARD_TEMPORAL_CONFIG_FILE names"):
        temporal_connection(Settings(temporal_config_file=tmp_path / "none.toml"), NO_ENV)


PROFILES = """
[profile.default]
address = "file-default:7233"

[profile.cloud]
address = "ns.acct.tmprl.cloud:7233"
namespace = "ns.acct"
api_key = "{api_key}"

[profile.mtls]
address = "temporal.internal:7233"
namespace = "homeward"
[profile.mtls.tls]
server_name = "frontend.internal"
client_cert_path = "{cert}"
client_key_path = "{key}"
server_ca_cert_path = "{ca}"
"""


@pytest.fixture
def profiles(tmp_path, pems) -> Path:
    return _toml(tmp_path, PROFILES.format(api_key=API_KEY, **{k: str(v) for k, v in pems.items()}))


def test_a_profile_of_the_config_file_is_used(profiles):
    cloud = temporal_connection(Settings(temporal_config_file=profiles,
                                         temporal_profile="cloud"), NO_ENV)
    assert cloud.connect_kwargs() == {"target_host": "ns.acct.tmprl.cloud:7233",
                                      "namespace": "ns.acct", "api_key": API_KEY, "tls": True}
    mtls = temporal_connection(Settings(temporal_config_file=profiles,
                                        temporal_profile="mtls"), NO_ENV)
    assert mtls.tls == TLSConfig(server_root_ca_cert=CA, domain="frontend.internal",
                                 client_cert=CERT, client_private_key=KEY)
    default = temporal_connection(Settings(temporal_config_file=profiles), NO_ENV)
    assert (default.target_host, default.namespace, default.tls) == (
        "file-default:7233", "default", False)


def test_profile_precedence(profiles, tmp_path):
    """HOMEWARD_TEMPORAL_* set > TEMPORAL_* variables > the file's profile > defaults;
    HOMEWARD_TEMPORAL_PROFILE > TEMPORAL_PROFILE; TEMPORAL_CONFIG_FILE finds the file."""
    env = {"TEMPORAL_CONFIG_FILE": str(profiles), "TEMPORAL_PROFILE": "cloud"}
    assert temporal_connection(Settings(), env).target_host == "ns.acct.tmprl.cloud:7233"
    picked = temporal_connection(Settings(temporal_profile="mtls"), env)
    assert picked.target_host == "temporal.internal:7233"
    assert picked.profile == "mtls"
    env_address = {**env, "TEMPORAL_ADDRESS": "from-env:7233", "TEMPORAL_NAMESPACE": "env-ns"}
    from_env = temporal_connection(Settings(), env_address)
    assert (from_env.target_host, from_env.namespace) == ("from-env:7233", "env-ns")
    assert from_env.api_key == API_KEY  # the rest of the profile stays
    ours = temporal_connection(Settings(temporal_address="ours:7233",
                                        temporal_namespace="ours"), env_address)
    assert (ours.target_host, ours.namespace) == ("ours:7233", "ours")
    other_key = temporal_connection(Settings(temporal_api_key=SecretStr("other")), env)
    assert other_key.api_key == "other"


def test_homeward_tls_settings_override_the_profiles(profiles, tmp_path):
    other_cert, other_key = tmp_path / "c2.pem", tmp_path / "k2.pem"
    other_cert.write_bytes(b"cert-2")
    other_key.write_bytes(b"key-2")
    settings = Settings(temporal_config_file=profiles, temporal_profile="mtls",
                        temporal_tls_cert_file=other_cert, temporal_tls_key_file=other_key)
    tls = temporal_connection(settings, NO_ENV).tls
    assert tls == TLSConfig(server_root_ca_cert=CA, domain="frontend.internal",
                            client_cert=b"cert-2", client_private_key=b"key-2")
    off = Settings(temporal_config_file=profiles, temporal_profile="mtls", temporal_tls=False)
    assert temporal_connection(off, NO_ENV).tls is False
    env_off = temporal_connection(Settings(temporal_config_file=profiles,
                                           temporal_profile="cloud"), {"TEMPORAL_TLS": "false"})
    assert env_off.tls is False


def test_an_unknown_profile_is_a_clear_error(profiles):
    with pytest.raises(TemporalConfigError, match="Profile 'staging' not found"):
        temporal_connection(Settings(temporal_config_file=profiles,
                                     temporal_profile="staging"), NO_ENV)


def test_a_broken_config_file_is_reported_without_its_lines(tmp_path):
    broken = _toml(tmp_path, f'[profile.default]\napi_key = "{API_KEY}\n')
    with pytest.raises(TemporalConfigError) as refused:
        temporal_connection(Settings(temporal_config_file=broken), NO_ENV)
    assert "TOML parse error" in str(refused.value)
    assert API_KEY not in str(refused.value)


def test_the_dev_stack_connects_to_its_own_server_whatever_the_shell_says(profiles):
    env_settings = Settings(temporal_address="127.0.0.1:17233", temporal_config_file=profiles,
                            temporal_profile="cloud")
    assert dev_server_connection(env_settings).connect_kwargs() == {
        "target_host": "127.0.0.1:17233", "namespace": "default", "tls": False}


def test_no_secret_in_the_description_or_repr(pems):
    conn = temporal_connection(Settings(temporal_api_key=SecretStr(API_KEY),
                                        temporal_tls_cert_file=pems["cert"],
                                        temporal_tls_key_file=pems["key"]), NO_ENV)
    for text in (conn.describe(), repr(conn), str(conn)):
        assert API_KEY not in text and "PRIVATE-KEY-MATERIAL" not in text
    assert conn.describe() == "localhost:7233 (namespace default, TLS mTLS, API key set)"


async def test_connect_with_passes_the_arguments_and_logs_no_secret(monkeypatch, pems, tmp_path):
    seen = {}

    async def fake_connect(**kwargs):
        seen.update(kwargs)
        return object()

    monkeypatch.setattr(Client, "connect", staticmethod(fake_connect))
    settings = Settings(data_dir=tmp_path, temporal_address="t.example.org:7233",
                        temporal_api_key=SecretStr(API_KEY),
                        temporal_tls_cert_file=pems["cert"], temporal_tls_key_file=pems["key"])
    with structlog.testing.capture_logs() as logs:
        await connect_with(settings)
    assert seen["api_key"] == API_KEY
    assert seen["tls"].client_private_key == KEY
    assert seen["data_converter"] is not None
    [line] = [entry for entry in logs if entry["event"] == "connected to Temporal"]
    assert line["address"] == "t.example.org:7233" and line["api_key"] == "set"
    assert line["tls"] == "mTLS"
    assert API_KEY not in repr(logs) and "PRIVATE-KEY-MATERIAL" not in repr(logs)


async def test_an_unreachable_temporal_is_one_message_without_secret(monkeypatch, pems,
                                                                      tmp_path):
    async def refused(**kwargs):
        raise RuntimeError(
            'Failed client connect: Server connection error: tonic::transport::Error('
            'Transport, ConnectError(ConnectError("tcp connect error", 127.0.0.1:1, Os { '
            f'code: 111, kind: ConnectionRefused, message: "Connection refused" }})) {API_KEY}')

    monkeypatch.setattr(Client, "connect", staticmethod(refused))
    settings = Settings(data_dir=tmp_path, temporal_address="127.0.0.1:1",
                        temporal_api_key=SecretStr(API_KEY))
    with pytest.raises(TemporalUnavailable) as failed:
        await connect_with(settings)
    message = str(failed.value)
    assert message.startswith("cannot reach Temporal at 127.0.0.1:1 (namespace default, TLS on, "
                              "API key set): Connection refused. ")
    assert API_KEY not in message and "\n" not in message
    # Without anything secured, on the embedded stack: how to start it.
    plain = temporal.unreachable_message(Settings(), TemporalConnection("localhost:7233",
                                                                        "default"),
                                         RuntimeError("x"))
    assert "`make run`" in plain


def test_the_codec_origin_and_ui_links_follow_the_ui_port(monkeypatch):
    assert Settings().codec_cors_origins == ["http://localhost:8233"]
    assert Settings(temporal_ui_port=9233).codec_cors_origins == ["http://localhost:9233"]
    monkeypatch.setenv("HOMEWARD_TEMPORAL_UI_PORT", "9333")
    assert Settings().codec_cors_origins == ["http://localhost:9333"]
    assert Settings().temporal_ui_url == "http://localhost:9333"
    monkeypatch.setenv("HOMEWARD_CODEC_CORS_ORIGINS", '["https://ui.example.org"]')
    assert Settings().codec_cors_origins == ["https://ui.example.org"]


def test_the_build_id_is_the_package_version_unless_set(monkeypatch):
    from importlib.metadata import version

    assert build_id(Settings()) == version("homeward")
    assert worker_options(Settings())["build_id"] == version("homeward")
    monkeypatch.setenv("HOMEWARD_BUILD_ID", "2026.12.1-abc123")
    assert worker_options(Settings())["build_id"] == "2026.12.1-abc123"
