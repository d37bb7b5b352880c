"""Who may see and do what: the one place that decides (and one test matrix proves it).

Every endpoint names an ``Action`` and calls ``authorise``; nothing else in the API
compares roles or organisations. Two questions, in order:

1. May this role ever do this? No → 403 (the role, not the case, is refused).
2. What is this organisation to this case (``Relation``)? Nothing → 404, so that a case
   id never confirms to an outsider that the case exists; a relation that does not allow
   the action → 403 with the reason.

The answer also names the ``View``: how much of the case the caller sees. Identity data
is in no view; it is read only through the person-vault endpoints (``IDENTITY_READ``),
with a purpose, by the two missions of the case or an organisation that a recorded
consent names, until that consent is revoked or withdrawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from domain import catalogue
from domain import outside_events as out
from domain.journey import events as ev
from domain.kernel import AgeCategory, treated_as_minor
from domain.reintegration import events as rev
from store.accounts import OrgKind, Principal, UserRole
from store.events import StoredEvent
from store.projections import catalogued
from store.vault import FieldGroup


class Action(StrEnum):
    CASE_REGISTER = "case.register"
    CASE_LIST = "case.list"
    CASE_VIEW = "case.view"
    CASE_TIMELINE = "case.timeline"
    CASE_STEER = "case.steer"  # screening, decision, consent
    CASE_TRANSFER = "case.transfer"  # hand a role to another organisation (decision 0068)
    ROAD_REPORT = "case.road_report"  # road facts and her withdrawal, from either mission
    AGE_ASSESSMENT = "case.age_assessment"  # the sending mission; after the handoff, receiving
    HANDOFF_CODE = "case.handoff_code"
    FOLLOW_UP = "case.follow_up"  # the receiving mission's follow-up: risks, plan, closure
    IDENTITY_RECORD = "identity.record"
    IDENTITY_NOTE = "identity.note"
    IDENTITY_READ = "identity.read"
    SHARING_MANAGE = "sharing.manage"
    SHARING_VIEW = "sharing.view"
    TASK_INBOX = "task.inbox"
    TASK_VIEW = "task.view"
    TASK_COMPLETE = "task.complete"
    OPS_STUCK = "ops.stuck_cases"
    OPS_ACT = "ops.act"
    STATISTICS = "statistics.read"
    REPORT_READ = "report.statistical"  # the statistical report, scoped by report_scope
    SNAPSHOT_READ = "report.snapshot"  # the caseload snapshot, scoped by report_scope
    AUDIT_READ = "audit.read"
    TRAFFICKING_RECORD = "trafficking.record"  # how trafficking occurred: the sending mission
    TRAFFICKING_VIEW = "trafficking.view"
    CASE_PACKAGE_EXPORT = "case_package.export"  # to another deployment (decision 0067)
    CASE_PACKAGE_IMPORT = "case_package.import"
    CASE_LINK = "case.link"  # the same person's earlier case (decision 0070)


class Relation(StrEnum):
    SENDING = "sending_mission"
    RECEIVING = "receiving_mission"  # the case has been handed to it
    RECEIVING_NOT_YET = "receiving_mission_before_handoff_request"
    TASK_ASSIGNEE = "task_assignee"  # a partner with a task in the case
    SHARED = "shared_by_consent"  # a recorded consent names the organisation
    GUARDIAN = "guardian_organisation"  # a minor's guardian acts through it
    OPERATOR = "operator"
    IMPORTED = "imported_to_organisation"  # a case package from another deployment named it
    FORMER = "former_holder"  # it handed its role to another organisation (decision 0068)
    NONE = "none"


class View(StrEnum):
    FULL = "full"  # the sending mission: its own file
    RECEIVING = "receiving"  # what the receiving mission needs
    PARTNER = "partner"  # the minimum of the case behind a partner's task
    OPERATIONS = "operations"  # stages, blocks, tasks; never identity
    AUTHORED = "authored"  # a former holder's timeline: the events it wrote, nothing else
    NONE = "none"


# Fields of a case summary each view shows (codes and ids only, never identity).
CASE_FIELDS: dict[View, tuple[str, ...]] = {
    View.FULL: ("case_id", "sending_mission", "receiving_mission", "border_partner",
                "host_country", "destination_country", "age_category", "minor", "witness",
                "sex", "risk_level", "referral_source", "stage", "blocked_on", "blocked_since",
                "escalated", "outcome", "registered_at", "closed_at", "last_event_at"),
    View.RECEIVING: ("case_id", "sending_mission", "receiving_mission", "destination_country",
                     "age_category", "minor", "risk_level", "stage", "blocked_on",
                     "blocked_since", "outcome", "receiving_visible_at", "closed_at"),
    View.PARTNER: ("case_id", "stage", "minor"),
    View.OPERATIONS: ("case_id", "sending_mission", "receiving_mission", "border_partner",
                      "destination_country", "minor", "stage", "blocked_on", "blocked_since",
                      "escalated", "outcome", "registered_at", "last_event_at"),
}

# Timeline: the receiving mission sees the journey from the referral's basics to its
# own tasks, not the screening interview, the options counselling or the consent form.
RECEIVING_TIMELINE_EXCLUDES = frozenset({
    ev.ScreeningInterviewRecorded.TYPE, ev.RepeatInterviewRequested.TYPE,
    ev.OptionsDecisionRecorded.TYPE, ev.ConsentRecorded.TYPE, ev.GuardianAppointed.TYPE,
    ev.MedicalClearanceRecorded.TYPE, ev.ProsecutorNotified.TYPE, out.SharingGranted.TYPE,
    out.SharingRevoked.TYPE, out.IdentityRecorded.TYPE, out.IdentityRead.TYPE,
    out.CaseLinked.TYPE,  # the other case may be one the receiving mission cannot see
})
# Operations see what happened and when, never who reads or shares her identity.
OPERATIONS_TIMELINE_EXCLUDES = catalogue.IDENTITY_TYPES | catalogue.SHARING_TYPES

# Field groups of the person's identity each view may ask the vault for. The receiving
# mission never needs the shelter address in the host country; an organisation named by
# a consent gets what recognising her needs, no more.
IDENTITY_GROUPS: dict[View, frozenset[FieldGroup]] = {
    View.FULL: frozenset(FieldGroup),
    View.RECEIVING: frozenset(FieldGroup) - {FieldGroup.SHELTER},
    View.PARTNER: frozenset({FieldGroup.NAMES, FieldGroup.PHOTOS}),
}

# Which organisation kinds may be named by a consent to share identity. Operators and
# analysts never see identity, whatever a form says.
SHAREABLE_ORG_KINDS = frozenset({OrgKind.PARTNER_NGO, OrgKind.SENDING_MISSION,
                                 OrgKind.RECEIVING_MISSION})

_CASE_WORKERS = frozenset({UserRole.COORDINATOR, UserRole.RECEIVING_OFFICER,
                           UserRole.PARTNER_WORKER})

# Step 1: the roles that may ever do an action.
ROLES: dict[Action, frozenset[UserRole]] = {
    Action.CASE_REGISTER: frozenset({UserRole.COORDINATOR}),
    Action.CASE_LIST: frozenset({UserRole.COORDINATOR, UserRole.RECEIVING_OFFICER,
                                 UserRole.PARTNER_WORKER, UserRole.OPERATOR}),
    Action.CASE_VIEW: frozenset({UserRole.COORDINATOR, UserRole.RECEIVING_OFFICER,
                                 UserRole.PARTNER_WORKER, UserRole.OPERATOR}),
    Action.CASE_TIMELINE: frozenset({UserRole.COORDINATOR, UserRole.RECEIVING_OFFICER,
                                     UserRole.OPERATOR}),
    Action.CASE_STEER: frozenset({UserRole.COORDINATOR}),
    Action.CASE_TRANSFER: frozenset({UserRole.COORDINATOR}),
    Action.ROAD_REPORT: frozenset({UserRole.COORDINATOR, UserRole.RECEIVING_OFFICER}),
    Action.AGE_ASSESSMENT: frozenset({UserRole.COORDINATOR, UserRole.RECEIVING_OFFICER}),
    Action.HANDOFF_CODE: frozenset({UserRole.COORDINATOR, UserRole.RECEIVING_OFFICER}),
    Action.FOLLOW_UP: frozenset({UserRole.RECEIVING_OFFICER}),
    Action.IDENTITY_RECORD: frozenset({UserRole.COORDINATOR}),
    Action.IDENTITY_NOTE: frozenset({UserRole.COORDINATOR, UserRole.RECEIVING_OFFICER}),
    Action.IDENTITY_READ: _CASE_WORKERS,
    Action.SHARING_MANAGE: frozenset({UserRole.COORDINATOR}),
    Action.SHARING_VIEW: frozenset({UserRole.COORDINATOR, UserRole.RECEIVING_OFFICER}),
    Action.TASK_INBOX: _CASE_WORKERS,
    Action.TASK_VIEW: _CASE_WORKERS | {UserRole.OPERATOR},
    Action.TASK_COMPLETE: _CASE_WORKERS,
    Action.OPS_STUCK: frozenset({UserRole.OPERATOR}),
    Action.OPS_ACT: frozenset({UserRole.OPERATOR}),
    Action.STATISTICS: frozenset({UserRole.ANALYST, UserRole.COORDINATOR,
                                  UserRole.RECEIVING_OFFICER}),
    Action.REPORT_READ: frozenset({UserRole.ANALYST, UserRole.COORDINATOR,
                                   UserRole.RECEIVING_OFFICER}),
    Action.SNAPSHOT_READ: frozenset({UserRole.ANALYST, UserRole.COORDINATOR,
                                     UserRole.RECEIVING_OFFICER, UserRole.OPERATOR}),
    Action.AUDIT_READ: frozenset({UserRole.ADMINISTRATOR}),
    Action.TRAFFICKING_RECORD: frozenset({UserRole.COORDINATOR}),
    Action.TRAFFICKING_VIEW: frozenset({UserRole.COORDINATOR, UserRole.RECEIVING_OFFICER}),
    Action.CASE_PACKAGE_EXPORT: frozenset({UserRole.ADMINISTRATOR}),
    Action.CASE_PACKAGE_IMPORT: frozenset({UserRole.ADMINISTRATOR}),
    Action.CASE_LINK: frozenset({UserRole.COORDINATOR}),
}

# Step 2: for case actions, the relations that allow them, and the view each gets.
CASE_RULES: dict[Action, dict[Relation, View]] = {
    Action.CASE_VIEW: {Relation.SENDING: View.FULL, Relation.RECEIVING: View.RECEIVING,
                       Relation.TASK_ASSIGNEE: View.PARTNER, Relation.SHARED: View.PARTNER,
                       Relation.GUARDIAN: View.PARTNER, Relation.OPERATOR: View.OPERATIONS},
    Action.CASE_TIMELINE: {Relation.SENDING: View.FULL, Relation.RECEIVING: View.RECEIVING,
                           Relation.OPERATOR: View.OPERATIONS},
    Action.CASE_STEER: {Relation.SENDING: View.FULL},
    Action.CASE_TRANSFER: {Relation.SENDING: View.FULL},
    # The receiving mission waits at arrival: it reports a person not met or missing, and
    # relays her withdrawal; the workflow decides which facts each mission may report.
    Action.ROAD_REPORT: {Relation.SENDING: View.FULL, Relation.RECEIVING: View.RECEIVING},
    Action.AGE_ASSESSMENT: {Relation.SENDING: View.FULL, Relation.RECEIVING: View.RECEIVING},
    Action.HANDOFF_CODE: {Relation.SENDING: View.FULL, Relation.RECEIVING: View.RECEIVING},
    Action.FOLLOW_UP: {Relation.RECEIVING: View.RECEIVING},
    Action.IDENTITY_RECORD: {Relation.SENDING: View.FULL},
    Action.IDENTITY_NOTE: {Relation.SENDING: View.FULL, Relation.RECEIVING: View.RECEIVING},
    Action.IDENTITY_READ: {Relation.SENDING: View.FULL, Relation.RECEIVING: View.RECEIVING,
                           Relation.SHARED: View.PARTNER, Relation.GUARDIAN: View.PARTNER},
    Action.SHARING_MANAGE: {Relation.SENDING: View.FULL},
    Action.SHARING_VIEW: {Relation.SENDING: View.FULL, Relation.RECEIVING: View.RECEIVING},
    Action.OPS_ACT: {Relation.OPERATOR: View.OPERATIONS},
    # The sending mission's account; the receiving mission reads it to plan her support.
    Action.TRAFFICKING_RECORD: {Relation.SENDING: View.FULL},
    Action.TRAFFICKING_VIEW: {Relation.SENDING: View.FULL, Relation.RECEIVING: View.RECEIVING},
    # Her earlier case is linked from the sending mission's own case (decision 0070).
    Action.CASE_LINK: {Relation.SENDING: View.FULL},
}

# An imported case (decision 0067) is history to read, for the organisation its package
# named: no workflow runs it here, so nothing steers it (``IMPORTED_READS``).
IMPORTED_READS = frozenset({Action.CASE_VIEW, Action.CASE_TIMELINE, Action.IDENTITY_READ,
                            Action.SHARING_VIEW, Action.TASK_VIEW, Action.TRAFFICKING_VIEW,
                            Action.AUDIT_READ, Action.CASE_PACKAGE_EXPORT})
for _action in (Action.CASE_VIEW, Action.CASE_TIMELINE, Action.IDENTITY_READ,
                Action.TRAFFICKING_VIEW):
    CASE_RULES[_action][Relation.IMPORTED] = View.RECEIVING
# An organisation that handed its role on (decision 0068) keeps the case's minimum and the
# events it wrote: never identity, nothing that steers, nobody's tasks but its own.
CASE_RULES[Action.CASE_VIEW][Relation.FORMER] = View.PARTNER
CASE_RULES[Action.CASE_TIMELINE][Relation.FORMER] = View.AUTHORED


@dataclass(frozen=True)
class CaseFacts:
    """What access decisions need to know about one case, folded from its own event
    stream (not a projection): a revoked consent is seen by the very next request."""

    case_id: str
    sending_mission: str
    receiving_mission: str
    border_partner: str
    minor: bool
    receiving_involved: bool = False
    task_orgs: frozenset[str] = frozenset()
    shared_with: frozenset[str] = frozenset()
    consent_withdrawn: bool = False
    closed: bool = False
    # task id → (assignee organisation, the colleague an operator reassigned it to)
    task_assignees: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    guardian_org: str | None = None  # a minor's guardian's organisation
    imported_to: str | None = None  # imported from another deployment for this organisation
    # Transfers (decision 0068): organisations that handed a role on after taking part, and
    # those holding a role by transfer (their identity reads wait for a consent naming them)
    former_holders: frozenset[str] = frozenset()
    transferred_to: frozenset[str] = frozenset()


def case_facts(case_id: str, events: Iterable[StoredEvent]) -> CaseFacts | None:
    """None when the case has no referral (unknown case id)."""
    facts: CaseFacts | None = None
    shared: dict[str, bool] = {}
    task_orgs: set[str] = set()
    assignees: dict[str, tuple[str, str | None]] = {}
    receiving_involved = withdrawn = closed = False
    guardian_org = imported_to = None
    minor = True
    holders: dict[str, str] = {}  # a transferred role → its holder now
    former: set[str] = set()
    for event in events:
        if not catalogued(event, "access"):
            continue
        t, p = event.event_type, event.payload
        if t == ev.ReferralRegistered.TYPE and facts is None:
            # v1 referrals recorded no age: unknown (see the catalogue's upcaster).
            minor = treated_as_minor(AgeCategory(p.get("age_category", AgeCategory.UNKNOWN)))
            facts = CaseFacts(case_id, p["sending_mission"], p["receiving_mission"],
                              p["border_partner"], minor)
        elif t == ev.AgeAssessed.TYPE:
            minor = bool(p["minor"])  # an assessment found her a child, or resolved a doubt
        elif t in (ev.TaskOpened.TYPE, rev.ReintegrationTaskOpened.TYPE):
            task_orgs.add(p["assignee_org"])
            assignees[p["task_id"]] = (p["assignee_org"], None)
            if facts is not None and p["assignee_org"] == holders.get(
                    "receiving_mission", facts.receiving_mission):
                receiving_involved = True
        elif t == ev.HandoffCodeIssued.TYPE:
            receiving_involved = True
        elif t == out.OperatorTaskReassigned.TYPE and p.get("task_id") in assignees:
            assignees[p["task_id"]] = (assignees[p["task_id"]][0], p.get("to_user"))
        elif t == out.SharingGranted.TYPE and not withdrawn:
            # A grant appended after a withdrawal (a race with the coordinator) is void:
            # after a withdrawal only a new consent could share again.
            shared[p["org_id"]] = True
        elif t == out.SharingRevoked.TYPE:
            for org in ([p["org_id"]] if p.get("org_id") else list(shared)):
                shared[org] = False
        elif t == ev.ConsentWithdrawn.TYPE:
            withdrawn = True
            shared = dict.fromkeys(shared, False)
        elif t == ev.GuardianAppointed.TYPE:
            guardian_org = p.get("guardian_org")
        elif t in catalogue.OUTCOME_TYPES:
            closed = True
        elif t == out.CaseImported.TYPE:
            imported_to = p["recipient_org"]
        elif t == ev.TransferAccepted.TYPE and facts is not None:
            receiving = p["role"] == "receiving_mission"
            if receiving_involved if receiving else p["from_org"] in task_orgs:
                former.add(p["from_org"])  # it took part: it keeps what it wrote
            former.discard(p["to_org"])
            holders[p["role"]] = p["to_org"]
            receiving_involved = receiving_involved or receiving
            for moved in p.get("reassigned_tasks") or ():
                assignees[moved] = (p["to_org"], None)
    if facts is None:
        return None
    return CaseFacts(
        facts.case_id, facts.sending_mission,
        holders.get("receiving_mission", facts.receiving_mission),
        holders.get("border_partner", facts.border_partner),
        minor, receiving_involved, frozenset(task_orgs),
        frozenset(org for org, on in shared.items() if on), withdrawn, closed, assignees,
        guardian_org, imported_to, frozenset(former), frozenset(holders.values()),
    )


def relation(principal: Principal, facts: CaseFacts) -> Relation:
    org = principal.org_id
    if principal.role is UserRole.OPERATOR:
        return Relation.OPERATOR
    if principal.role not in _CASE_WORKERS:
        return Relation.NONE
    return org_relation(org, facts)


def org_relation(org: str, facts: CaseFacts) -> Relation:
    """What an organisation's case workers are to the case."""
    if facts.imported_to is not None:  # the parties of its referral are elsewhere
        return Relation.IMPORTED if org == facts.imported_to else Relation.NONE
    if org == facts.sending_mission:
        return Relation.SENDING
    if org == facts.receiving_mission:
        return Relation.RECEIVING if facts.receiving_involved else Relation.RECEIVING_NOT_YET
    if facts.minor and facts.guardian_org is not None and org == facts.guardian_org:
        return Relation.GUARDIAN
    if org in facts.shared_with:
        return Relation.SHARED
    if org in facts.former_holders:
        return Relation.FORMER
    if org in facts.task_orgs:
        return Relation.TASK_ASSIGNEE
    return Relation.NONE


@dataclass(frozen=True)
class Decision:
    allowed: bool
    view: View = View.NONE
    status: int = 200
    code: str = "ok"
    reason: str = ""
    relation: Relation = Relation.NONE
    extra: dict[str, str] = field(default_factory=dict)


def _refuse(status: int, code: str, reason: str, rel: Relation = Relation.NONE) -> Decision:
    return Decision(False, View.NONE, status, code, reason, rel)


def _role_refusal(principal: Principal, action: Action) -> Decision | None:
    if principal.role in ROLES[action]:
        return None
    return _refuse(403, "forbidden",
                   f"a {principal.role.value.replace('_', ' ')} may not {_say(action)}")


def authorise_role(principal: Principal, action: Action) -> Decision:
    """Only step 1, for a request that must refuse a role before it looks anything up."""
    return _role_refusal(principal, action) or Decision(True)


def authorise(principal: Principal, action: Action, facts: CaseFacts | None = None,
              *, task_id: object = None) -> Decision:
    """Decide one request. ``facts`` for actions on a case (None: no such case);
    ``task_id`` for actions on one of its tasks (assignees come from ``facts``)."""
    refused = _role_refusal(principal, action)
    if refused is not None:
        return refused
    if action in (Action.CASE_REGISTER, Action.CASE_LIST, Action.TASK_INBOX,
                  Action.OPS_STUCK, Action.STATISTICS):
        return Decision(True, _list_view(principal))
    if facts is None:
        return _not_found()
    rel = relation(principal, facts)

    if action is Action.AUDIT_READ:
        return _audit(principal, facts)
    if action is Action.CASE_PACKAGE_EXPORT:
        return _package_export(principal, facts)
    if (facts.imported_to is not None and action not in IMPORTED_READS
            and rel is not Relation.NONE):
        return _refuse(409, "case_imported", "this case was imported from another "
                       "deployment: its history is read here, nothing in it is steered", rel)
    if action in (Action.TASK_VIEW, Action.TASK_COMPLETE):
        assignee, assignee_user = facts.task_assignees.get(str(task_id), (None, None))
        return _task(principal, action, facts, rel, assignee, assignee_user)

    if rel in (Relation.NONE, Relation.RECEIVING_NOT_YET):
        return _not_found()
    view = CASE_RULES[action].get(rel)
    if action is Action.IDENTITY_READ and _awaits_consent(principal.org_id, rel, facts):
        view = None
    if view is None:
        if action is Action.IDENTITY_READ:
            return _refuse(403, "consent_required",
                           "identity is shared with an organisation other than the two "
                           "missions only on a recorded consent naming it, and there is none "
                           "for your organisation (or it was withdrawn)", rel)
        return _refuse(403, "forbidden",
                       f"as the {rel.value.replace('_', ' ')} of this case you may not "
                       f"{_say(action)}", rel)
    if action in (Action.CASE_STEER, Action.ROAD_REPORT, Action.CASE_TRANSFER) and facts.closed:
        return _refuse(409, "case_closed", "the case is closed: nothing more can be steered",
                       rel)
    return Decision(True, view, relation=rel)


def _task(principal: Principal, action: Action, facts: CaseFacts, rel: Relation,
          assignee: str | None, assignee_user: str | None) -> Decision:
    if assignee is None:
        return _not_found("there is no such task")
    if principal.org_id == assignee and principal.role in _CASE_WORKERS:
        if (action is Action.TASK_COMPLETE and assignee_user is not None
                and assignee_user != principal.user_id):
            return _refuse(403, "assigned_to_colleague",
                           f"an operator reassigned this task to {assignee_user} of your "
                           "organisation; only they may complete it", rel)
        view = {Relation.SENDING: View.FULL, Relation.RECEIVING: View.RECEIVING}.get(
            rel, View.PARTNER)
        return Decision(True, view, relation=rel)
    if rel is Relation.OPERATOR and action is Action.TASK_VIEW:
        return Decision(True, View.OPERATIONS, relation=rel)
    if rel in (Relation.SENDING, Relation.RECEIVING, Relation.OPERATOR):
        return _refuse(403, "not_your_task",
                       f"this task is assigned to {assignee}; only that organisation "
                       f"may {_say(action)}", rel)
    return _not_found("there is no such task")


def _audit(principal: Principal, facts: CaseFacts) -> Decision:
    """Operations administrators audit every case; a mission's administrator the cases
    of its mission."""
    if principal.org_kind is OrgKind.OPERATOR_TEAM or principal.org_id == facts.sending_mission:
        return Decision(True, View.OPERATIONS)
    if principal.org_id == facts.receiving_mission and facts.receiving_involved:
        return Decision(True, View.OPERATIONS)
    if facts.imported_to is not None and principal.org_id == facts.imported_to:
        return Decision(True, View.OPERATIONS)
    return _not_found()


