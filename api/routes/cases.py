"""Cases: register a referral, steer the journey (screening, decision, consent, road
facts, withdrawal), see a case and its timeline.

A record id a request names (the consent form, the withdrawal form, the age assessment's
evidence) must be a record of the case's vault: ``api.references`` refuses any other
before anything is written or forwarded (decision 0046)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import text
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.access import Action, View, authorise, project
from api.deps import (
    Caller,
    CaseIdPath,
    authorise_case,
    facts_for,
    handle_for,
    mark,
    now,
    read_case_events,
    require,
    services,
    temporal_call,
)
from api.errors import ApiError
from api.references import check_references
from api.timeline import render, visible
from domain import boundary as wf
from domain import events as ev
from domain import messages as msg
from domain import reintegration_messages as rm
from domain.boundary import workflow_id_for
from domain.case import CaseState, CompleteTask, decide, fold
from domain.config import JourneyConfig, ReintegrationConfig
from domain.policies import Refusal, treated_as_minor
from domain.vocabulary import (
    AgeAssessor,
    AgeCategory,
    ChildPresence,
    ConsentChange,
    CountryCode,
    DecidedBy,
    FormVersion,
    LanguageCode,
    LegFailure,
    OrganisationId,
    Placement,
    RecordId,
    ReferralSource,
    RepeatInterviewReason,
    ReturnOption,
    RiskLevel,
    RoadFact,
    TaskKind,
    TraffickingStatus,
    TravelAdapter,
)
from store.accounts import OrgKind, Principal
from store.read_models import SHARING_REVOKED
from store.vault import NoteKind, PersonRecord, VaultError, record_id_of

log = structlog.get_logger("homeward.api")
router = APIRouter(tags=["cases"])

REFERRAL_WAIT_SECONDS = 15.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class ReferralIn(_Body):
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


class ReferralOut(BaseModel):
    case_id: str
    workflow_id: str
    identity_recorded: bool


class ScreeningIn(_Body):
    answers: str = Field(min_length=1, max_length=50_000,
                         description="The interview answers: kept in the person vault only.")
    interview_language: LanguageCode
    interpreter_used: bool
    reads_languages: tuple[LanguageCode, ...] = Field(min_length=1, max_length=10)
    trafficking_status: TraffickingStatus
    repeat_reason: RepeatInterviewReason | None = None
    child_accompanied_by: ChildPresence | None = Field(
        default=None, description="Required for a child (under 18, age unknown or disputed): "
        "who sat with her, her guardian or, before one is appointed, a child protection "
        "officer.")


class DecisionIn(_Body):
    choice: ReturnOption
    counselled_in_language: LanguageCode
    reflection_days: int | None = Field(default=None, ge=1, le=3650)
    decided_by: DecidedBy = Field(
        default=DecidedBy.PERSON, description="A child decides together with her appointed "
        "guardian: child_with_guardian.")


class ConsentIn(_Body):
    form_language: LanguageCode
    form_version: FormVersion
    interpreter_used: bool
    signed_at: AwareDatetime = Field(description="When she signed (ISO 8601 with a zone).")
    consent_form_record_id: RecordId | None = Field(
        default=None, description="A vault record of the signed form, or give form_reference.")
    form_reference: str | None = Field(
        default=None, min_length=1, max_length=2_000,
        description="Where the signed form is kept: stored in the vault as the form record.")
    interpreter_record_id: RecordId | None = None
    consented_by: DecidedBy = Field(
        default=DecidedBy.PERSON, description="A child consents together with her appointed "
        "guardian: child_with_guardian.")

    @model_validator(mode="after")
    def _one_form(self) -> ConsentIn:
        if (self.consent_form_record_id is None) == (self.form_reference is None):
            raise ValueError("give exactly one of consent_form_record_id and form_reference")
        return self


class FactIn(_Body):
    fact: RoadFact
    failure: LegFailure | None = None

    @model_validator(mode="after")
    def _failure_with_leg_failed(self) -> FactIn:
        if (self.fact is RoadFact.LEG_FAILED) != (self.failure is not None):
            raise ValueError("a failure is given with a leg_failed fact, and only then")
        return self


class FactOut(BaseModel):
    case_id: str
    fact: RoadFact
    event_types: list[str] = Field(description="What was recorded; empty for a repeated "
                                   "report of the fact just recorded.")
    duplicate: bool
    stage: str


class WithdrawalIn(_Body):
    change: ConsentChange = ConsentChange.WITHDRAWN
    form_record_id: RecordId | None = None


class WithdrawalOut(BaseModel):
    case_id: str
    change: ConsentChange
    path: str = Field(description="unwind: before departure, what was booked is undone. "
                      "to_safety: she had left; her escorts stay and a mission confirms a "
                      "safe place before the case closes.")
    duplicate: bool


class AgeAssessmentIn(_Body):
    assessed_by: AgeAssessor
    result: AgeCategory = Field(description="Under 18, unknown or disputed: she is treated "
                                "as a child from now on.")
    evidence_record_id: RecordId = Field(description="The vault record of the assessment.")


class AgeAssessmentOut(BaseModel):
    case_id: str
    minor: bool
    event_types: list[str]


class TaskDone(BaseModel):
    case_id: str
    task_id: uuid.UUID
    event_types: list[str]


# --- registering a referral ---------------------------------------------------------------


async def _org_kind(request: Request, org_id: str) -> OrgKind | None:
    async with services(request).engine.connect() as conn:
        kind = (await conn.execute(text("SELECT kind FROM organisations WHERE org_id = :o"),
                                   {"o": org_id})).scalar()
    return OrgKind(kind) if kind else None


@router.post("/cases", status_code=201, response_model=ReferralOut,
             summary="Register a referral and start its return workflow")
async def register_referral(
    body: ReferralIn, request: Request, caller: Caller,
    idempotency_key: Annotated[str | None, Header(
        pattern=r"^[A-Za-z0-9_-]{8,64}$",
        description="Send the same key when you retry a registration: the case is created "
        "once and the retry answers with it. Never put identity data in the key.")] = None,
) -> ReferralOut:
    mark(request, Action.CASE_REGISTER)
    require(authorise(caller, Action.CASE_REGISTER))
    svc = services(request)
    if (body.journey_config or body.reintegration_config) and not svc.allow_journey_config:
        raise ApiError(422, "journey_config_not_allowed",
                       "this server does not accept a journey configuration override")
    for field, wanted in (("receiving_mission", OrgKind.RECEIVING_MISSION),
                          ("border_partner", OrgKind.PARTNER_NGO)):
        if await _org_kind(request, getattr(body, field)) is not wanted:
            raise ApiError(422, "unknown_organisation",
                           f"{field} must name a registered {wanted.value.replace('_', ' ')}")
    if body.identity is not None and not body.identity.model_fields_set:
        raise ApiError(422, "empty_identity", "identity is given but sets no field")
    adapter = body.travel_adapter or TravelAdapter(svc.travel_adapter)
    case_id = _new_case_id(caller.org_id, idempotency_key)
    try:
        case_input = msg.ReturnCaseInput(
            case_id=case_id, sending_mission=caller.org_id,
            receiving_mission=body.receiving_mission, border_partner=body.border_partner,
            host_country=body.host_country, destination_country=body.destination_country,
            referral_source=body.referral_source, first_placement=body.first_placement,
            risk_level=body.risk_level, age_category=body.age_category, witness=body.witness,
            travel_adapter=adapter, simulated_disruptions=body.simulated_disruptions,
            config=body.journey_config or JourneyConfig(),
            # Every return is followed up after reception (§5.5).
            reintegration=body.reintegration_config or ReintegrationConfig(),
        )
    except ValueError as error:
        raise ApiError(422, "invalid_referral", _first_error(error)) from None
    mark(request, Action.CASE_REGISTER, case_id)
    try:
        await temporal_call(svc.temporal.start_workflow(
            wf.WORKFLOW_TYPE, case_input, id=workflow_id_for(case_id),
            task_queue=svc.task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL), what="starting the return")
    except WorkflowAlreadyStartedError:
        if idempotency_key is None:  # a random id never collides; be explicit if it does
            raise ApiError(409, "case_exists", f"case {case_id} exists already") from None
        # A retry of a registration that reached Temporal: the case exists, answer with it,
        # provided it is the same referral; never write this body's identity over hers.
        await _wait_for_referral(request, case_id)
        events = await svc.store.read_stream(case_id, limit=200)
        if not _same_referral(events, case_input):
            raise ApiError(422, "idempotency_key_reused",
                           "this Idempotency-Key was used for a different referral; use a new "
                           "key for a new case") from None
        recorded = any(e.event_type == "identity.recorded" for e in events)
        if body.identity is None or recorded:
            return ReferralOut(case_id=case_id, workflow_id=workflow_id_for(case_id),
                               identity_recorded=recorded)
    recorded = False
    if body.identity is not None:
        # The referral must be the case's first event: wait for the workflow to write it.
        await _wait_for_referral(request, case_id)
        try:
            await svc.vault.record(case_id, body.identity, by_org=caller.org_id,
                                   by_actor=caller.user_id)
        except VaultError as error:
            raise ApiError(409, "vault_refused", str(error), case_id=case_id) from None
        except Exception as error:  # noqa: BLE001 - the case exists: say which one
            log.error("identity not recorded", case_id=case_id, error_type=type(error).__name__)
            raise ApiError(503, "identity_not_recorded",
                           f"case {case_id} was registered but the identity was not stored; "
                           "send it again with PUT /cases/{case_id}/person",
                           case_id=case_id) from None
        recorded = True
    return ReferralOut(case_id=case_id, workflow_id=workflow_id_for(case_id),
                       identity_recorded=recorded)


def _same_referral(events, case_input: msg.ReturnCaseInput) -> bool:
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


def _new_case_id(org_id: str, idempotency_key: str | None) -> str:
    """A random case id, or, with an idempotency key, the same id for every retry by the
    same organisation (a hash: the key itself never appears in the id)."""
    if idempotency_key is None:
        return f"c-{uuid.uuid4().hex[:20]}"
    digest = hashlib.sha256(f"homeward/referral/{org_id}/{idempotency_key}".encode())
    return f"c-{digest.hexdigest()[:20]}"


async def _wait_for_referral(request: Request, case_id: str) -> None:
    store = services(request).store
    deadline = asyncio.get_running_loop().time() + REFERRAL_WAIT_SECONDS
    while await store.current_version(case_id) == 0:
        if asyncio.get_running_loop().time() > deadline:
            raise ApiError(503, "referral_pending",
                           f"case {case_id} was started but its referral is not recorded yet; "
                           "the identity was not stored: send it again with "
                           "PUT /cases/{case_id}/person")
        await asyncio.sleep(0.05)


def _first_error(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(error)


# --- reading -----------------------------------------------------------------------------


@router.get("/cases", summary="Cases this organisation may see")
async def list_cases(request: Request, caller: Caller,
                     stage: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
                     open_only: bool = False,
                     after: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9-]{1,64}$")] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    mark(request, Action.CASE_LIST)
    decision = require(authorise(caller, Action.CASE_LIST))
    svc = services(request)
    await svc.catch_up()
    scope: dict[str, str] = {}
    if decision.view is View.FULL:
        scope["sending"] = caller.org_id
    elif decision.view is View.RECEIVING:
        scope["receiving"] = caller.org_id
    elif decision.view is View.PARTNER:
        scope["partner"] = caller.org_id
    rows = await svc.read_models.cases(stage=stage, open_only=open_only, after=after,
                                       limit=limit, **scope)
    return {"cases": [project(r, decision.view) for r in rows]}


@router.get("/cases/{case_id}", summary="One case, as much of it as your role needs")
async def get_case(case_id: CaseIdPath, request: Request, caller: Caller) -> dict[str, Any]:
    decision, facts = await authorise_case(request, caller, Action.CASE_VIEW, case_id)
    svc = services(request)
    await svc.catch_up()
    row = await svc.read_models.case(case_id) or {
        "case_id": case_id, "sending_mission": facts.sending_mission,
        "receiving_mission": facts.receiving_mission, "border_partner": facts.border_partner,
        "minor": facts.minor, "stage": "referral"}
    tasks = await svc.read_models.tasks_of_case(case_id)
    if decision.view in (View.PARTNER, View.RECEIVING):
        tasks = [t for t in tasks if t.assignee_org == caller.org_id]
    out = project(row, decision.view)
    out["tasks"] = [{"task_id": t.task_id, "kind": t.kind, "assignee_org": t.assignee_org,
                     "status": t.status, "due_at": t.due_at, "escalated": t.escalated}
                    for t in tasks]
    out["view"] = decision.view.value
    return out


@router.get("/cases/{case_id}/timeline", summary="The case's events, rendered for people")
async def timeline(case_id: CaseIdPath, request: Request, caller: Caller) -> dict[str, Any]:
    decision, _ = await authorise_case(request, caller, Action.CASE_TIMELINE, case_id)
    events = await read_case_events(request, case_id)
    return {"case_id": case_id, "view": decision.view.value,
            "events": [render(e, decision.view) for e in events if visible(e, decision.view)]}


@router.get("/cases/{case_id}/handoff-code",
            summary="The one-time handoff code (escort and receiving officer only)")
async def handoff_code(case_id: CaseIdPath, request: Request, caller: Caller,
                       response: Response) -> dict[str, Any]:
    await authorise_case(request, caller, Action.HANDOFF_CODE, case_id)
    code = await temporal_call(handle_for(request, case_id).query(
        wf.HANDOFF_CODE, result_type=str), what="reading the handoff code")
    response.headers["Cache-Control"] = "no-store"
    if code is None:
        raise ApiError(409, "no_handoff_code",
                       "no handoff code is pending: the journey is not booked yet, or the "
                       "handoff is done")
    return {"case_id": case_id, "handoff_code": code}


# --- steering: the coordinator's steps ----------------------------------------------------


async def _complete(request: Request, caller: Principal, case_id: str, kind: TaskKind,
                    result: Any, task_id: uuid.UUID | None = None) -> TaskDone:
    """Complete the case's open task of ``kind`` through the workflow's Update."""
    if task_id is None:
        task_id = await _open_task_id(request, case_id, kind)
    await _may_complete(request, caller, case_id, task_id)
    completion = msg.TaskCompletion(task_id=task_id, organisation_id=caller.org_id,
                                    actor_id=caller.user_id, result=result)
    mark(request, Action.CASE_STEER, case_id, task_id)
    done = await forward_completion(request, case_id, completion)
    return TaskDone(case_id=case_id, task_id=done.task_id, event_types=list(done.event_types))


async def _may_complete(request: Request, caller: Principal, case_id: str,
                        task_id: uuid.UUID) -> None:
    """The coordinator's steps complete a task too: the same decision as the inbox (an
    operator may have reassigned it to a colleague)."""
    facts = await facts_for(request, case_id)
    require(authorise(caller, Action.TASK_COMPLETE, facts, task_id=task_id))


async def forward_completion(request: Request, case_id: str,
                             completion: msg.TaskCompletion) -> msg.TaskCompleted:
    """The ``complete_task`` Update, with update id ``complete-<task id>``: a second call
    returns the first one's result and writes nothing."""
    return await temporal_call(handle_for(request, case_id).execute_update(
        wf.COMPLETE_TASK, completion, id=f"complete-{completion.task_id}",
        result_type=msg.TaskCompleted),
        what="completing the task")


