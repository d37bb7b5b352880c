"""Registering a referral: the parties checked, the case id made (the same for every
retry with the same idempotency key), her identity staged in the vault, the return
workflow started, and the identity recorded on the case, without waiting for the
workflow's first append (decision 0054). A retry with the same key answers with the case
only if its whole body is the same: the vault keeps a keyed digest of the first one
(decision 0058); another body is refused, 422 ``idempotency_key_reused``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import structlog
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import RETRY_AFTER_SECONDS, ApiError
from api.service.calls import TEMPORAL_DEADLINE_SECONDS, first_error, temporal_call
from domain import boundary as wf
from domain.journey import messages as msg
from domain.journey.config import JourneyConfig
from domain.journey.vocabulary import (
    LegFailure,
    Placement,
    ReferralSource,
    RiskLevel,
    Sex,
    TravelAdapter,
)
from domain.kernel import AgeCategory, CountryCode, OrganisationId
from domain.reintegration.config import ReintegrationConfig
from store.accounts import Accounts, OrgKind, Principal
from store.event_store import EventStore
from store.events import StoredEvent
from store.vault import IDENTITY_RECORDED, PersonRecord, PersonVault, Staged, VaultError

log = structlog.get_logger("homeward.api")

REFERRAL_WAIT_SECONDS = 15.0
"""How long a retry that must be decided on the case's stream waits for its referral."""
REFERRAL_REGISTERED = "case.referral_registered"
REPAIR_GRACE = timedelta(minutes=5)
"""A staged identity no attempt touched for this long was left by an API that stopped
between the steps (an attempt takes seconds: the start's deadline is 10 s)."""
REPAIR_EVERY_SECONDS = 60.0


class ReferralIn(BaseModel):
    """A new referral, as the sending mission sends it (the body of ``POST /cases``)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    receiving_mission: OrganisationId
    border_partner: OrganisationId
    host_country: CountryCode
    destination_country: CountryCode
    referral_source: ReferralSource
    first_placement: Placement
    risk_level: RiskLevel
    age_category: AgeCategory = Field(
        description="An age band; unknown or disputed age is treated as a minor.")
    witness: bool = False
    sex: Sex = Field(default=Sex.NOT_RECORDED, description="A non-identifying fact for "
                     "statistics: female, male, other or not_recorded.")
    travel_adapter: TravelAdapter | None = Field(
        default=None, description="Default: the server's travel adapter.")
    simulated_disruptions: tuple[LegFailure | None, ...] = Field(default=(), max_length=20)
    journey_config: JourneyConfig | None = Field(
        default=None, description="Only where the server allows it (demos and tests).")
    reintegration_config: ReintegrationConfig | None = Field(
        default=None, description="The follow-up schedule after reception; default: the "
        "programme's (check-ins at 1, 3, 6 and 12 months, a 150 USD grant in three "
        "instalments). Only where the server allows it (demos and tests).")
    identity: PersonRecord | None = Field(
        default=None, description="Stored in the person vault only, never in the workflow.")


@dataclass(frozen=True)
class Referral:
    """A referral checked and ready to start: its case id and the workflow's input."""

    case_id: str
    case_input: msg.ReturnCaseInput
    identity: PersonRecord | None
    idempotency_key: str | None
    request: bytes | None = None  # the body's canonical bytes, with an idempotency key


@dataclass(frozen=True)
class Registered:
    case_id: str
    workflow_id: str
    identity_recorded: bool


@dataclass(frozen=True)
class Repaired:
    confirmed: tuple[str, ...]  # the workflow existed: identity.recorded appended
    discarded: tuple[str, ...]  # the workflow never started: the identity destroyed