def _package_export(principal: Principal, facts: CaseFacts) -> Decision:
    """A mission's administrator exports the cases of her mission (sending, or receiving
    once handed the case); an operations team never (a package carries identity)."""
    if facts.imported_to is None and (
            principal.org_id == facts.sending_mission
            or (principal.org_id == facts.receiving_mission and facts.receiving_involved)):
        return Decision(True, View.FULL)
    return _not_found()


def may_see(principal: Principal, facts: CaseFacts) -> bool:
    """Whether the principal's organisation may see the case (``CASE_VIEW``): what a
    repeat-returnee warning may name (decision 0070)."""
    return authorise(principal, Action.CASE_VIEW, facts).allowed


def link_basis(principal: Principal, other: CaseFacts | None,
               matched: bool) -> Decision | out.LinkBasis:
    """Whether a coordinator, allowed ``CASE_LINK`` on her own case, may link it to
    ``other`` (decision 0070): when her organisation may see it too, or, through the
    mission that holds the other case, when the vault's blind index matched the two (the
    organisation that may see the other case links it to the case id it was told, or
    the other way round). Otherwise 404, as for a case she may not see."""
    if other is not None and may_see(principal, other):
        return out.LinkBasis.BOTH_VISIBLE
    if other is not None and matched:
        return out.LinkBasis.IDENTITY_MATCH
    return _not_found()