async def forward_reintegration_completion(
        request: Request, case_id: str,
        completion: rm.ReintegrationTaskCompletion) -> rm.Recorded:
    """The reintegration workflow's ``complete_task`` Update, idempotent the same way."""
    handle = services(request).temporal.get_workflow_handle(
        wf.reintegration_workflow_id_for(case_id))
    return await temporal_call(handle.execute_update(
        wf.COMPLETE_TASK, completion, id=f"complete-{completion.task_id}",
        result_type=rm.Recorded), what="completing the follow-up task")


async def precheck(request: Request, case_id: str, completion: msg.TaskCompletion) -> None:
    """Decide the completion on the case's recorded events before anything is written
    (the workflow's validator decides again, authoritatively)."""
    domain_events = []
    for stored in await read_case_events(request, case_id):
        try:
            domain_events.append(ev.parse_event(stored.event_type, stored.schema_version,
                                                stored.payload))
        except ev.UnknownEventType:
            continue
    decision = decide(fold(CaseState(case_id=case_id), domain_events),
                      CompleteTask(completion, now()))
    if isinstance(decision, Refusal):
        raise ApiError(409, decision.code, decision.reason)


async def _open_task_id(request: Request, case_id: str, kind: TaskKind) -> uuid.UUID:
    view = await temporal_call(
        handle_for(request, case_id).query(wf.STATUS, result_type=msg.CaseView),
        what="reading the case")
    task = next((t for t in view.open_tasks if t.kind == kind), None)
    if task is None:
        raise ApiError(409, "no_open_task",
                       f"no {kind.value.replace('_', ' ')} task is open in this case "
                       f"(stage {view.stage})")
    return task.task_id


