"""The one canonical serialisation and hash of an event, used by append and by verify.

hash = sha256(prev_hash + canonical JSON array of the stored columns), hex encoded.
Changing anything here invalidates every stored chain: add a new scheme, never edit.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from store.events import Causation

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, e.g. 2025-01-31T08:00:00.000000+00:00."""
    if moment.utcoffset() is None:
        raise ValueError(f"timestamp must be timezone-aware: {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    prev_hash: str,
    *,
    case_id: str,
    version: int,
    event_id: uuid.UUID,
    event_type: str,
    schema_version: int,
    payload_json: str,
    author_org: str,
    actor: str,
    occurred_at: datetime,
    causation: Causation,
) -> str:
    record = canonical_json(
        [
            case_id,
            version,
            str(event_id),
            event_type,
            schema_version,
            payload_json,  # the exact stored text, not a re-serialisation
            author_org,
            actor,
            canonical_timestamp(occurred_at),
            causation.workflow_id,
            causation.run_id,
            causation.activity_id,
        ]
    )
    return hashlib.sha256((prev_hash + record).encode("utf-8")).hexdigest()