def package_groups(facts: CaseFacts, recipient_org: str) -> frozenset[FieldGroup]:
    """The identity field groups a case package to ``recipient_org`` carries (decision
    0067): those its case workers could read here, by the same rules (the receiving
    mission once handed the case, an organisation her recorded consent names, a minor's
    guardian's); none after her withdrawal, and none for anyone else (headquarters too,
    unless her consent names it)."""
    rel = org_relation(recipient_org, facts)
    view = CASE_RULES[Action.IDENTITY_READ].get(rel)
    if view is None or _awaits_consent(recipient_org, rel, facts):
        return frozenset()
    return IDENTITY_GROUPS.get(view, frozenset())


def _awaits_consent(org: str, rel: Relation, facts: CaseFacts) -> bool:
    """A mission holding the receiving role by transfer reads her identity only once a
    recorded consent names it (decision 0068): she agreed to the missions of her referral."""
    return (rel is Relation.RECEIVING and org in facts.transferred_to
            and org not in facts.shared_with)


@dataclass(frozen=True)
class ReportScope:
    """Whose cases a report counts (decision 0065): ``side`` None is every mission;
    "sending" a mission's referrals, "receiving" the cases handed to it, "either" both
    sides of the mission an analyst or operator names. ``suppressed``: whether small
    cells are hidden (the snapshot is not, for those who may list the same cases)."""

    side: str | None
    mission: str | None
    suppressed: bool = True


