"""The system's own maintenance runs (decision 0062): the scheduled retention erasure and
the nightly hash-chain verification, each recorded as one event.

A run's event lives in a stream of its own, named by the task and the run's scheduled
time (``maintenance_stream``), never in a case's stream. Payloads hold counts and case
ids only: the erased people's identities are gone, and a broken chain is named by case
and version, never by what the tampered event said.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from domain.kernel import Role
from domain.outside_events import Writer

StreamId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
"""A stream (case) id as the event store holds it: random case ids, ``system-…`` streams."""


class MaintenanceTask(StrEnum):
    RETENTION_ERASURE = "retention-erasure"
    STORE_VERIFY = "store-verify"


def maintenance_stream(task: MaintenanceTask, scheduled_at: datetime) -> str:
    """The stream of one run: ``maintenance-store-verify-20261128T020000Z``."""
    return f"maintenance-{task.value}-{scheduled_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


class _MaintenanceEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    schema_version: ClassVar[int] = 1
    owner: ClassVar[Role] = Role.SYSTEM
    writer: ClassVar[Writer] = Writer.MAINTENANCE

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.TYPE = cls.model_fields["type"].default


class RetentionErased(_MaintenanceEvent):
    """What one retention run erased: exactly what ``homeward retention erase`` would have.
    Each erasure is also ``identity.erased`` in the case's own stream."""

    type: Literal["maintenance.retention_erased"] = "maintenance.retention_erased"
    retention_years: int = Field(ge=0)
    erased: int = Field(ge=0)
    skipped: int = Field(ge=0)  # listed, then active again or no longer past retention
    erased_case_ids: list[StreamId]
    skipped_case_ids: list[StreamId]

    @model_validator(mode="after")
    def _counts_match_the_ids(self) -> Self:
        if (self.erased, self.skipped) != (len(self.erased_case_ids), len(self.skipped_case_ids)):
            raise ValueError("the counts must match the case ids")
        return self


class ChainVerified(_MaintenanceEvent):
    """One walk of every stream's hash chain. The walk stops at the first broken link, so
    a broken chain names one case: ``homeward store verify`` says why."""

    type: Literal["maintenance.chain_verified"] = "maintenance.chain_verified"
    intact: bool
    cases_checked: int = Field(ge=0)
    events_checked: int = Field(ge=0)
    broken_case_id: StreamId | None = None
    broken_version: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _broken_iff_not_intact(self) -> Self:
        if self.intact != (self.broken_case_id is None) or (
            (self.broken_case_id is None) != (self.broken_version is None)
        ):
            raise ValueError("a broken chain names its case and version; an intact one none")
        return self


MAINTENANCE_EVENTS: tuple[type[BaseModel], ...] = (RetentionErased, ChainVerified)

MaintenanceEvent = Annotated[RetentionErased | ChainVerified, Field(discriminator="type")]
