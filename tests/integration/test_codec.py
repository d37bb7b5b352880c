"""The Temporal payload codec: AES-GCM with rotating keys, proven against a real Temporal
dev server (payloads at rest are ciphertext) and served to the Temporal UI over HTTP."""

from __future__ import annotations

import asyncio
import base64
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import ApiServices, create_app
from store.accounts import Accounts, OrgKind, UserRole
from store.event_store import EventStore
from store.keys import Key, Keyring
from store.vault import PersonVault
from workers.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    make_data_converter,
)

OLD = Key.generate()
NEW = Key.generate()
MARKER = "Marker-Ana-Popescu-7731"
UI_ORIGIN = "http://localhost:8233"


def _json_payload(data: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


# --- the codec ---------------------------------------------------------------------------


async def test_round_trip_hides_data_and_metadata_and_names_the_key() -> None:
    codec = EncryptionCodec(Keyring(NEW))
    original = [_json_payload(f'"{MARKER}"'.encode()), _json_payload(b"{}")]

    encoded = await codec.encode(original)

    for payload in encoded:
        assert dict(payload.metadata) == {
            "encoding": ENCODING,
            KEY_ID_METADATA: NEW.key_id.encode(),
        }
        assert MARKER.encode() not in payload.SerializeToString()
        assert b"json/plain" not in payload.SerializeToString()
    assert encoded[0].data != (await codec.encode(original[:1]))[0].data  # fresh nonce
    assert await codec.decode(encoded) == original


async def test_tampered_ciphertext_is_rejected() -> None:
    codec = EncryptionCodec(Keyring(NEW))
    [encoded] = await codec.encode([_json_payload(b'"x"')])
    tampered = Payload(metadata=encoded.metadata, data=encoded.data[:-1] + b"\x00")
    if tampered.data == encoded.data:
        tampered = Payload(metadata=encoded.metadata, data=encoded.data[:-1] + b"\x01")

    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([tampered])


async def test_rotation_old_key_ids_still_decode_and_new_payloads_use_the_new_key() -> None:
    before = EncryptionCodec(Keyring(OLD))
    after = EncryptionCodec(Keyring(NEW, (OLD,)))
    [old_payload] = await before.encode([_json_payload(b'"old"')])

    [new_payload] = await after.encode([_json_payload(b'"new"')])

    assert new_payload.metadata[KEY_ID_METADATA] == NEW.key_id.encode()
    assert await after.decode([old_payload]) == [_json_payload(b'"old"')]
    with pytest.raises(PayloadDecryptionError, match=f"key id '{NEW.key_id}'.*not in the keyring"):
        await before.decode([new_payload])


async def test_unknown_key_id_is_a_clear_error_and_unencrypted_payloads_pass() -> None:
    codec = EncryptionCodec(Keyring(NEW))
    [encoded] = await codec.encode([_json_payload(b'"x"')])
    encoded.metadata[KEY_ID_METADATA] = b"retired-key-0001"

    with pytest.raises(PayloadDecryptionError, match="'retired-key-0001'.*known key ids"):
        await codec.decode([encoded])
    plain = _json_payload(b'"never encoded"')
    assert await codec.decode([plain]) == [plain]


# --- a real Temporal server stores only ciphertext ---------------------------------------


@activity.defn
async def echo(text: str) -> str:
    return text


@workflow.defn(sandboxed=False)
class MarkerWorkflow:
    def __init__(self) -> None:
        self._note: str | None = None

    @workflow.signal
    def note(self, value: str) -> None:
        self._note = value

    @workflow.run
    async def run(self, marker: str) -> str:
        await workflow.wait_condition(lambda: self._note is not None)
        echoed = await workflow.execute_activity(
            echo, f"{marker}/{self._note}", start_to_close_timeout=timedelta(seconds=30)
        )
        if marker.startswith("fail"):
            raise ApplicationError(f"refused {echoed}", non_retryable=True)
        return echoed


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        data_converter=make_data_converter(Keyring(NEW, (OLD,))),
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def _run(env: WorkflowEnvironment, marker: str):
    task_queue = f"codec-test-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client, task_queue=task_queue, workflows=[MarkerWorkflow], activities=[echo]
    ):
        handle = await env.client.start_workflow(
            MarkerWorkflow.run,
            marker,
            id=f"codec-test-{uuid.uuid4()}",
            task_queue=task_queue,
            memo={"note": marker},
        )
        await handle.signal(MarkerWorkflow.note, f"signal-{MARKER}")
        try:
            return handle, await handle.result()
        except WorkflowFailureError as failure:
            return handle, failure


def _raw_client(env: WorkflowEnvironment) -> Client:
    return Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=pydantic_data_converter,  # no codec
    )


