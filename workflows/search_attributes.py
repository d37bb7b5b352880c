"""Custom search attributes operators filter on in the Temporal UI.

Registered by `homeward dev` at start, by the test environments, and by the
namespace set-up step of docker-compose. Values are ids, codes and stages only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

STAGE = SearchAttributeKey.for_keyword("HomewardStage")
BLOCKED_ON = SearchAttributeKey.for_keyword("HomewardBlockedOn")
BLOCKED_SINCE = SearchAttributeKey.for_datetime("HomewardBlockedSince")
SENDING_MISSION = SearchAttributeKey.for_keyword("HomewardSendingMission")
RECEIVING_MISSION = SearchAttributeKey.for_keyword("HomewardReceivingMission")
DESTINATION_COUNTRY = SearchAttributeKey.for_keyword("HomewardDestinationCountry")
MINOR = SearchAttributeKey.for_bool("HomewardMinor")
MISSING = SearchAttributeKey.for_bool("HomewardMissing")  # did not arrive; tracing open
# Reintegration (the ``reintegration-<case id>`` child workflow).
REINTEGRATION_STAGE = SearchAttributeKey.for_keyword("HomewardReintegrationStage")
NEXT_CHECK_IN_DUE = SearchAttributeKey.for_datetime("HomewardNextCheckInDue")
CONTACT_LOST = SearchAttributeKey.for_bool("HomewardContactLost")
CLOSED_REASON = SearchAttributeKey.for_keyword("HomewardClosedReason")
RISK_ESCALATED = SearchAttributeKey.for_keyword("HomewardRiskEscalated")

ALL = [
    STAGE,
    BLOCKED_ON,
    BLOCKED_SINCE,
    SENDING_MISSION,
    RECEIVING_MISSION,
    DESTINATION_COUNTRY,
    MINOR,
    MISSING,
    REINTEGRATION_STAGE,
    NEXT_CHECK_IN_DUE,
    CONTACT_LOST,
    CLOSED_REASON,
    RISK_ESCALATED,
]


def blocked(on: str | None, since: datetime) -> list[SearchAttributeUpdate[Any]]:
    """What a case waits on and since when: the two are set and cleared together."""
    if on is None:
        return [BLOCKED_ON.value_unset(), BLOCKED_SINCE.value_unset()]
    return [BLOCKED_ON.value_set(on), BLOCKED_SINCE.value_set(since)]


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "BOOL": "Bool", "INT": "Int",
             "TEXT": "Text", "FLOAT": "Double", "KEYWORD_LIST": "KeywordList"}
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags
