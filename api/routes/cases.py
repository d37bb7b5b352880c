"""Cases: register a referral, steer the journey (screening, decision, consent, road
facts, withdrawal), see a case and its timeline.

A record id a request names (the consent form, the withdrawal form, the age assessment's
evidence) must be a record of the case's vault: ``api.references`` refuses any other
before anything is written or forwarded (decision 0046)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.access import Action, View, authorise, project
from api.deps import (
    Caller,
    CaseIdPath,
    IdempotencyKey,
    authorise_case,
    case_service,
    load_case,
    mark,
    require,
    services,
)
from api.errors import ApiError
from api.references import check_references
from api.schemas import (
    AgeAssessmentOut,
    CaseDetail,
    CasePage,
    FactOut,
    HandoffCodeOut,
    ReferralOut,
    RepeatWarningOut,
    TaskDone,
    TimelinePage,
    WithdrawalOut,
)
from api.service import pages
from api.service.calls import first_error
from api.service.cases import PLACEHOLDER_RECORD_ID, LoadedCase, Note
from api.service.links import LinkService
from api.service.referrals import ReferralIn
from api.timeline import render, visible
from domain.journey import messages as msg
from domain.journey.vocabulary import (
    ChildPresence,
    ConsentChange,
    DecidedBy,
    FormVersion,
    LanguageCode,
    LegFailure,
    RepeatInterviewReason,
    ReturnOption,
    RoadFact,
    TaskKind,
    TraffickingStatus,
)
from domain.kernel import AgeAssessor, AgeCategory, RecordId
from store.accounts import Principal
from store.vault import NoteKind

log = structlog.get_logger("homeward.api")
router = APIRouter(tags=["cases"])

REFERRAL_WAIT_SECONDS = 15.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


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


class WithdrawalIn(_Body):
    change: ConsentChange = ConsentChange.WITHDRAWN
    form_record_id: RecordId | None = None


class AgeAssessmentIn(_Body):
    assessed_by: AgeAssessor
    result: AgeCategory = Field(description="Under 18, unknown or disputed: she is treated "
                                "as a child from now on.")
    evidence_record_id: RecordId = Field(description="The vault record of the assessment.")


# --- registering a referral ---------------------------------------------------------------


@router.post("/cases", status_code=201, response_model=ReferralOut,
             summary="Register a referral and start its return workflow")
async def register_referral(
    body: ReferralIn, request: Request, caller: Caller,
    idempotency_key: IdempotencyKey = None,
) -> ReferralOut:
    mark(request, Action.CASE_REGISTER)
    require(authorise(caller, Action.CASE_REGISTER))
    referrals = services(request).referrals
    referral = await referrals.check(caller, body, idempotency_key)
    mark(request, Action.CASE_REGISTER, referral.case_id)
    registered = await referrals.register(caller, referral)
    # Her earlier cases, recognised by the vault's blind index (decision 0070): said to
    # this answer only, as much as the caller's organisation may see.
    warnings = ([] if body.identity is None else
                await LinkService(case_service(request)).warnings(caller, registered.case_id))
    return ReferralOut(case_id=registered.case_id, workflow_id=registered.workflow_id,
                       identity_recorded=registered.identity_recorded,
                       repeat_warnings=[RepeatWarningOut(**asdict(w)) for w in warnings])


# --- reading -----------------------------------------------------------------------------


@router.get("/cases", response_model=CasePage, response_model_exclude_unset=True,
            summary="Cases this organisation may see, by case id, a page at a time")
async def list_cases(request: Request, response: Response, caller: Caller,
                     stage: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
                     open_only: bool = False,
                     cursor: pages.CursorQuery = None,
                     after: Annotated[str | None, Query(
                         pattern=r"^[A-Za-z0-9-]{1,64}$",
                         description="The cases after this case id (use `cursor`).")] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    mark(request, Action.CASE_LIST)
    decision = require(authorise(caller, Action.CASE_LIST))
    position = pages.decode("cases", cursor, [pages.text])
    svc = services(request)
    await svc.read_models_lag(request, response)
    scope: dict[str, str] = {}
    if decision.view is View.FULL:
        scope["sending"] = caller.org_id
    elif decision.view is View.RECEIVING:
        scope["receiving"] = caller.org_id
    elif decision.view is View.PARTNER:
        scope["partner"] = caller.org_id
    rows = await svc.read_models.cases(stage=stage, open_only=open_only,
                                       after=position[0] if position else after,
                                       limit=limit + 1, **scope)
    shown, next_cursor = pages.page("cases", rows, limit, lambda r: [r["case_id"]])
    return {"cases": [project(r, decision.view) for r in shown], "next_cursor": next_cursor}


@router.get("/cases/{case_id}", response_model=CaseDetail, response_model_exclude_unset=True,
            summary="One case, as much of it as your role needs")
async def get_case(case_id: CaseIdPath, request: Request, response: Response,
                   caller: Caller) -> dict[str, Any]:
    decision, facts = await authorise_case(request, caller, Action.CASE_VIEW, case_id)
    svc = services(request)
    await svc.read_models_lag(request, response)
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


@router.get("/cases/{case_id}/timeline", response_model=TimelinePage,
            response_model_exclude_unset=True,
            summary="The case's events, rendered for people, oldest first, a page at a time")
async def timeline(case_id: CaseIdPath, request: Request, caller: Caller,
                   cursor: pages.CursorQuery = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> dict[str, Any]:
    decision, case = await load_case(request, caller, Action.CASE_TIMELINE, case_id)
    position = pages.decode("timeline", cursor, [pages.whole])
    after = position[0] if position else 0
    events = [e for e in case.events
              if e.version > after and visible(e, decision.view, caller.org_id)]
    shown, next_cursor = pages.page("timeline", events[:limit + 1], limit,
                                    lambda e: [e.version])
    return {"case_id": case_id, "view": decision.view.value,
            "events": [render(e, decision.view) for e in shown], "next_cursor": next_cursor}


@router.get("/cases/{case_id}/handoff-code", response_model=HandoffCodeOut,
            summary="The one-time handoff code (escort and receiving officer only)")
async def handoff_code(case_id: CaseIdPath, request: Request, caller: Caller,
                       response: Response) -> HandoffCodeOut:
    await authorise_case(request, caller, Action.HANDOFF_CODE, case_id)
    response.headers["Cache-Control"] = "no-store"
    code = await case_service(request).handoff_code(case_id)
    return HandoffCodeOut(case_id=case_id, handoff_code=code)


# --- steering: the coordinator's steps ----------------------------------------------------


def _done(case_id: str, done: msg.TaskCompleted) -> TaskDone:
    return TaskDone(case_id=case_id, task_id=done.task_id, event_types=list(done.event_types))


async def _steer(request: Request, caller: Principal, case: LoadedCase, kind: TaskKind,
                 result: Any, note: Note | None = None, *, precheck: bool = False,
                 idempotency_key: str | None = None) -> TaskDone:
    """Complete the case's open task of ``kind`` through the workflow's Update; with the
    caller's key, a retry after the first was applied gets the first answer."""
    cases = case_service(request)
    keyed = cases.steering_key(caller, case.case_id, idempotency_key, note)
    if keyed is not None:
        first = await cases.steered_before(caller, case, kind, result, note, keyed)
        if first is not None:
            mark(request, Action.CASE_STEER, case.case_id, first.task_id)
            return _done(case.case_id, first)
    step = await cases.prepare_step(caller, case, kind, result, note, precheck=precheck)
    mark(request, Action.CASE_STEER, case.case_id, step.task_id)
    return _done(case.case_id,
                 await cases.forward_completion(case.case_id, step.completion, keyed))