async def test_payloads_stored_in_temporal_are_ciphertext(temporal: WorkflowEnvironment) -> None:
    handle, result = await _run(temporal, MARKER)
    assert result == f"{MARKER}/signal-{MARKER}"

    raw = _raw_client(temporal).get_workflow_handle(handle.id)
    history = await raw.fetch_history()
    assert len(history.events) > 5
    for event in history.events:
        assert MARKER.encode() not in event.SerializeToString()
    started = history.events[0].workflow_execution_started_event_attributes
    [stored_input] = started.input.payloads
    assert stored_input.metadata["encoding"] == ENCODING
    assert stored_input.metadata[KEY_ID_METADATA] == NEW.key_id.encode()
    description = await raw.describe()
    assert MARKER.encode() not in description.raw_description.SerializeToString()

    # Without the codec the raw client cannot read the input; with it, it decodes.
    codec = EncryptionCodec(Keyring(NEW))
    [decoded] = await codec.decode([stored_input])
    assert pydantic_data_converter.payload_converter.from_payload(decoded, str) == MARKER
    assert await (await handle.describe()).memo() == {"note": MARKER}


async def test_failure_messages_are_encrypted_too(temporal: WorkflowEnvironment) -> None:
    handle, failure = await _run(temporal, f"fail-{MARKER}")

    assert isinstance(failure, WorkflowFailureError)
    assert MARKER in str(failure.cause)  # decoded through the codec
    history = await _raw_client(temporal).get_workflow_handle(handle.id).fetch_history()
    failed = history.events[-1].workflow_execution_failed_event_attributes.failure
    assert failed.message == "Encoded failure"
    assert failed.encoded_attributes.metadata["encoding"] == ENCODING
    for event in history.events:
        assert MARKER.encode() not in event.SerializeToString()


# --- the codec server endpoints, as the API serves them ---------------------------------
#
# The real app (``api.app.create_app``) with real accounts and tokens: the role check of
# the codec endpoint is the one production runs, not a stub.

CODEC_USERS = [
    ("operator", "ops", UserRole.OPERATOR),
    ("admin", "ops", UserRole.ADMINISTRATOR),
    ("coord.rs", "mission-rs", UserRole.COORDINATOR),
    ("analyst", "analysts", UserRole.ANALYST),
]


def _app(engine: AsyncEngine, accounts: Accounts, codec: EncryptionCodec) -> FastAPI:
    store = EventStore(engine)
    return create_app(ApiServices(
        engine=engine, store=store, temporal=None, accounts=accounts,
        vault=PersonVault(engine, Keyring(Key(b"v" * 32)), store), payload_codec=codec,
        task_queue="unused", codec_cors_origins=[UI_ORIGIN]))


async def _accounts(engine: AsyncEngine) -> tuple[Accounts, dict[str, str]]:
    accounts = Accounts(engine)
    for org_id, kind in (("ops", OrgKind.OPERATOR_TEAM), ("mission-rs", OrgKind.SENDING_MISSION),
                         ("analysts", OrgKind.ANALYST)):
        await accounts.add_org(org_id, kind, org_id, "CH")
    tokens = {}
    for user_id, org_id, role in CODEC_USERS:
        await accounts.add_user(user_id, org_id, role)
        tokens[user_id] = (await accounts.create_token(user_id, timedelta(hours=1))).bearer
    return accounts, tokens


@dataclass
class CodecApi:
    http: httpx.AsyncClient
    tokens: dict[str, str]
    accounts: Accounts

    def auth(self, user: str) -> dict[str, str]:
        return {**UI_HEADERS, "Authorization": f"Bearer {self.tokens[user]}"}


@pytest.fixture
async def api(engine: AsyncEngine) -> AsyncIterator[CodecApi]:
    accounts, tokens = await _accounts(engine)
    app = _app(engine, accounts, EncryptionCodec(Keyring(NEW, (OLD,))))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield CodecApi(client, tokens, accounts)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _encrypted_body(key: Key = NEW) -> dict:
    [encoded] = await EncryptionCodec(Keyring(key)).encode([_json_payload(f'"{MARKER}"'.encode())])
    return {
        "payloads": [
            {
                "metadata": {k: _b64(v) for k, v in encoded.metadata.items()},
                "data": _b64(encoded.data),
            }
        ]
    }


UI_HEADERS = {"Origin": UI_ORIGIN, "X-Namespace": "default"}


def _problem(response: httpx.Response) -> tuple[int, str]:
    """The codec's errors are problems like every other endpoint's (decision 0057)."""
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["type"].endswith("/" + body["code"])
    return body["status"], body["code"]