@router.post("/cases/{case_id}/screening", response_model=TaskDone,
             summary="Record the one screening interview (answers go to the vault)")
async def record_screening(case_id: CaseIdPath, body: ScreeningIn, request: Request,
                           caller: Caller) -> TaskDone:
    await authorise_case(request, caller, Action.CASE_STEER, case_id)
    task_id = await _open_task_id(request, case_id, TaskKind.SCREENING_INTERVIEW)
    await _may_complete(request, caller, case_id, task_id)  # before any answer is stored
    fields = body.model_dump(exclude={"answers"})
    placeholder = msg.ScreeningResult(interview_record_id="rec_" + "0" * 32, **fields)
    await precheck(request, case_id, msg.TaskCompletion(
        task_id=task_id, organisation_id=caller.org_id, actor_id=caller.user_id,
        result=placeholder))
    note_id = await _vault_note(request, case_id, NoteKind.INTERVIEW_ANSWER, body.answers,
                                caller)
    result = msg.ScreeningResult(interview_record_id=record_id_of(note_id), **fields)
    return await _complete(request, caller, case_id, TaskKind.SCREENING_INTERVIEW, result,
                           task_id)


@router.post("/cases/{case_id}/decision", response_model=TaskDone,
             summary="Record her decision after counselling on her options")