class ReferralService:
    def __init__(self, store: EventStore, vault: PersonVault, accounts: Accounts,
                 temporal: Client, task_queue: str, *, allow_journey_config: bool,
                 travel_adapter: str,
                 repair_every: float = REPAIR_EVERY_SECONDS,
                 temporal_deadline: float = TEMPORAL_DEADLINE_SECONDS) -> None:
        self._call = partial(temporal_call, deadline=temporal_deadline)
        self.store = store
        self.vault = vault
        self.accounts = accounts
        self.temporal = temporal
        self.task_queue = task_queue
        self.allow_journey_config = allow_journey_config
        self.travel_adapter = travel_adapter
        self.repair_every = repair_every

    async def check(self, caller: Principal, body: ReferralIn,
                    idempotency_key: str | None) -> Referral:
        """Refuse what cannot be registered (422), before anything is started."""
        if (body.journey_config or body.reintegration_config) and not self.allow_journey_config:
            raise ApiError(422, "journey_config_not_allowed",
                           "this server does not accept a journey configuration override")
        kinds = await self.accounts.org_kinds([body.receiving_mission, body.border_partner])
        for field, wanted in (("receiving_mission", OrgKind.RECEIVING_MISSION),
                              ("border_partner", OrgKind.PARTNER_NGO)):
            if kinds.get(getattr(body, field)) is not wanted:
                raise ApiError(422, "unknown_organisation",
                               f"{field} must name a registered "
                               f"{wanted.value.replace('_', ' ')}")
        if body.identity is not None and not body.identity.model_fields_set:
            raise ApiError(422, "empty_identity", "identity is given but sets no field")
        adapter = body.travel_adapter or TravelAdapter(self.travel_adapter)
        case_id = new_case_id(caller.org_id, idempotency_key)
        try:
            case_input = msg.ReturnCaseInput(
                case_id=case_id, sending_mission=caller.org_id,
                receiving_mission=body.receiving_mission, border_partner=body.border_partner,
                host_country=body.host_country, destination_country=body.destination_country,
                referral_source=body.referral_source, first_placement=body.first_placement,
                risk_level=body.risk_level, age_category=body.age_category,
                witness=body.witness, sex=body.sex, travel_adapter=adapter,
                simulated_disruptions=body.simulated_disruptions,
                config=body.journey_config or JourneyConfig(),
                # Every return is followed up after reception (§5.5).
                reintegration=body.reintegration_config or ReintegrationConfig(),
            )
        except ValueError as error:
            raise ApiError(422, "invalid_referral", first_error(error)) from None
        return Referral(case_id, case_input, body.identity, idempotency_key,
                        canonical_request(body) if idempotency_key is not None else None)

    async def register(self, caller: Principal, referral: Referral) -> Registered:
        """Start the case's return workflow and record her identity, without waiting for
        the workflow's first append (decision 0054); a retry with the same idempotency key
        answers with the case it made.

        With an identity: it is staged in the vault first (no event), the workflow is
        started, then the staged ``identity.recorded`` is appended. A retry finds the
        staged identity and never writes its body's identity over hers. If the API stops
        between the steps, ``repair`` finishes the registration or undoes it.

        With an idempotency key, the digest of the body is kept first: a retry with another
        body is refused before anything else (decision 0058); one refused (4xx) without a
        case leaves no digest, so that a corrected request may use the key."""
        first = await self._remember(referral)
        try:
            return await self._register(caller, referral)
        except ApiError as error:
            if first and error.status < 500:
                await self.vault.forget_request(referral.case_id)
            raise

    async def _remember(self, referral: Referral) -> bool:
        """Keep the digest of the request under its case id; True for the first request,
        False for a retry with the same body; 422 for another body."""
        if referral.request is None:
            return False
        try:
            kept = await self.vault.remember_request(referral.case_id, referral.request)
        except VaultError as error:
            raise ApiError(409, "vault_refused", str(error)) from None
        if kept is False:
            raise _key_reused()
        return kept is True

    async def _register(self, caller: Principal, referral: Referral) -> Registered:
        if referral.identity is None:
            return await self._register_without_identity(caller, referral)
        case_id = referral.case_id
        try:
            staging = await self.vault.stage(
                case_id, referral.identity, referral=_referral_codes(referral.case_input),
                by_org=caller.org_id, by_actor=caller.user_id)
        except VaultError as error:
            raise ApiError(409, "vault_refused", str(error), case_id=case_id) from None
        if staging.outcome is Staged.HELD:
            # The vault holds her identity already (an earlier registration, or a PUT after
            # one made without identity): this case exists, decided on its stream.
            return await self._register_without_identity(caller, referral)
        assert staging.registration is not None
        if (staging.outcome is Staged.PENDING
                and not _same_codes(staging.registration.referral, referral.case_input)):
            raise _key_reused()
        try:
            started = await self._start(referral)
        except WorkflowAlreadyStartedError:
            started = False
        except ApiError as error:
            # Refused (4xx): no case; unanswered (503): perhaps started, the repair decides.
            if error.status < 500 and staging.outcome is Staged.NEW:
                await self.vault.discard(case_id)
            raise
        if not started and staging.outcome is Staged.NEW:
            # A workflow with this id began without this identity: a registration without
            # one, or a concurrent retry that staged first. Decided on its stream.
            try:
                await self._existing_case(referral)
            except ApiError:
                await self.vault.discard(case_id)
                raise
        return Registered(case_id, wf.workflow_id_for(case_id),
                          await self._confirm(caller, referral))

    async def _register_without_identity(self, caller: Principal,
                                         referral: Referral) -> Registered:
        case_id = referral.case_id
        try:
            await self._start(referral)
        except WorkflowAlreadyStartedError:
            events = await self._existing_case(referral)
            recorded = any(e.event_type == IDENTITY_RECORDED for e in events)
            if referral.identity is not None and not recorded:
                # Her identity was given again for a case that has none: record it now
                # that the referral is there (a vault record appends to the stream).
                await self._record(caller, referral)
                recorded = True
            return Registered(case_id, wf.workflow_id_for(case_id), recorded)
        return Registered(case_id, wf.workflow_id_for(case_id), False)

    async def _start(self, referral: Referral) -> bool:
        await self._call(self.temporal.start_workflow(
            wf.WORKFLOW_TYPE, referral.case_input, id=wf.workflow_id_for(referral.case_id),
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL), what="starting the return")
        return True

    async def _existing_case(self, referral: Referral) -> list[StoredEvent]:
        """A workflow with this case id exists already: the same referral (a retry with
        the same key) or 422/409. Read from its stream: waits for the referral event."""
        case_id = referral.case_id
        if referral.idempotency_key is None:  # a random id never collides; say so if it does
            raise ApiError(409, "case_exists", f"case {case_id} exists already")
        await self._wait_for_referral(case_id)
        events = await self.store.read_stream(case_id, limit=200)
        if not _same_referral(events, referral.case_input):
            raise _key_reused()
        return events

    async def _confirm(self, caller: Principal, referral: Referral) -> bool:
        """The workflow is started: append the staged ``identity.recorded``."""
        case_id = referral.case_id
        try:
            if await self.vault.confirm(case_id):
                return True
            # Discarded meanwhile (an API paused past the repair's grace): stage it again.
            assert referral.identity is not None
            await self.vault.stage(case_id, referral.identity,
                                   referral=_referral_codes(referral.case_input),
                                   by_org=caller.org_id, by_actor=caller.user_id)
            return await self.vault.confirm(case_id)
        except VaultError as error:
            raise ApiError(409, "vault_refused", str(error), case_id=case_id) from None
        except Exception as error:  # noqa: BLE001 - the case exists: say which one
            log.error("identity not confirmed", case_id=case_id,
                      error_type=type(error).__name__)
            raise ApiError(503, "identity_not_recorded",
                           f"case {case_id} was registered and its identity stored, but "
                           "not yet recorded on the case; send the same request again with "
                           "the same Idempotency-Key (or PUT /cases/{case_id}/person)",
                           case_id=case_id, retry_after=RETRY_AFTER_SECONDS) from None

    async def _record(self, caller: Principal, referral: Referral) -> None:
        case_id = referral.case_id
        assert referral.identity is not None
        try:
            await self.vault.record(case_id, referral.identity, by_org=caller.org_id,
                                    by_actor=caller.user_id)
        except VaultError as error:
            raise ApiError(409, "vault_refused", str(error), case_id=case_id) from None

    async def _wait_for_referral(self, case_id: str) -> None:
        deadline = asyncio.get_running_loop().time() + REFERRAL_WAIT_SECONDS
        while not await self._referred(case_id):
            if asyncio.get_running_loop().time() > deadline:
                raise ApiError(503, "referral_pending",
                               f"case {case_id} was started but its referral is not recorded "
                               "yet; send the same request again with the same "
                               "Idempotency-Key", retry_after=RETRY_AFTER_SECONDS)
            await asyncio.sleep(0.05)

    async def _referred(self, case_id: str) -> bool:
        events = await self.store.read_stream(case_id, limit=20)
        return any(e.event_type == REFERRAL_REGISTERED for e in events)

    # --- repair ---------------------------------------------------------------------------

    async def run_repairs(self, stop: asyncio.Event) -> None:
        """``repair`` now and every ``repair_every`` seconds until ``stop`` is set, whatever
        the traffic: a server restarted after a crash finishes or undoes what it left."""
        while not stop.is_set():
            try:
                await self.repair()
            except Exception as error:  # noqa: BLE001 - the database may be restarting
                log.warning("registration repair failed", error_type=type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.repair_every)

    async def repair(self, idle_for: timedelta = REPAIR_GRACE, limit: int = 100) -> Repaired:
        """Finish or undo the registrations an API left half done (it stopped between
        staging the identity and recording it): for each staged identity no attempt has
        touched for ``idle_for``, if the case's workflow exists, append its
        ``identity.recorded``; if it was never started, destroy the identity (the client
        was never told the case exists; a retry with the same key registers it anew).
        While Temporal cannot say, the registration is left for the next pass."""
        confirmed: list[str] = []
        discarded: list[str] = []
        for registration in await self.vault.unconfirmed(idle_for, limit):
            case_id = registration.case_id
            try:
                await self.temporal.get_workflow_handle(wf.workflow_id_for(case_id)).describe(
                    rpc_timeout=timedelta(seconds=TEMPORAL_DEADLINE_SECONDS))
            except RPCError as error:
                if error.status is RPCStatusCode.NOT_FOUND:
                    if await self.vault.discard(case_id, idle_for=idle_for):
                        log.warning("staged identity discarded: its case never began",
                                    case_id=case_id)
                        discarded.append(case_id)
                else:
                    log.warning("registration repair deferred", case_id=case_id,
                                error_type=type(error).__name__)
                continue
            if await self.vault.confirm(case_id):
                log.info("staged identity recorded by the repair", case_id=case_id)
                confirmed.append(case_id)
        return Repaired(tuple(confirmed), tuple(discarded))


