"""The one data converter and client factory every client, worker and test uses.

Every process (worker, API, CLI commands, dev stack, demo) connects through
:func:`connect_with`; what it connects to is :func:`temporal_connection` (decision 0059):

1. a profile of the SDK's client configuration (``temporalio.envconfig``): the TOML file
   (``HOMEWARD_TEMPORAL_CONFIG_FILE``, else ``TEMPORAL_CONFIG_FILE``, else the SDK's
   default path when it exists), profile ``HOMEWARD_TEMPORAL_PROFILE``, else
   ``TEMPORAL_PROFILE``, else ``default``, with the ``TEMPORAL_*`` variables on top;
2. every ``HOMEWARD_TEMPORAL_*`` setting that is set, on top of that;
3. homeward's defaults (``localhost:7233``, namespace ``default``, no TLS) for the rest.

The API key and the TLS key material never reach a log line, an error message or a repr:
:meth:`TemporalConnection.describe` says only whether they are set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from store.keys import Keyring
from workers.codec import load_keyring, make_data_converter
from workers.settings import Settings
from workers.tracing import configure_tracing

log = structlog.get_logger("homeward.temporal")


class TemporalConfigError(ValueError):
    """The Temporal connection settings contradict each other or name an unreadable file;
    the message says which setting, never a secret."""


class TemporalUnavailable(RuntimeError):
    """Temporal could not be reached; the message names the address and what to do."""


def payload_keyring(settings: Settings) -> Keyring:
    secret = settings.payload_key.get_secret_value() if settings.payload_key else None
    return load_keyring(secret, settings.payload_key_file, settings.dev_key_dir)


def data_converter(settings: Settings) -> DataConverter:
    return make_data_converter(payload_keyring(settings))


@dataclass(frozen=True)
class TemporalConnection:
    """The arguments of ``Client.connect`` homeward's settings produce. Its repr is
    :meth:`describe`: no API key, no key material, no gRPC metadata values."""

    target_host: str
    namespace: str
    tls: bool | TLSConfig = False
    api_key: str | None = field(default=None, repr=False)
    rpc_metadata: Mapping[str, str] = field(default_factory=dict, repr=False)
    profile: str | None = None  # the profile name read, for messages only

    def connect_kwargs(self) -> dict:
        kwargs: dict = {"target_host": self.target_host, "namespace": self.namespace,
                        "tls": self.tls}
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key
        if self.rpc_metadata:
            kwargs["rpc_metadata"] = dict(self.rpc_metadata)
        return kwargs

    @property
    def tls_summary(self) -> str:
        if self.tls is False:
            return "off"
        if self.tls is True:
            return "on"
        parts = ["mTLS" if self.tls.client_cert else "on"]
        if self.tls.server_root_ca_cert:
            parts.append("own CA")
        if self.tls.domain:
            parts.append(f"server name {self.tls.domain}")
        return ", ".join(parts)

    def describe(self) -> str:
        """One line for people: where, which namespace, TLS, whether an API key is set."""
        profile = f", profile {self.profile}" if self.profile else ""
        api_key = "set" if self.api_key else "none"
        return (f"{self.target_host} (namespace {self.namespace}, TLS {self.tls_summary}, "
                f"API key {api_key}{profile})")

    def __repr__(self) -> str:
        return f"TemporalConnection({self.describe()})"


def temporal_connection(settings: Settings,
                        environ: Mapping[str, str] | None = None) -> TemporalConnection:
    """What :func:`connect_with` connects to: the SDK profile (file and ``TEMPORAL_*`` of
    ``environ``, default the process environment), then the ``HOMEWARD_TEMPORAL_*``
    settings that are set, then homeward's defaults."""
    env = dict(os.environ if environ is None else environ)
    profile = _load_profile(settings, env)
    explicit = settings.model_fields_set
    address = (settings.temporal_address
               if "temporal_address" in explicit or not profile.address else profile.address)
    namespace = (settings.temporal_namespace
                 if "temporal_namespace" in explicit or profile.namespace is None
                 else profile.namespace)
    api_key = (settings.temporal_api_key.get_secret_value() if settings.temporal_api_key
               else profile.api_key) or None
    return TemporalConnection(
        target_host=address,
        namespace=namespace,
        tls=_tls(settings, profile.tls, api_key),
        api_key=api_key,
        rpc_metadata=dict(profile.grpc_meta),
        profile=settings.temporal_profile or env.get("TEMPORAL_PROFILE"),
    )


