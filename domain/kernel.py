"""What both aggregates share: the event base class, a refusal, the roles, the system's
own author names, and the identifier and code types every event and message uses.

The journey (``domain.journey``) and the follow-up (``domain.reintegration``) build on this
module; it imports neither. Values are codes, never free text: ISO 3166-1 alpha-2
countries and opaque identifiers (organisation ids, vault record ids, actor ids) whose
patterns cannot hold a name, an address or an e-mail address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

# ISO 3166-1 alpha-2, plus XK (Kosovo: a user-assigned code used by the EU, IOM and the
# Western Balkan missions this system serves).
ISO_3166_ALPHA_2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
    """.split()
)


def _known_country(code: str) -> str:
    if code not in ISO_3166_ALPHA_2:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


CountryCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(_known_country)
]
"""ISO 3166-1 alpha-2, upper case (``MD``, ``RS``, ``XK``)."""

OrganisationId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
"""Slug of a mission or partner organisation (``iom-belgrade``), never a person."""

ActorId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_:.-]{0,63}$")]
"""Opaque id of a staff account (``u-4821``) or ``system:<component>``; no ``@``, no spaces."""

RecordId = Annotated[str, StringConstraints(pattern=r"^rec_[A-Za-z0-9]{8,64}$")]
"""Opaque id of a record in the person vault (interview, consent form, assessment)."""

CaseId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{5,63}$")]
"""Random case id; the workflow id is ``return-<case id>``."""

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.:-]{1,64}$")]
"""A machine code (stage, outcome, event type, blocked-on value), never prose."""

SYSTEM_ORGANISATION = "homeward"
"""Author organisation of events the system itself owns (tasks, escalations, outcomes)."""

WORKFLOW_ACTOR = "system:workflow"


class Role(StrEnum):
    SENDING_MISSION = "sending_mission"
    RECEIVING_MISSION = "receiving_mission"
    PARTNER = "partner"
    SYSTEM = "system"


# --- the event base class ----------------------------------------------------------------


class DomainEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]  # the stored type name, the ``type`` literal: refer to events by it
    schema_version: ClassVar[int] = 1
    owner: ClassVar[Role]
    # A few facts are reported by whichever mission is with her (a person not met at
    # arrival, a safe place confirmed): those roles may append them too.
    also_owned_by: ClassVar[frozenset[Role]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        type_field = cls.model_fields.get("type")
        if type_field is not None:
            cls.TYPE = type_field.default


# --- a refusal, a value a decider returns instead of events ------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a command was refused, in words for the coordinator; ``code`` for a machine.

    ``expected`` lists what would be accepted instead (the facts expected now) and
    ``allowed_from`` when the same command becomes possible (a witness's departure)."""

    reason: str
    code: str = "refused"
    expected: tuple[str, ...] = ()
    allowed_from: datetime | None = None

    def __str__(self) -> str:
        return self.reason


# --- age: an age band, never a birth date, and the minor rule both aggregates apply -------


class AgeCategory(StrEnum):
    """An age band, never a birth date. Unknown or disputed age is treated as a minor."""

    UNDER_12 = "under_12"
    AGE_12_TO_17 = "12_17"
    AGE_18_TO_24 = "18_24"
    AGE_25_TO_34 = "25_34"
    AGE_35_PLUS = "35_plus"
    UNKNOWN = "unknown"
    DISPUTED = "disputed"


class AgeAssessor(StrEnum):
    """Who assessed her age (§6.5.3: girls are often told to say they are adults)."""

    POLICE = "police"
    SOCIAL_WELFARE_CENTRE = "social_welfare_centre"
    MEDICAL_ASSESSMENT = "medical_assessment"
    COURT = "court"


_ADULT_BANDS = frozenset(
    {AgeCategory.AGE_18_TO_24, AgeCategory.AGE_25_TO_34, AgeCategory.AGE_35_PLUS}
)


def treated_as_minor(age: AgeCategory) -> bool:
    """Under 18, and also unknown or disputed age: the benefit of the doubt goes to the child."""
    return age not in _ADULT_BANDS
