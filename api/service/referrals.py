"""Registering a referral: the parties checked, the case id made (the same for every
retry with the same idempotency key), the return workflow started, and her identity put
in the vault once the referral is the case's first event."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass

import structlog
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.errors import ApiError
from api.service.calls import first_error, temporal_call
from domain import boundary as wf
from domain.journey import messages as msg
from domain.journey.config import JourneyConfig
from domain.journey.vocabulary import (
    LegFailure,
    Placement,
    ReferralSource,
    RiskLevel,
    TravelAdapter,
)
from domain.kernel import AgeCategory, CountryCode, OrganisationId
from domain.reintegration.config import ReintegrationConfig
from store.accounts import Accounts, OrgKind, Principal
from store.event_store import EventStore
from store.events import StoredEvent
from store.vault import PersonRecord, PersonVault, VaultError

log = structlog.get_logger("homeward.api")

REFERRAL_WAIT_SECONDS = 15.0


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


@dataclass(frozen=True)
class Registered:
    case_id: str
    workflow_id: str
    identity_recorded: bool


class ReferralService:
    def __init__(self, store: EventStore, vault: PersonVault, accounts: Accounts,
                 temporal: Client, task_queue: str, *, allow_journey_config: bool,
                 travel_adapter: str) -> None:
        self.store = store
        self.vault = vault
        self.accounts = accounts
        self.temporal = temporal
        self.task_queue = task_queue
        self.allow_journey_config = allow_journey_config
        self.travel_adapter = travel_adapter

    async def check(self, caller: Principal, body: ReferralIn,
                    idempotency_key: str | None) -> Referral:
        """Refuse what cannot be registered (422), before anything is started."""
        if (body.journey_config or body.reintegration_config) and not self.allow_journey_config:
            raise ApiError(422, "journey_config_not_allowed",
                           "this server does not accept a journey configuration override")
        for field, wanted in (("receiving_mission", OrgKind.RECEIVING_MISSION),
                              ("border_partner", OrgKind.PARTNER_NGO)):
            if await self.accounts.org_kind(getattr(body, field)) is not wanted:
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
                witness=body.witness, travel_adapter=adapter,
                simulated_disruptions=body.simulated_disruptions,
                config=body.journey_config or JourneyConfig(),
                # Every return is followed up after reception (§5.5).
                reintegration=body.reintegration_config or ReintegrationConfig(),
            )
        except ValueError as error:
            raise ApiError(422, "invalid_referral", first_error(error)) from None
        return Referral(case_id, case_input, body.identity, idempotency_key)

    async def register(self, caller: Principal, referral: Referral) -> Registered:
        """Start the case's return workflow and record her identity; a retry with the same
        idempotency key answers with the case it made."""
        case_id, identity = referral.case_id, referral.identity
        try:
            await temporal_call(self.temporal.start_workflow(
                wf.WORKFLOW_TYPE, referral.case_input, id=wf.workflow_id_for(case_id),
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL), what="starting the return")
        except WorkflowAlreadyStartedError:
            if referral.idempotency_key is None:  # a random id never collides; say so if it does
                raise ApiError(409, "case_exists", f"case {case_id} exists already") from None
            # A retry of a registration that reached Temporal: the case exists, answer with
            # it, provided it is the same referral; never write this body's identity over hers.
            await self._wait_for_referral(case_id)
            events = await self.store.read_stream(case_id, limit=200)
            if not _same_referral(events, referral.case_input):
                raise ApiError(422, "idempotency_key_reused",
                               "this Idempotency-Key was used for a different referral; use "
                               "a new key for a new case") from None
            recorded = any(e.event_type == "identity.recorded" for e in events)
            if identity is None or recorded:
                return Registered(case_id, wf.workflow_id_for(case_id), recorded)
        recorded = False
        if identity is not None:
            # The referral must be the case's first event: wait for the workflow to write it.
            await self._wait_for_referral(case_id)
            try:
                await self.vault.record(case_id, identity, by_org=caller.org_id,
                                        by_actor=caller.user_id)
            except VaultError as error:
                raise ApiError(409, "vault_refused", str(error), case_id=case_id) from None
            except Exception as error:  # noqa: BLE001 - the case exists: say which one
                log.error("identity not recorded", case_id=case_id,
                          error_type=type(error).__name__)
                raise ApiError(503, "identity_not_recorded",
                               f"case {case_id} was registered but the identity was not "
                               "stored; send it again with PUT /cases/{case_id}/person",
                               case_id=case_id) from None
            recorded = True
        return Registered(case_id, wf.workflow_id_for(case_id), recorded)

    async def _wait_for_referral(self, case_id: str) -> None:
        deadline = asyncio.get_running_loop().time() + REFERRAL_WAIT_SECONDS
        while await self.store.current_version(case_id) == 0:
            if asyncio.get_running_loop().time() > deadline:
                raise ApiError(503, "referral_pending",
                               f"case {case_id} was started but its referral is not recorded "
                               "yet; the identity was not stored: send it again with "
                               "PUT /cases/{case_id}/person")
            await asyncio.sleep(0.05)


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