async def record_decision(case_id: CaseIdPath, body: DecisionIn, request: Request,
                          caller: Caller) -> TaskDone:
    await authorise_case(request, caller, Action.CASE_STEER, case_id)
    return await _complete(request, caller, case_id, TaskKind.OPTIONS_DECISION,
                           msg.OptionsDecisionResult(**body.model_dump()))


@router.post("/cases/{case_id}/consent", response_model=TaskDone,
             summary="Record her informed consent, signed in a language she reads")
async def record_consent(case_id: CaseIdPath, body: ConsentIn, request: Request,
                         caller: Caller) -> TaskDone:
    await authorise_case(request, caller, Action.CASE_STEER, case_id)
    await check_references(request, case_id, body)  # before the form reference is stored
    fields = body.model_dump(exclude={"consent_form_record_id", "form_reference"})
    try:
        placeholder = msg.ConsentResult(
            consent_form_record_id=body.consent_form_record_id or "rec_" + "0" * 32, **fields)
    except ValueError as error:
        raise ApiError(422, "invalid_request", _first_error(error)) from None
    task_id = await _open_task_id(request, case_id, TaskKind.INFORMED_CONSENT)
    await _may_complete(request, caller, case_id, task_id)  # before the form is stored
    await precheck(request, case_id, msg.TaskCompletion(
        task_id=task_id, organisation_id=caller.org_id, actor_id=caller.user_id,
        result=placeholder))
    record_id = body.consent_form_record_id
    if record_id is None:
        assert body.form_reference is not None
        note = await _vault_note(request, case_id, NoteKind.ASSESSMENT_NOTE,
                                 body.form_reference, caller)
        record_id = record_id_of(note)
    result = placeholder.model_copy(update={"consent_form_record_id": record_id})
    return await _complete(request, caller, case_id, TaskKind.INFORMED_CONSENT, result,
                           task_id)