def report_scope(principal: Principal, action: Action,
                 mission: str | None) -> Decision | ReportScope:
    """Analysts read every mission (one, when they name it); a coordinator reads the
    referrals of her own sending mission, a receiving officer the cases handed to his
    mission; operators read the snapshot of every mission. A refusal is a ``Decision``."""
    refused = _role_refusal(principal, action)
    if refused is not None:
        return refused
    own = {UserRole.COORDINATOR: "sending", UserRole.RECEIVING_OFFICER: "receiving"}
    side = own.get(principal.role)
    if side is None:  # analysts and operators
        return ReportScope("either" if mission else None, mission,
                           suppressed=action is not Action.SNAPSHOT_READ
                           or principal.role is UserRole.ANALYST)
    if mission not in (None, principal.org_id):
        return _refuse(403, "other_mission",
                       "a mission reads reports over its own caseload only")
    return ReportScope(side, principal.org_id, suppressed=action is not Action.SNAPSHOT_READ)


def _list_view(principal: Principal) -> View:
    return {UserRole.COORDINATOR: View.FULL, UserRole.RECEIVING_OFFICER: View.RECEIVING,
            UserRole.PARTNER_WORKER: View.PARTNER,
            UserRole.OPERATOR: View.OPERATIONS}.get(principal.role, View.NONE)