@router.post("/cases/{case_id}/screening", response_model=TaskDone,
             summary="Record the one screening interview (answers go to the vault)")
async def record_screening(case_id: CaseIdPath, body: ScreeningIn, request: Request,
                           caller: Caller, idempotency_key: IdempotencyKey = None) -> TaskDone:
    _, case = await load_case(request, caller, Action.CASE_STEER, case_id)
    placeholder = msg.ScreeningResult(interview_record_id=PLACEHOLDER_RECORD_ID,
                                      **body.model_dump(exclude={"answers"}))
    return await _steer(request, caller, case, TaskKind.SCREENING_INTERVIEW, placeholder,
                        Note(NoteKind.INTERVIEW_ANSWER, body.answers, "interview_record_id"),
                        idempotency_key=idempotency_key)


@router.post("/cases/{case_id}/decision", response_model=TaskDone,
             summary="Record her decision after counselling on her options")
async def record_decision(case_id: CaseIdPath, body: DecisionIn, request: Request,
                          caller: Caller, idempotency_key: IdempotencyKey = None) -> TaskDone:
    _, case = await load_case(request, caller, Action.CASE_STEER, case_id)
    return await _steer(request, caller, case, TaskKind.OPTIONS_DECISION,
                        msg.OptionsDecisionResult(**body.model_dump()),
                        idempotency_key=idempotency_key)