async def _vault_note(request: Request, case_id: str, kind: NoteKind, note: str,
                      caller: Principal) -> uuid.UUID:
    try:
        return await services(request).vault.add_note(case_id, kind, note,
                                                       by_org=caller.org_id,
                                                       by_actor=caller.user_id)
    except VaultError as error:
        raise ApiError(409, "vault_refused", str(error)) from None


@router.post("/cases/{case_id}/facts", response_model=FactOut,
             summary="Report a fact from the road: recorded at once, or 409 with what is "
                     "expected now",
             responses={409: {"description": "fact_not_expected_now (with stage and "
                              "expected), not_your_fact, witness_notice_period (with "
                              "allowed_from), case_closed"}})
async def report_fact(case_id: CaseIdPath, body: FactIn, request: Request,
                      caller: Caller) -> FactOut:
    await authorise_case(request, caller, Action.ROAD_REPORT, case_id)
    fact = msg.JourneyFact(organisation_id=caller.org_id, actor_id=caller.user_id,
                           fact=body.fact, failure=body.failure)
    recorded = await temporal_call(handle_for(request, case_id).execute_update(
        wf.REPORT_FACT, fact, result_type=msg.FactRecorded), what="reporting the fact")
    return FactOut(case_id=case_id, fact=recorded.fact, event_types=list(recorded.event_types),
                   duplicate=recorded.duplicate, stage=recorded.stage.value)


