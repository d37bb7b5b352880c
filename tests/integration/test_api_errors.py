"""Every malformed request is a 4xx with a code and a sentence, never echoes what was
sent (it may be a name), carries the request id, and writes nothing. Every error is an
RFC 9457 problem (``application/problem+json``, decision 0057)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import structlog
import uvicorn
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from test_api_statistics import api  # noqa: F401 - the fixture
from test_read_models import new, referral

from api.app import ApiServices, create_app
from store.accounts import Accounts, OrgKind, UserRole
from store.database import create_engine
from store.event_store import EventStore
from store.events import StoreError
from store.keys import Key, Keyring
from store.vault import PersonVault
from workers.codec import EncryptionCodec
from workers.logging import configure_logging
from workers.services import allow_journey_config, api_services
from workers.settings import Settings

NAME = "Marker-Name-Never-Echoed"


async def test_malformed_requests_get_a_code_and_a_sentence(api):  # noqa: F811
    http, store, tokens = api
    coord = {"Authorization": f"Bearer {tokens['coord.rs']}"}
    cases = [
        ("POST", "/cases", {"content": b"{not json", "headers": {
            **coord, "content-type": "application/json"}}, 422, "invalid_request"),
        ("POST", "/cases", {"json": {"receiving_mission": NAME}, "headers": coord}, 422,
         "invalid_request"),
        ("POST", "/cases", {"json": [NAME], "headers": coord}, 422, "invalid_request"),
        ("GET", "/cases/x", {"headers": coord}, 422, "invalid_request"),
        ("GET", f"/cases/{'a' * 80}", {"headers": coord}, 422, "invalid_request"),
        ("GET", "/tasks/not-a-uuid", {"headers": coord}, 422, "invalid_request"),
        ("GET", "/tasks?overdue=perhaps", {"headers": coord}, 422, "invalid_request"),
        ("GET", "/nowhere", {"headers": coord}, 404, "not_found"),
        ("DELETE", "/cases", {"headers": coord}, 405, "method_not_allowed"),
        ("PUT", f"/cases/c-{uuid.uuid4().hex[:12]}/person",
         {"json": {"given_names": NAME, "unknown_field": NAME}, "headers": coord}, 422,
         "invalid_request"),
    ]
    for method, path, kwargs, status, code in cases:
        response = await http.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        assert_problem(response, status, code)
        assert NAME not in response.text
    assert await store.count_cases() == 0


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    """The answer is an RFC 9457 problem carrying the code and the request id."""
    assert response.headers["content-type"] == "application/problem+json"
    error = response.json()
    assert error["type"] == f"https://homeward.example/problems/{code}"
    assert error["title"] and error["status"] == status and error["code"] == code
    assert error["detail"] and error["request_id"] == response.headers["x-request-id"]
    assert "error" not in error and "message" not in error
    return error


async def test_a_validation_problem_names_each_field_and_rule(api):  # noqa: F811
    http, _, tokens = api
    response = await http.post("/cases", json={"receiving_mission": NAME},
                               headers={"Authorization": f"Bearer {tokens['coord.rs']}"})
    error = assert_problem(response, 422, "invalid_request")
    fields = {problem["field"] for problem in error["problems"]}
    assert "destination_country" in fields
    assert all(problem["rule"] and problem["message"] for problem in error["problems"])


async def test_unauthenticated_is_a_problem_with_the_bearer_challenge(api):  # noqa: F811
    http, _, _ = api
    response = await http.get("/tasks")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = await http.get("/tasks", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"


async def test_a_method_not_allowed_says_which_are(api):  # noqa: F811
    http, _, tokens = api
    response = await http.delete("/tasks", headers={
        "Authorization": f"Bearer {tokens['coord.rs']}"})
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


async def test_a_request_id_offered_by_the_caller_is_replaced(api):  # noqa: F811
    """A caller's id could carry a name into logs and the append-only audit log."""
    http, _, tokens = api
    response = await http.get("/tasks", headers={
        "Authorization": f"Bearer {tokens['coord.rs']}", "X-Request-ID": "maria.popescu.1990"})
    assert response.headers["x-request-id"] != "maria.popescu.1990"
    assert len(response.headers["x-request-id"]) == 32


