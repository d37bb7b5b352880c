"""How trafficking occurred (seed rec. 17; decision 0066): the sending mission's coded,
non-identifying account of her recruitment, exploitation and route, every question
skippable.

The codes follow the Human Trafficking Case Data Standard 2.0
(``../shared/reference/htcds-2.0-field-standards.tsv``) where it has a field:

| here | HTCDS field | values |
|---|---|---|
| ``recruitment_method`` | ``vic_MethodOfRecruitment`` | its picklist names, verbatim |
| ``exploitation_types`` | ``vic_TypeOfExploitation`` | its picklist names, verbatim |
| ``route[].role`` | ``hte_Type`` (Historic Trafficking Events) | its names, lower case |
| ``route[].country`` | ``hte_Country`` | ISO 3166-1 alpha-2 (HTCDS: text) |
| ``duration_band`` | none (``hte_Date`` holds dates) | bands: a date helps identify her |
| ``transport_means`` | none | this programme's own codes |

HTCDS's ``vic_MethodOfRecruitment`` is a multiselect; here it is the main method, one
code. Its free-text fields (``hte_Description``, streets, cities) have no place here: a
narrative is a note in the person vault.

The account is an event the API appends after ``decide`` (it changes nothing the journey
decides), not a field of the vault: nothing in it identifies a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.journey import events as ev
from domain.journey.vocabulary import TraffickingStatus
from domain.kernel import CountryCode, DomainEvent, Refusal, Role
from domain.outside_events import Writer

__all__ = ["Command", "Context", "RecordTraffickingAccount", "TraffickingAccountState",
           "decide", "evolve", "fold"]


class RecruitmentMethod(StrEnum):
    """HTCDS ``vic_MethodOfRecruitment``."""

    AT_A_PLACE_OF_BUSINESS = "AtAPlaceOfBusiness"
    AT_AN_EDUCATIONAL_INSTITUTION = "AtAnEducationalInstitution"
    AT_WORK = "AtWork"
    THROUGH_ONLINE_SOCIAL_NETWORKS = "ThroughOnlineSocialNetworks"
    THROUGH_AN_ONLINE_ADVERTISEMENT = "ThroughAnOnlineAdvertisement"
    THROUGH_A_TELEVISION_ADVERT = "ThroughATelevisionAdvert"
    THROUGH_A_NEWSPAPER_ADVERT = "ThroughANewspaperAdvert"
    THROUGH_FAMILY_OR_FAMILY_EVENTS = "ThroughFamilyOrFamilyEvents"
    THROUGH_FRIENDS_OR_SOCIAL_EVENTS = "ThroughFriendsOrSocialEvents"
    OTHER = "Other"


class ExploitationType(StrEnum):
    """HTCDS ``vic_TypeOfExploitation``."""

    FORCED_LABOUR = "ForcedLabour"
    SEXUAL_EXPLOITATION = "SexualExploitation"
    CHILD_LABOUR = "ChildLabour"
    FORCED_MARRIAGE = "ForcedMarriage"
    SERVITUDE = "Servitude"
    FORCED_MILITARY_BY_NON_STATE_ACTORS = "ForcedMilitaryByNonStateActors"
    ORGAN_REMOVAL = "OrganRemoval"
    FORCED_BEGGING = "ForcedBegging"
    FORCED_ADOPTION = "ForcedAdoption"
    SURROGACY = "Surrogacy"
    OTHER = "Other"


class RouteRole(StrEnum):
    """HTCDS ``hte_Type``: what happened in a country of her route."""

    RECRUITMENT = "recruitment"
    TRANSIT = "transit"
    EXPLOITATION = "exploitation"


class DurationBand(StrEnum):
    """From recruitment to her exit from exploitation, as a band (never dates)."""

    UNDER_1_MONTH = "under_1_month"
    MONTHS_1_6 = "1_6_months"
    MONTHS_6_12 = "6_12_months"
    YEARS_1_3 = "1_3_years"
    YEARS_3_PLUS = "3_years_plus"


class TransportMeans(StrEnum):
    """How she was moved (any that apply)."""

    AIR = "air"
    BUS = "bus"
    CAR = "car"
    TRUCK = "truck"
    TRAIN = "train"
    BOAT = "boat"
    ON_FOOT = "on_foot"
    OTHER = "other"


MAX_ROUTE_STOPS = 20


class RouteStop(BaseModel):
    """One country of her route and what happened there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: RouteRole
    country: CountryCode


def _as_set(values: Iterable[Any]) -> tuple[Any, ...]:
    """Multiselect answers: each once, in code order (the order they were ticked means
    nothing, so the same answers always make the same account)."""
    return tuple(sorted(set(values)))


class TraffickingAccount(BaseModel):
    """Her account, every question skippable (None or empty: not answered). ``route`` is
    ordered: the countries she was taken through, first to last, each with its role; a
    country may come back (exploited, moved on, exploited again)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recruitment_method: RecruitmentMethod | None = None
    exploitation_types: tuple[ExploitationType, ...] = Field(default=(), max_length=11)
    route: tuple[RouteStop, ...] = Field(default=(), max_length=MAX_ROUTE_STOPS)
    duration_band: DurationBand | None = None
    transport_means: tuple[TransportMeans, ...] = Field(default=(), max_length=8)

    @field_validator("exploitation_types", "transport_means")
    @classmethod
    def _each_once(cls, values: Iterable[Any]) -> tuple[Any, ...]:
        return _as_set(values)

    def answers(self) -> TraffickingAccount:
        """The account itself, without what an event adds (its type)."""
        return TraffickingAccount.model_validate(
            self.model_dump(include=set(TraffickingAccount.model_fields)))


class TraffickingAccountRecorded(TraffickingAccount, DomainEvent):
    """The account, replacing any earlier one of the case whole (a later account that
    skips a question clears its answer)."""

    type: Literal["trafficking.account_recorded"] = "trafficking.account_recorded"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    writer: ClassVar[Writer] = Writer.API


TRAFFICKING_EVENTS: tuple[type[BaseModel], ...] = (TraffickingAccountRecorded,)


# --- the decider ------------------------------------------------------------------------


@dataclass(frozen=True)
class TraffickingAccountState:
    """What recording an account depends on, folded from the case's events."""

    referral_recorded: bool = False
    trafficking_status: TraffickingStatus | None = None  # the latest screening's
    account: TraffickingAccount | None = None


@dataclass(frozen=True)
class RecordTraffickingAccount:
    account: TraffickingAccount


Command = RecordTraffickingAccount


@dataclass(frozen=True)
class Context:
    now: datetime


FOLDED_TYPES = frozenset({ev.ReferralRegistered.TYPE, ev.ScreeningInterviewRecorded.TYPE,
                          TraffickingAccountRecorded.TYPE})
"""The event types ``evolve`` reads: a caller parses only these."""


def decide(state: TraffickingAccountState, command: Command,
           ctx: Context) -> list[TraffickingAccountRecorded] | Refusal:
    """The account as an event; nothing when it is the account already recorded (a
    repeated request, or every question skipped before any answer)."""
    del ctx  # no rule depends on the time: an account may come at any stage, even closed
    if not state.referral_recorded:
        return Refusal("the referral of this case is not recorded yet: try again shortly",
                       code="referral_not_recorded")
    if state.trafficking_status is TraffickingStatus.NOT_A_VICTIM:
        return Refusal("the screening found she is not a victim of trafficking: there is "
                       "no account of how trafficking occurred to record",
                       code="not_identified_as_victim")
    account = command.account.answers()
    if account == (state.account or TraffickingAccount()):
        return []
    return [TraffickingAccountRecorded(**account.model_dump())]


def evolve(state: TraffickingAccountState, event: Any) -> TraffickingAccountState:
    match event:
        case ev.ReferralRegistered():
            return replace(state, referral_recorded=True)
        case ev.ScreeningInterviewRecorded():
            return replace(state, trafficking_status=event.trafficking_status)
        case TraffickingAccountRecorded():
            return replace(state, account=event.answers())
    return state


def fold(state: TraffickingAccountState, events: Iterable[Any]) -> TraffickingAccountState:
    for event in events:
        state = evolve(state, event)
    return state