@pytest.mark.parametrize("path", ["/codec/decode", "/codec/encode"])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic operator"])
async def test_401_without_valid_authentication(
    api: CodecApi, path: str, authorization: str | None
) -> None:
    if authorization == "Basic operator":
        authorization = f"Basic {api.tokens['operator']}"  # a good token, the wrong scheme
    headers = {**UI_HEADERS, **({"Authorization": authorization} if authorization else {})}
    response = await api.http.post(path, json=await _encrypted_body(), headers=headers)

    assert response.status_code == 401
    assert _problem(response) == (401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN  # the UI can read it
    assert MARKER not in response.text


@pytest.mark.parametrize("path", ["/codec/decode", "/codec/encode"])
@pytest.mark.parametrize("user", ["coord.rs", "analyst"])
async def test_a_valid_token_of_another_role_is_refused_403(
    api: CodecApi, path: str, user: str
) -> None:
    response = await api.http.post(path, json=await _encrypted_body(), headers=api.auth(user))

    assert response.status_code == 403, response.text
    assert _problem(response) == (403, "forbidden")
    assert "operators and administrators" in response.json()["detail"]
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN
    assert MARKER not in response.text and _b64(f'"{MARKER}"'.encode()) not in response.text


@pytest.mark.parametrize("user", ["operator", "admin"])
async def test_decode_with_authentication_returns_the_plain_payloads(
    api: CodecApi, user: str
) -> None:
    body = await _encrypted_body(OLD)  # a payload from before the last rotation
    response = await api.http.post("/codec/decode", json=body, headers=api.auth(user))

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN
    [payload] = response.json()["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert base64.b64decode(payload["data"]) == f'"{MARKER}"'.encode()


async def test_a_revoked_operator_token_no_longer_decodes(api: CodecApi, engine) -> None:
    issued = await api.accounts.create_token("operator", timedelta(hours=1))
    headers = {**UI_HEADERS, "Authorization": f"Bearer {issued.bearer}"}
    assert (await api.http.post("/codec/decode", json=await _encrypted_body(),
                                headers=headers)).status_code == 200
    await api.accounts.revoke_token(issued.token_id)
    response = await api.http.post("/codec/decode", json=await _encrypted_body(),
                                   headers=headers)
    assert response.status_code == 401
    assert MARKER not in response.text


async def test_encode_then_decode_round_trips_with_the_current_key(api: CodecApi) -> None:
    http, auth = api.http, api.auth("operator")
    plain = {"payloads": [{"metadata": {"encoding": _b64(b"json/plain")}, "data": _b64(b"42")}]}
    encoded = (await http.post("/codec/encode", json=plain, headers=auth)).json()
    [payload] = encoded["payloads"]
    assert base64.b64decode(payload["metadata"][KEY_ID_METADATA]) == NEW.key_id.encode()

    decoded = (await http.post("/codec/decode", json=encoded, headers=auth)).json()
    assert decoded == plain


async def test_undecodable_or_malformed_bodies_are_400(api: CodecApi) -> None:
    http, auth = api.http, api.auth("operator")
    unknown = await _encrypted_body(Key.generate())
    response = await http.post("/codec/decode", json=unknown, headers=auth)
    assert response.status_code == 400
    assert _problem(response) == (400, "undecryptable")
    assert "not in the keyring" in response.json()["detail"]

    response = await http.post("/codec/decode", content=b"{not json", headers=auth)
    assert response.status_code == 400
    assert _problem(response) == (400, "not_payloads")

    response = await http.post("/codec/decode", content=b"\xff\xfe", headers=auth)
    assert response.status_code == 400  # not UTF-8: refused, not a 500


async def test_cors_preflight_allows_the_ui_origin_only(api: CodecApi) -> None:
    http = api.http
    request_headers = {
        "Origin": UI_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    response = await http.options("/codec/decode", headers=request_headers)

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "x-namespace"} <= allowed

    evil = await http.options(
        "/codec/decode", headers={**request_headers, "Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    assert _problem(evil) == (403, "origin_not_allowed")
    assert "access-control-allow-origin" not in evil.headers
    decoded = await http.post(
        "/codec/decode",
        json=await _encrypted_body(),
        headers={**api.auth("operator"), "Origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in decoded.headers


async def test_the_temporal_cli_decodes_through_the_endpoint_only_when_authenticated(
    temporal: WorkflowEnvironment, engine: AsyncEngine,
) -> None:
    """The protocol as a real Temporal client speaks it, not as this module assumes it,
    against the API app with real tokens: an operator's decodes, a coordinator's not."""
    handle, _ = await _run(temporal, MARKER)
    accounts, tokens = await _accounts(engine)
    app = _app(engine, accounts, EncryptionCodec(Keyring(NEW)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]

        address = temporal.client.service_client.config.target_host
        cli = [str(Path(sys.executable).parent / "temporal"), "workflow", "show"]
        cli += ["--address", address, "--workflow-id", handle.id, "--output", "json"]
        cli += ["--codec-endpoint", f"http://127.0.0.1:{port}/codec"]

        async def show(*auth: str) -> str:
            process = await asyncio.create_subprocess_exec(
                *cli, *auth, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            output, _ = await process.communicate()
            return output.decode()

        # JSON output keeps payload data base64-encoded: the decoded workflow input is
        # exactly the JSON string of the marker.
        decoded_input = _b64(f'"{MARKER}"'.encode())
        assert decoded_input in await show("--codec-auth", f"Bearer {tokens['operator']}")
        # Refused (403): the CLI retries until its deadline (~10 s), then gives up.
        refused = await show("--codec-auth", f"Bearer {tokens['coord.rs']}")
        assert "Error" in refused
        assert decoded_input not in refused and MARKER not in refused
    finally:
        server.should_exit = True
        await serving
