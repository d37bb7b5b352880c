"""Nothing that crosses the Temporal boundary, and no event, can hold identity data.

Temporal histories are read by operators, and events are the case file shared between
missions: both carry codes and opaque ids only (architecture, "Identity and privacy
rules"). This walks every field of every such model and fails on a field whose name
suggests identity data, or on any string that is not constrained to a code or an id.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
import uuid
from datetime import datetime, timedelta

import pytest
from pydantic import BaseModel

from domain import config, events, messages

FORBIDDEN = re.compile(
    r"name|birth|dob|address|street|city|document_number|passport|phone|email|note|text"
    r"|comment|description|remark|narrative|story|answer|photo_data|free",
    re.IGNORECASE,
)
SAFE_LEAVES = (bool, int, float, uuid.UUID, datetime, timedelta, type(None))


def temporal_facing_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [config.JourneyConfig]
    for module in (messages, events):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseModel) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def _has_pattern(metadata: typing.Iterable[object]) -> bool:
    return any(getattr(m, "pattern", None) for m in metadata)


def problems_of(model: type[BaseModel], seen: set[type] | None = None) -> list[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return []
    seen.add(model)
    found: list[str] = []
    for name, field in model.model_fields.items():
        where = f"{model.__name__}.{name}"
        if FORBIDDEN.search(name):
            found.append(f"{where}: field name suggests identity data")
        found += _check_type(field.annotation, field.metadata, where, seen)
    return found


def _check_type(tp, metadata, where: str, seen: set[type]) -> list[str]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(tp)
        return _check_type(base, [*metadata, *extra], where, seen)
    if tp is str:
        return [] if _has_pattern(metadata) else [f"{where}: unconstrained str (free text)"]
    if origin is typing.Literal:
        return []
    if origin in (typing.Union, types.UnionType, tuple, list, dict, frozenset, set):
        out: list[str] = []
        for arg in typing.get_args(tp):
            if arg is not Ellipsis:
                out += _check_type(arg, [], where, seen)
        return out
    if inspect.isclass(tp) and issubclass(tp, enum.Enum):
        return []
    if inspect.isclass(tp) and issubclass(tp, BaseModel):
        return problems_of(tp, seen)
    if tp in SAFE_LEAVES:
        return []
    return [f"{where}: type {tp!r} not known to be identity-free"]


def test_the_walk_finds_identity_fields():
    class Leaky(BaseModel):
        full_name: typing.Annotated[str, "x"]
        remarks: str
        nested: tuple[str, ...]

    found = problems_of(Leaky)
    assert any("full_name: field name" in p for p in found)
    assert any("remarks: unconstrained str" in p for p in found)
    assert any("nested: unconstrained str" in p for p in found)


@pytest.mark.parametrize("model", temporal_facing_models(), ids=lambda m: m.__name__)
def test_temporal_facing_models_hold_no_identity(model):
    assert problems_of(model) == []


def test_every_message_and_event_is_covered():
    names = {m.__name__ for m in temporal_facing_models()}
    assert {"ReturnCaseInput", "TaskCompletion", "JourneyFact", "ConsentWithdrawal",
            "AppendEventsRequest", "BookingRequest", "CaseView", "ReferralRegistered",
            "JourneyConfig"} <= names