def _key_reused() -> ApiError:
    return ApiError(422, "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request body; send the "
                    "same body to retry, or use a new key for a new case")


def canonical_request(body: ReferralIn) -> bytes:
    """The request as parsed, in one canonical form: every field with its default filled
    in (omitting ``witness`` is sending ``false``), her identity as the fields she set
    (a field sent as null is recorded, so it counts), keys sorted. Only a keyed digest of
    it is ever stored (``PersonVault.remember_request``)."""
    data = body.model_dump(mode="json", exclude={"identity"})
    data["identity"] = (None if body.identity is None
                        else body.identity.model_dump(mode="json", exclude_unset=True))
    return json.dumps(data, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


REFERRAL_FIELDS = ("receiving_mission", "border_partner", "host_country",
                   "destination_country", "age_category", "witness")
"""What a retry under the same idempotency key must repeat (codes only, no identity)."""


def _referral_codes(case_input: msg.ReturnCaseInput) -> dict[str, object]:
    return {"sending_mission": case_input.sending_mission,
            **{f: v for f, v in case_input.model_dump(mode="json").items()
               if f in REFERRAL_FIELDS}}


def _same_codes(staged: Mapping[str, object], case_input: msg.ReturnCaseInput) -> bool:
    asked = _referral_codes(case_input)
    return all(staged.get(field) == asked[field] for field in REFERRAL_FIELDS)


def _same_referral(events: list[StoredEvent], case_input: msg.ReturnCaseInput) -> bool:
    referral = next((e.payload for e in events if e.event_type == "case.referral_registered"),
                    None)
    if referral is None:
        return False
    asked = {"receiving_mission": case_input.receiving_mission,
             "border_partner": case_input.border_partner,
             "host_country": case_input.host_country,
             "destination_country": case_input.destination_country,
             "age_category": case_input.age_category.value,
             "witness": case_input.witness}
    return all(referral.get(field) == value for field, value in asked.items())


def new_case_id(org_id: str, idempotency_key: str | None) -> str:
    """A random case id, or, with an idempotency key, the same id for every retry by the
    same organisation (a hash: the key itself never appears in the id)."""
    if idempotency_key is None:
        return f"c-{uuid.uuid4().hex[:20]}"
    digest = hashlib.sha256(f"homeward/referral/{org_id}/{idempotency_key}".encode())
    return f"c-{digest.hexdigest()[:20]}"