def _not_found(reason: str = "there is no such case") -> Decision:
    return _refuse(404, "not_found", reason)


def may_be_assigned(role: UserRole | str) -> bool:
    """Whether an operator may reassign a task to a user of this role."""
    return role in _CASE_WORKERS


def shareable(kind: OrgKind) -> bool:
    return kind in SHAREABLE_ORG_KINDS


def project(case: dict, view: View) -> dict:
    """The fields of a case summary that ``view`` shows."""
    return {k: case.get(k) for k in CASE_FIELDS.get(view, ())}


_SAY = {
    Action.CASE_REGISTER: "register a referral",
    Action.CASE_LIST: "list cases",
    Action.CASE_VIEW: "see this case",
    Action.CASE_TIMELINE: "see the timeline of this case",
    Action.CASE_STEER: "steer this case (screening, decision, consent)",
    Action.CASE_TRANSFER: "hand a role of this case to another organisation",
    Action.ROAD_REPORT: "report facts from the road or relay her withdrawal",
    Action.AGE_ASSESSMENT: "record an age assessment",
    Action.HANDOFF_CODE: "see the handoff code",
    Action.FOLLOW_UP: "run this case's follow-up",
    Action.IDENTITY_RECORD: "record the identity of the person",
    Action.IDENTITY_NOTE: "add a note to the person's file",
    Action.IDENTITY_READ: "read identity data",
    Action.SHARING_MANAGE: "share identity with another organisation",
    Action.SHARING_VIEW: "see with whom identity is shared",
    Action.TASK_INBOX: "have a task inbox",
    Action.TASK_VIEW: "see this task",
    Action.TASK_COMPLETE: "complete this task",
    Action.OPS_STUCK: "list stuck cases",
    Action.OPS_ACT: "take operator actions",
    Action.STATISTICS: "read statistics",
    Action.REPORT_READ: "read the statistical report",
    Action.SNAPSHOT_READ: "read the caseload snapshot",
    Action.TRAFFICKING_RECORD: "record how trafficking occurred",
    Action.TRAFFICKING_VIEW: "see how trafficking occurred",
    Action.AUDIT_READ: "read the audit log",
    Action.CASE_PACKAGE_EXPORT: "export a case package to another deployment",
    Action.CASE_PACKAGE_IMPORT: "import a case package from another deployment",
    Action.CASE_LINK: "link this case to the same person's earlier case",
}


def _say(action: Action) -> str:
    return _SAY[action]
