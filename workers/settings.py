"""Every setting homeward reads, in one place (environment prefix ``HOMEWARD_``).

Defaults run the embedded development stack outside any container; docker-compose
sets the same variables for the production shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMEWARD_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./.homeward"),
        description="Where `homeward dev` keeps PostgreSQL data and the Temporal SQLite file.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (postgresql+asyncpg://...). Unset: the embedded PostgreSQL "
        "under data_dir is used.",
    )
    # The Temporal connection (decision 0059; workers.temporal.temporal_connection): a
    # profile of the SDK's client configuration (TOML file, TEMPORAL_* variables), then
    # every HOMEWARD_TEMPORAL_* set here on top of it.
    temporal_address: str = Field(
        default="localhost:7233",
        description="Temporal frontend host:port. Set: wins over the profile's address; "
        "unset: the profile's, else localhost:7233 (where `homeward dev` binds).",
    )
    temporal_namespace: str = Field(
        default="default",
        description="Set: wins over the profile's namespace; unset: the profile's, else "
        "default.",
    )
    temporal_profile: str | None = Field(
        default=None,
        description="Profile of the Temporal client configuration file to use (unset: "
        "TEMPORAL_PROFILE, else 'default').",
    )
    temporal_config_file: Path | None = Field(
        default=None,
        description="The Temporal client configuration (TOML) file; it must exist. Unset: "
        "TEMPORAL_CONFIG_FILE, else the SDK's default path, read when present.",
    )
    temporal_tls: bool | None = Field(
        default=None,
        description="true: TLS on (system roots unless a CA file is given); false: off. "
        "Unset: on when a profile, an API key or a TLS file asks for it.",
    )
    temporal_tls_cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for mTLS; needs the key file."
    )
    temporal_tls_key_file: Path | None = Field(
        default=None, description="Client private key (PEM) for mTLS; needs the cert file."
    )
    temporal_tls_ca_file: Path | None = Field(
        default=None, description="CA certificate (PEM) the server's certificate must chain "
        "to (unset: the system's roots).",
    )
    temporal_tls_server_name: str | None = Field(
        default=None, description="Name the server's certificate must carry (SNI), when it "
        "is not the address's host.",
    )
    temporal_api_key: SecretStr | None = Field(
        default=None, description="API key (Temporal Cloud); turns TLS on unless "
        "HOMEWARD_TEMPORAL_TLS=false. Never logged.",
    )
    temporal_ui_port: int = 8233
    build_id: str | None = Field(
        default=None,
        description="The worker's build id (unset: homeward's package version, "
        "importlib.metadata).",
    )
    task_queue: str = "homeward-returns"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    travel_adapter: Literal["simulated", "manual"] = "simulated"
    master_key: SecretStr | None = Field(
        default=None, description="Vault master keys, base64, current first, comma-separated."
    )
    master_key_file: Path | None = None
    payload_key: SecretStr | None = Field(
        default=None, description="Temporal payload keys, base64, current first, comma-separated."
    )
    payload_key_file: Path | None = None
    retention_years: int = Field(default=5, ge=1, le=100)
    # The maintenance Schedules (decision 0062; workers.schedules.ensure_schedules). A
    # change takes effect at the next `homeward schedules ensure` (the dev stack runs it).
    retention_schedule: str = Field(
        default="30 3 * * *", min_length=1,
        description="Cron expression (minute hour day month weekday) of the retention "
        "erasure Schedule, in HOMEWARD_SCHEDULE_TIME_ZONE.",
    )
    verify_schedule: str = Field(
        default="0 2 * * *", min_length=1,
        description="Cron expression of the nightly hash-chain verification Schedule.",
    )
    schedule_time_zone: str = Field(
        default="UTC", min_length=1,
        description="IANA time zone the Schedules' cron expressions are read in.",
    )
    codec_cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the codec endpoint. Unset: the Temporal UI on "
        "HOMEWARD_TEMPORAL_UI_PORT, http://localhost:<port>.",
    )
    # The worker's sizing (decisions 0055, 0074; workers.worker.worker_options): the SDK's
    # cache and activity slots; 10 workflow tasks at once and a 30 s sticky wait, measured
    # against the SDK's 100 and 10 s with 1,000 cases; a graceful shutdown (the SDK's is 0 s).
    worker_max_cached_workflows: int = Field(
        default=1000, ge=0,
        description="Workflow runs the worker keeps in memory (sticky cache); a run evicted "
        "from it is replayed from its whole history on its next task.",
    )
    worker_max_concurrent_workflow_tasks: int = Field(
        default=10, ge=1,
        description="Workflow tasks the worker runs at once. Its one Python thread runs "
        "them in turn: more only makes each one take longer, and under load past the "
        "workflow task timeout (10 s), when it is thrown away and run again.",
    )
    worker_max_concurrent_activities: int = Field(
        default=100, ge=1, description="Activities the worker runs at once.",
    )
    worker_sticky_queue_timeout: float = Field(
        default=30.0, gt=0,
        description="Seconds a task for a cached run waits for this worker before the "
        "server hands it to any worker (which replays the run's history).",
    )
    worker_graceful_shutdown_timeout: float = Field(
        default=10.0, ge=0,
        description="Seconds the worker gives running activities to finish when it is "
        "stopped, before they are cancelled.",
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="Port of the worker's Prometheus endpoint (/metrics): the Temporal "
        "SDK's own series (temporal_*: workflow task latency and failures, schedule-to-start "
        "latency, activity failures by type). Unset: no endpoint.",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the worker's metrics endpoint binds to.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the API's GET /metrics asks a scraper for. Unset: "
        "/metrics is open (it holds counts and codes, no identity; decision 0060).",
    )
    api_temporal_deadline: float = Field(
        default=10.0, gt=0, le=120,
        description="Seconds the API waits on one Temporal call (a query, an Update, a "
        "start) before it answers without it: 202 for a task completion (applied once if "
        "it arrives), else 503 worker_unavailable with Retry-After.",
    )
    api_max_inflight: int = Field(
        default=128, ge=1,
        description="Requests the API serves at once; past it a request is answered 503 "
        "overloaded with Retry-After: 1 at once (/health is never refused).",
    )
    api_allow_journey_config: bool | None = Field(
        default=None,
        description="Accept per-referral journey durations (demos, tests). Unset: allowed "
        "on the embedded development stack only.",
    )

    @model_validator(mode="after")
    def _codec_origin_follows_the_ui_port(self) -> Settings:
        if "codec_cors_origins" not in self.model_fields_set:
            self.codec_cors_origins = [f"http://localhost:{self.temporal_ui_port}"]
        return self

    @property
    def embedded(self) -> bool:
        """True for the development stack: no external database configured."""
        return self.database_url is None

    @property
    def dev_key_dir(self) -> Path | None:
        """Where development keys are generated; None outside the embedded stack, so that
        production without configured keys fails loudly instead of inventing one."""
        return self.data_dir if self.embedded else None

    @property
    def temporal_port(self) -> int:
        return int(self.temporal_address.rsplit(":", 1)[1])

    @property
    def temporal_host(self) -> str:
        return self.temporal_address.rsplit(":", 1)[0]

    @property
    def temporal_ui_url(self) -> str:
        """The Temporal Web UI of `homeward dev`: the frontend's host, the UI's port."""
        return f"http://{self.temporal_host}:{self.temporal_ui_port}"


def load_settings() -> Settings:
    return Settings()