async def test_a_chunked_body_over_the_limit_is_refused(api):  # noqa: F811
    http, store, tokens = api

    async def chunks():
        for _ in range(9):
            yield b"x" * 2**20

    response = await http.put("/cases/c-0000000000000000000a/person", content=chunks(),
                              headers={"Authorization": f"Bearer {tokens['coord.rs']}",
                                       "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert_problem(response, 413, "payload_too_large")


async def test_an_oversized_body_is_refused_before_it_is_read(api):  # noqa: F811
    http, store, tokens = api
    response = await http.post("/cases", content=b"x" * (8 * 2**20 + 1), headers={
        "Authorization": f"Bearer {tokens['coord.rs']}", "content-type": "application/json"})
    assert_problem(response, 413, "payload_too_large")
    assert await store.count_cases() == 0


# --- a database error: no SQL parameter in the answer or the logs -----------------------


async def _serve(app) -> tuple[uvicorn.Server, asyncio.Task, str]:
    """The app under uvicorn configured as ``homeward api`` runs it (its records go to
    the process's logging), so that what uvicorn logs of a failure is seen too."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None,
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, serving, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def _logs_captured() -> Iterator[io.StringIO]:
    """Every log line of the process, as ``homeward`` configures logging, into a buffer;
    the configuration the test found is restored afterwards."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    logs = io.StringIO()
    configure_logging("json", "INFO", stream=logs)
    try:
        yield logs
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)


async def _fail_inserts_of(conn, event_type: str) -> None:
    """The database refuses to store events of this type (a failing disk, a bug)."""
    await conn.execute(text(
        "CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'simulated storage failure'; END $$"))
    await conn.execute(text(
        "CREATE TRIGGER fail_insert BEFORE INSERT ON events FOR EACH ROW "
        f"WHEN (NEW.event_type = '{event_type}') EXECUTE FUNCTION fail_insert()"))


async def test_sql_parameters_never_appear_in_an_error_or_a_log_line(database_url):
    """README: SQL parameters never appear in errors. The database fails the insert of a
    sharing grant whose parameters hold a consent record id; neither the 500 nor any log
    line (ours, uvicorn's traceback) carries it."""
    engine = create_engine(database_url)  # the engine every homeward process uses
    try:
        accounts = Accounts(engine)
        for org_id, kind in (("mission-rs", OrgKind.SENDING_MISSION),
                             ("mission-md", OrgKind.RECEIVING_MISSION),
                             ("ngo-md-border", OrgKind.PARTNER_NGO)):
            await accounts.add_org(org_id, kind, org_id, "RS")
        await accounts.add_user("coord.rs", "mission-rs", UserRole.COORDINATOR)
        token = (await accounts.create_token("coord.rs", timedelta(hours=1))).bearer
        store = EventStore(engine)
        keys = Keyring(Key(b"k" * 32))
        vault = PersonVault(engine, keys, store)
        case_id = f"c-{uuid.uuid4().hex[:12]}"
        await store.append(case_id, None, [new(referral(), 0, "mission-rs")])
        note = await vault.add_note(case_id, "assessment_note", "signed, names ngo-md-border",
                                    by_org="mission-rs", by_actor="coord.rs")
        record_id = f"rec_{note.hex}"  # the parameter to look for
        async with engine.begin() as conn:
            await _fail_inserts_of(conn, "sharing.granted")

        app = create_app(ApiServices(
            engine=engine, store=store, temporal=None, accounts=accounts, vault=vault,
            payload_codec=EncryptionCodec(keys), task_queue="unused", codec_cors_origins=[]))
        with _logs_captured() as logs:
            server, serving, base_url = await _serve(app)
            try:
                async with httpx.AsyncClient(base_url=base_url) as http:
                    response = await http.post(
                        f"/cases/{case_id}/sharing",
                        json={"org_id": "ngo-md-border", "consent_record_id": record_id},
                        headers={"Authorization": f"Bearer {token}"})
            finally:
                server.should_exit = True
                await serving
    finally:
        await engine.dispose()

    assert response.status_code == 500, response.text
    error = response.json()
    assert error["code"] == "internal_error"
    assert response.headers["content-type"] == "application/problem+json"
    written = logs.getvalue()
    [failure] = [json.loads(line) for line in written.splitlines()
                 if json.loads(line)["event"] == "unhandled error"]
    # The failure is logged by its type, request id and frames; nobody logs its text.
    assert failure["error_type"] == "StoreError"
    assert failure["request_id"] == error["request_id"]
    assert any(frame.startswith("event_store.py:") for frame in failure["raised_at"])
    assert "Exception in ASGI application" not in written
    for seen in (response.text, written):
        assert "simulated storage failure" not in seen and "INSERT INTO" not in seen
        assert record_id not in seen and note.hex not in seen
        assert "ngo-md-border" not in seen


async def test_a_database_error_names_no_sql_parameter(database_url):
    """The error itself, wherever it is shown (a CLI prints it): the engine every homeward
    process uses hides statement parameters."""
    engine = create_engine(database_url)
    marker = "rec_SqlParameterMarker7Q"
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE guarded (v text CHECK (v = 'x'))"))
            await _fail_inserts_of(conn, "sharing.granted")
        with pytest.raises(DBAPIError) as refused:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO guarded VALUES (:v)"), {"v": marker})
        with pytest.raises(StoreError) as failed:
            await EventStore(engine).append("c-sqlparam01", None, [
                new(("sharing.granted", {"consent_record_id": marker}), 0)])
    finally:
        await engine.dispose()
    assert "guarded" in str(refused.value)  # the statement is named ...
    assert marker not in str(refused.value)  # ... its parameters are not
    # The store names the failure's type only: a driver's message may quote the row.
    assert "RaiseError" in str(failed.value)
    assert "simulated storage failure" not in str(failed.value)
    assert marker not in str(failed.value)


# --- journey configuration in a referral -------------------------------------------------

REFERRAL = {"receiving_mission": "mission-md", "border_partner": "ngo-md-border",
            "host_country": "RS", "destination_country": "MD", "referral_source": "police_raid",
            "first_placement": "shelter_low_risk", "risk_level": "low", "age_category": "18_24",
            "identity": {"given_names": NAME}}
OVERRIDES = [{"journey_config": {"departure_lead": "PT1S"}},
             {"reintegration_config": {"check_in_window": "P1D"}}]


async def _refuses_journey_config(http, token: str, store) -> None:
    for override in OVERRIDES:
        response = await http.post("/cases", json={**REFERRAL, **override},
                                   headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "journey_config_not_allowed"
        assert NAME not in response.text
    assert await store.count_cases() == 0  # no case, no identity, no workflow


async def test_a_referral_with_its_own_journey_configuration_is_refused_when_off(api):  # noqa: F811
    http, store, tokens = api  # ApiServices' default: journey configuration off
    await _refuses_journey_config(http, tokens["coord.rs"], store)


def test_journey_configuration_is_on_in_the_embedded_stack_only_unless_set(monkeypatch):
    monkeypatch.delenv("HOMEWARD_API_ALLOW_JOURNEY_CONFIG", raising=False)
    external = "postgresql+asyncpg://homeward@db/homeward"
    assert allow_journey_config(Settings(database_url=None))
    assert not allow_journey_config(Settings(database_url=external))
    assert allow_journey_config(Settings(database_url=external, api_allow_journey_config=True))
    monkeypatch.setenv("HOMEWARD_API_ALLOW_JOURNEY_CONFIG", "false")
    assert not allow_journey_config(Settings(database_url=None))


async def test_the_production_shape_refuses_a_journey_configuration(database_url, monkeypatch):
    """Built as ``homeward api`` builds it, against a database of its own (not the embedded
    stack) and the setting unset."""
    monkeypatch.delenv("HOMEWARD_API_ALLOW_JOURNEY_CONFIG", raising=False)
    key = base64.b64encode(b"m" * 32).decode()
    settings = Settings(database_url=database_url, master_key=key, payload_key=key)
    engine = create_engine(database_url)
    try:
        services = api_services(settings, engine, client=None)
        assert services.allow_journey_config is False
        await services.accounts.add_org("mission-rs", OrgKind.SENDING_MISSION, "RS", "RS")
        await services.accounts.add_user("coord.rs", "mission-rs", UserRole.COORDINATOR)
        token = (await services.accounts.create_token("coord.rs", timedelta(hours=1))).bearer
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                     base_url="http://homeward.test") as http:
            await _refuses_journey_config(http, token, services.store)
    finally:
        await engine.dispose()