@router.post("/cases/{case_id}/consent", response_model=TaskDone,
             summary="Record her informed consent, signed in a language she reads")
async def record_consent(case_id: CaseIdPath, body: ConsentIn, request: Request,
                         caller: Caller, idempotency_key: IdempotencyKey = None) -> TaskDone:
    _, case = await load_case(request, caller, Action.CASE_STEER, case_id)
    await check_references(request, case_id, body)  # before the form reference is stored
    fields = body.model_dump(exclude={"consent_form_record_id", "form_reference"})
    try:
        result = msg.ConsentResult(
            consent_form_record_id=body.consent_form_record_id or PLACEHOLDER_RECORD_ID,
            **fields)
    except ValueError as error:
        raise ApiError(422, "invalid_request", first_error(error)) from None
    note = None
    if body.consent_form_record_id is None:
        assert body.form_reference is not None
        note = Note(NoteKind.ASSESSMENT_NOTE, body.form_reference, "consent_form_record_id")
    return await _steer(request, caller, case, TaskKind.INFORMED_CONSENT, result, note,
                        precheck=True, idempotency_key=idempotency_key)


@router.post("/cases/{case_id}/facts", response_model=FactOut,
             summary="Report a fact from the road: recorded at once, or 409 with what is "
                     "expected now",
             responses={409: {"description": "fact_not_expected_now (with stage and "
                              "expected), not_your_fact, witness_notice_period (with "
                              "allowed_from), case_closed"}})
async def report_fact(case_id: CaseIdPath, body: FactIn, request: Request,
                      caller: Caller, idempotency_key: IdempotencyKey = None) -> FactOut:
    await authorise_case(request, caller, Action.ROAD_REPORT, case_id)
    recorded = await case_service(request).report_fact(caller, case_id, body.fact,
                                                       body.failure, idempotency_key)
    return FactOut(case_id=case_id, fact=recorded.fact, event_types=list(recorded.event_types),
                   duplicate=recorded.duplicate, stage=recorded.stage.value)


@router.post("/cases/{case_id}/consent-withdrawal", response_model=WithdrawalOut,
             summary="She withdraws or defers her consent: before departure what was booked "
                     "is undone; after, she is brought to a safe place first. Identity "
                     "sharing with other organisations ends at once")
async def withdraw_consent(case_id: CaseIdPath, body: WithdrawalIn, request: Request,
                           caller: Caller,
                           idempotency_key: IdempotencyKey = None) -> WithdrawalOut:
    _, case = await load_case(request, caller, Action.ROAD_REPORT, case_id)
    await check_references(request, case_id, body)  # before sharing is revoked
    recorded = await case_service(request).withdraw_consent(caller, case, body.change,
                                                            body.form_record_id,
                                                            idempotency_key)
    return WithdrawalOut(case_id=case_id, change=recorded.change, path=recorded.path,
                         duplicate=recorded.duplicate)


@router.post("/cases/{case_id}/age-assessment", response_model=AgeAssessmentOut,
             summary="Record an age assessment: under 18, unknown or disputed puts the case "
                     "on the minor safeguards; an adult result resolves a disputed age. The "
                     "sending mission records it before the handoff, the receiving mission "
                     "in the follow-up after it")
async def record_age_assessment(case_id: CaseIdPath, body: AgeAssessmentIn, request: Request,
                                caller: Caller,
                                idempotency_key: IdempotencyKey = None) -> AgeAssessmentOut:
    _, case = await load_case(request, caller, Action.AGE_ASSESSMENT, case_id)
    await check_references(request, case_id, body)
    minor, event_types = await case_service(request).assess_age(caller, case, msg.AgeAssessment(
        organisation_id=caller.org_id, actor_id=caller.user_id, **body.model_dump()),
        idempotency_key)
    return AgeAssessmentOut(case_id=case_id, minor=minor, event_types=event_types)