@router.post("/cases/{case_id}/consent-withdrawal", response_model=WithdrawalOut,
             summary="She withdraws or defers her consent: before departure what was booked "
                     "is undone; after, she is brought to a safe place first. Identity "
                     "sharing with other organisations ends at once")
async def withdraw_consent(case_id: CaseIdPath, body: WithdrawalIn, request: Request,
                           caller: Caller) -> WithdrawalOut:
    _, facts = await authorise_case(request, caller, Action.ROAD_REPORT, case_id)
    await check_references(request, case_id, body)  # before sharing is revoked
    if facts.shared_with:
        await append_api_event(request, caller, case_id, SHARING_REVOKED,
                               {"org_id": None, "reason": f"consent_{body.change.value}"})
    withdrawal = msg.ConsentWithdrawal(organisation_id=caller.org_id, actor_id=caller.user_id,
                                       change=body.change, form_record_id=body.form_record_id)
    recorded = await temporal_call(handle_for(request, case_id).execute_update(
        wf.RECORD_WITHDRAWAL, withdrawal, result_type=msg.WithdrawalRecorded),
        what="recording her withdrawal")
    return WithdrawalOut(case_id=case_id, change=recorded.change, path=recorded.path,
                         duplicate=recorded.duplicate)


@router.post("/cases/{case_id}/age-assessment", response_model=AgeAssessmentOut,
             summary="Record an age assessment: under 18, unknown or disputed puts the case "
                     "on the minor safeguards; an adult result resolves a disputed age. The "
                     "sending mission records it before the handoff, the receiving mission "
                     "in the follow-up after it")
async def record_age_assessment(case_id: CaseIdPath, body: AgeAssessmentIn, request: Request,
                                caller: Caller) -> AgeAssessmentOut:
    _, facts = await authorise_case(request, caller, Action.AGE_ASSESSMENT, case_id)
    await check_references(request, case_id, body)
    assessment = msg.AgeAssessment(organisation_id=caller.org_id, actor_id=caller.user_id,
                                   **body.model_dump())
    if caller.org_id == facts.sending_mission:
        recorded = await temporal_call(handle_for(request, case_id).execute_update(
            wf.RECORD_AGE_ASSESSMENT, assessment, result_type=msg.AgeAssessed),
            what="recording the age assessment")
        return AgeAssessmentOut(case_id=case_id, minor=recorded.minor,
                                event_types=list(recorded.event_types))
    follow_up = services(request).temporal.get_workflow_handle(
        wf.reintegration_workflow_id_for(case_id))
    try:
        done = await temporal_call(follow_up.execute_update(
            wf.RECORD_AGE_ASSESSMENT, assessment, result_type=rm.Recorded),
            what="recording the age assessment in the follow-up")
    except ApiError as error:
        if error.code != "case_not_running":
            raise
        raise ApiError(409, "no_follow_up", "her follow-up is not running: before the "
                       "handoff, the sending mission records an age assessment") from None
    return AgeAssessmentOut(case_id=case_id, minor=treated_as_minor(body.result),
                            event_types=list(done.event_types))


async def append_api_event(request: Request, caller: Principal, case_id: str,
                           event_type: str, payload: dict[str, Any]) -> None:
    """Events the API itself authors (sharing, operator actions), like the vault's."""
    from store.events import NewEvent

    await services(request).store.append(case_id, None, [NewEvent(
        uuid.uuid4(), event_type, 1, payload, caller.org_id, caller.user_id, now())])