def dev_server_connection(settings: Settings) -> TemporalConnection:
    """The dev server `homeward dev` starts itself: its address and namespace, no TLS, no
    API key, whatever profile or TEMPORAL_* variables the shell has (they may name
    another cluster)."""
    return TemporalConnection(settings.temporal_address, settings.temporal_namespace)


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting the SDK's metrics to Prometheus at
    ``HOMEWARD_METRICS_HOST:HOMEWARD_METRICS_PORT``, or None when no port is set. One per
    process, made before its client connects; the series carry the SDK's own labels
    (namespace, task queue, workflow and activity types), never a case."""
    if settings.metrics_port is None:
        return None
    bind = f"{settings.metrics_host}:{settings.metrics_port}"
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
    log.info("metrics endpoint", url=f"http://{bind}/metrics")
    return runtime


async def connect_with(settings: Settings,
                       connection: TemporalConnection | None = None,
                       runtime: Runtime | None = None) -> Client:
    """The one way homeward connects to Temporal: ``connection``, default the settings'
    :func:`temporal_connection`, with homeward's payload codec (and ``runtime``, which
    exports metrics) and the process's tracing interceptor, which its workers take too.
    Raises :class:`TemporalUnavailable` (address and advice, no secret) when it cannot."""
    connection = connection or temporal_connection(settings)
    converter = data_converter(settings)
    interceptors = configure_tracing().interceptors()
    try:
        client = await Client.connect(**connection.connect_kwargs(), data_converter=converter,
                                      runtime=runtime, interceptors=interceptors)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one clear message
        raise TemporalUnavailable(unreachable_message(settings, connection, exc)) from None
    log.info("connected to Temporal", address=connection.target_host,
             namespace=connection.namespace, tls=connection.tls_summary,
             api_key="set" if connection.api_key else "none", profile=connection.profile)
    return client


def unreachable_message(settings: Settings, connection: TemporalConnection,
                        exc: BaseException) -> str:
    reason = _reason(exc, connection)
    if settings.embedded and connection.tls is False and not connection.api_key:
        advice = ("start the stack with `make run` (or `homeward dev`), or point "
                  "HOMEWARD_TEMPORAL_ADDRESS at a running Temporal")
    else:
        advice = ("check that Temporal runs there and the connection settings "
                  "(HOMEWARD_TEMPORAL_ADDRESS, _NAMESPACE, _TLS*, _API_KEY, _PROFILE; "
                  "README: Connecting to a secured Temporal)")
    return f"cannot reach Temporal at {connection.describe()}: {reason}. {advice}"


def _reason(exc: BaseException, connection: TemporalConnection) -> str:
    text = str(exc)
    for pattern in (r'message: "([^"]+)"', r'error: "([^"]+)"', r'ConnectError\("([^"]+)"'):
        if found := re.search(pattern, text):
            text = found.group(1)
            break
    else:
        text = text.removeprefix("Failed client connect: ").splitlines()[0] if text else ""
        text = text[:200] or type(exc).__name__
    for secret in (connection.api_key, *_key_material(connection)):
        if secret:
            text = text.replace(secret, "***")
    return text


def _key_material(connection: TemporalConnection) -> list[str]:
    if not isinstance(connection.tls, TLSConfig) or not connection.tls.client_private_key:
        return []
    return [connection.tls.client_private_key.decode("utf-8", "replace")]


def _load_profile(settings: Settings, env: dict[str, str]) -> ClientConfigProfile:
    config_file = settings.temporal_config_file
    if config_file is not None and not config_file.is_file():
        raise TemporalConfigError(
            f"HOMEWARD_TEMPORAL_CONFIG_FILE names {config_file}, which is not a readable file")
    try:
        return ClientConfigProfile.load(
            profile=settings.temporal_profile, config_source=config_file,
            override_env_vars=env)
    except Exception as exc:  # the SDK's ConfigError; its TOML errors quote a line
        where = config_file or env.get("TEMPORAL_CONFIG_FILE") or "the default path"
        raise TemporalConfigError(
            f"cannot load the Temporal client configuration ({where}): {_safe_config_error(exc)}"
        ) from None


def _safe_config_error(exc: BaseException) -> str:
    """The SDK's configuration error without the lines of the file it quotes (one may
    hold the API key): its first and last lines."""
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and "|" not in line]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]}: {lines[-1]}"


_FILES = {
    "temporal_tls_cert_file": "HOMEWARD_TEMPORAL_TLS_CERT_FILE",
    "temporal_tls_key_file": "HOMEWARD_TEMPORAL_TLS_KEY_FILE",
    "temporal_tls_ca_file": "HOMEWARD_TEMPORAL_TLS_CA_FILE",
    "temporal_tls_server_name": "HOMEWARD_TEMPORAL_TLS_SERVER_NAME",
}


def _tls(settings: Settings, profile_tls: ClientConfigTLS | None,
         api_key: str | None) -> bool | TLSConfig:
    given = [name for name in _FILES if getattr(settings, name) is not None]
    if settings.temporal_tls is False:
        if given:
            raise TemporalConfigError(
                f"HOMEWARD_TEMPORAL_TLS is false but {_FILES[given[0]]} is set: remove one")
        return False
    profile_disabled = profile_tls is not None and profile_tls.disabled is True
    wanted = (settings.temporal_tls is True or bool(given)
              or (profile_tls is not None and not profile_disabled)
              or (api_key is not None and not profile_disabled))
    if not wanted:
        return False
    from_profile = profile_tls if profile_tls is not None and not profile_disabled else None

    def source(name: str, profile_value):
        path = getattr(settings, name)
        if path is not None:
            return _read_file(path, _FILES[name])
        return _read_source(profile_value)

    cert = source("temporal_tls_cert_file", from_profile and from_profile.client_cert)
    key = source("temporal_tls_key_file", from_profile and from_profile.client_private_key)
    ca = source("temporal_tls_ca_file", from_profile and from_profile.server_root_ca_cert)
    server_name = settings.temporal_tls_server_name or (
        from_profile.server_name if from_profile else None)
    if (cert is None) != (key is None):
        present, missing = (("certificate", "key") if cert is not None
                            else ("key", "certificate"))
        raise TemporalConfigError(
            f"mTLS needs a client certificate and its key: the {present} is configured, the "
            f"{missing} is not (HOMEWARD_TEMPORAL_TLS_CERT_FILE, HOMEWARD_TEMPORAL_TLS_KEY_FILE)")
    if cert is None and ca is None and server_name is None:
        return True  # the system's roots, the address's host name
    return TLSConfig(server_root_ca_cert=ca, domain=server_name, client_cert=cert,
                     client_private_key=key)


def _read_file(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TemporalConfigError(
            f"{setting} names {path}, which cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None


def _read_source(source: Path | str | bytes | None) -> bytes | None:
    """A TLS file of the SDK profile: a path (read it), or the PEM itself."""
    if source is None:
        return None
    if isinstance(source, Path):
        return _read_file(source, "the Temporal profile's TLS file")
    return source.encode() if isinstance(source, str) else source
