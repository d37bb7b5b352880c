"""The maintenance Schedules (decision 0062): retention erasure and the nightly hash-chain
verification, as Temporal Schedules that start the workflows of ``workflows.maintenance``.

``ensure_schedules`` creates them or brings them to the settings' times, idempotently:
`homeward schedules ensure` (compose's one-shot service) and the dev stack run it. A
schedule an operator paused stays paused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.maintenance import MaintenanceTask
from workers.settings import Settings
from workflows.maintenance import ChainVerificationWorkflow, RetentionErasureWorkflow

# After an outage (server or worker down at the scheduled time), a missed run starts once
# when they are back within this window; older misses wait for the next night.
CATCHUP_WINDOW = timedelta(hours=12)


@dataclass(frozen=True)
class MaintenanceSchedule:
    task: MaintenanceTask
    workflow: Callable[..., Any]
    cron: Callable[[Settings], str]
    note: str

    @property
    def schedule_id(self) -> str:
        return f"homeward-{self.task.value}"


SCHEDULES: tuple[MaintenanceSchedule, ...] = (
    MaintenanceSchedule(
        MaintenanceTask.RETENTION_ERASURE, RetentionErasureWorkflow.run,
        lambda s: s.retention_schedule,
        "Erases identities of cases closed longer than HOMEWARD_RETENTION_YEARS ago; "
        "records maintenance.retention_erased.",
    ),
    MaintenanceSchedule(
        MaintenanceTask.STORE_VERIFY, ChainVerificationWorkflow.run,
        lambda s: s.verify_schedule,
        "Verifies every hash chain of the event store; records maintenance.chain_verified "
        "and fails on tampering.",
    ),
)


def find_schedule(name: str) -> MaintenanceSchedule:
    """By task (``store-verify``) or schedule id (``homeward-store-verify``)."""
    for schedule in SCHEDULES:
        if name in (schedule.task.value, schedule.schedule_id):
            return schedule
    names = ", ".join(s.task.value for s in SCHEDULES)
    raise KeyError(f"no schedule {name!r}: one of {names}")


def build_schedule(schedule: MaintenanceSchedule, settings: Settings) -> Schedule:
    return Schedule(
        # The server appends the scheduled time to this id: one workflow id per run.
        action=ScheduleActionStartWorkflow(
            schedule.workflow, id=schedule.schedule_id, task_queue=settings.task_queue),
        spec=ScheduleSpec(cron_expressions=[schedule.cron(settings)],
                          time_zone_name=settings.schedule_time_zone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                              catchup_window=CATCHUP_WINDOW),
        state=ScheduleState(note=schedule.note),
    )


async def ensure_schedules(
    client: Client, settings: Settings
) -> list[tuple[str, Literal["created", "updated"]]]:
    """Create each maintenance schedule, or update one that exists to the settings (its
    paused state and an operator's note kept); what was done to each, in order."""
    done: list[tuple[str, Literal["created", "updated"]]] = []
    for schedule in SCHEDULES:
        wanted = build_schedule(schedule, settings)
        try:
            await client.create_schedule(schedule.schedule_id, wanted)
            done.append((schedule.schedule_id, "created"))
            continue
        except ScheduleAlreadyRunningError:
            pass

        def update(current: ScheduleUpdateInput, wanted: Schedule = wanted) -> ScheduleUpdate:
            wanted.state = current.description.schedule.state
            return ScheduleUpdate(schedule=wanted)

        await client.get_schedule_handle(schedule.schedule_id).update(update)
        done.append((schedule.schedule_id, "updated"))
    return done


@dataclass(frozen=True)
class ScheduleStatus:
    schedule_id: str
    cron: str
    time_zone: str
    paused: bool
    next_runs: list[str]
    recent_runs: list[str]  # "<scheduled time> <workflow id>"


async def describe_schedules(client: Client) -> list[ScheduleStatus | str]:
    """Each maintenance schedule's state, or its id alone when it does not exist."""
    from temporalio.service import RPCError, RPCStatusCode

    found: list[ScheduleStatus | str] = []
    for schedule in SCHEDULES:
        try:
            d = await client.get_schedule_handle(schedule.schedule_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            found.append(schedule.schedule_id)
            continue
        spec = d.schedule.spec
        found.append(ScheduleStatus(
            schedule_id=schedule.schedule_id,
            cron=" | ".join(spec.cron_expressions) or _calendar_text(spec),
            time_zone=spec.time_zone_name or "UTC",
            paused=d.schedule.state.paused,
            next_runs=[t.isoformat() for t in d.info.next_action_times[:3]],
            recent_runs=[f"{r.scheduled_at.isoformat()} {getattr(r.action, 'workflow_id', '')}"
                         for r in d.info.recent_actions[-3:]],
        ))
    return found


def _calendar_text(spec: ScheduleSpec) -> str:
    # The server keeps a cron expression as calendar specs: show hour and minute.
    parts = []
    for cal in spec.calendars:
        hours = ",".join(f"{r.start:02d}" for r in cal.hour)
        minutes = ",".join(f"{r.start:02d}" for r in cal.minute)
        parts.append(f"at {hours}:{minutes}" if hours and minutes else repr(cal))
    return "; ".join(parts)


async def trigger_schedule(client: Client, name: str) -> str:
    """Start one run of a schedule now (its overlap policy applies); its schedule id."""
    schedule = find_schedule(name)
    await client.get_schedule_handle(schedule.schedule_id).trigger()
    return schedule.schedule_id
