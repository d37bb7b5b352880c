"""Every setting homeward reads, in one place (environment prefix ``HOMEWARD_``).

Defaults run the embedded development stack outside any container; docker-compose
sets the same variables for the production shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
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
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
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
    codec_cors_origins: list[str] = ["http://localhost:8233"]
    # The worker's sizing (decision 0055; workers.worker.worker_options). The defaults are
    # the SDK's, which no sizing measured on the 2-core machine beat; the graceful shutdown
    # is the one change (the SDK's is 0 s).
    worker_max_cached_workflows: int = Field(
        default=1000, ge=0,
        description="Workflow runs the worker keeps in memory (sticky cache); a run evicted "
        "from it is replayed from its whole history on its next task.",
    )
    worker_max_concurrent_workflow_tasks: int = Field(
        default=100, ge=1,
        description="Workflow tasks the worker runs at once. Its one Python thread runs "
        "them in turn: more only makes each one take longer.",
    )
    worker_max_concurrent_activities: int = Field(
        default=100, ge=1, description="Activities the worker runs at once.",
    )
    worker_sticky_queue_timeout: float = Field(
        default=10.0, gt=0,
        description="Seconds a task for a cached run waits for this worker before the "
        "server hands it to any worker (which replays the run's history).",
    )
    worker_graceful_shutdown_timeout: float = Field(
        default=10.0, ge=0,
        description="Seconds the worker gives running activities to finish when it is "
        "stopped, before they are cancelled.",
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


def load_settings() -> Settings:
    return Settings()
