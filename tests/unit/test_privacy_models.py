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

from domain.journey import config
from store.vault import IDENTITY_FIELD_NAMES

FORBIDDEN = re.compile(
    r"name|birth|dob|address|street|city|document_number|passport|phone|email|note|text"
    r"|comment|description|remark|narrative|story|answer|photo_data|free",
    re.IGNORECASE,
)
SAFE_LEAVES = (bool, int, float, uuid.UUID, datetime, timedelta, type(None))


def _message_and_event_modules():
    """Every ``messages`` and ``events`` module of domain/ and its aggregates
    (``domain.journey.events``, ``domain.reintegration.messages``, …) and every
    ``*_messages`` / ``*_events`` module (``domain.outside_events``), and the catalogue
    (the envelope of the ``append_events`` activity)."""
    import importlib
    import pkgutil

    import domain

    names = [m.name for m in pkgutil.walk_packages(domain.__path__, "domain.")
             if m.name.rsplit(".", 1)[-1] in ("messages", "events")
             or m.name.endswith(("_messages", "_events")) or m.name == "domain.catalogue"]
    return [importlib.import_module(name) for name in sorted(names)]


def temporal_facing_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [config.JourneyConfig]
    for module in _message_and_event_modules():
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
            "JourneyConfig", "ReintegrationInput", "ReintegrationStarted",
            "SharingGranted"} <= names


def _field_names(model: type[BaseModel], seen: set[type]) -> set[str]:
    if model in seen:
        return set()
    seen.add(model)
    names = set(model.model_fields)
    for field in model.model_fields.values():
        for tp in _nested_types(field.annotation):
            if inspect.isclass(tp) and issubclass(tp, BaseModel):
                names |= _field_names(tp, seen)
    return names


def _nested_types(tp) -> list:
    args = typing.get_args(tp)
    return [tp, *[t for arg in args for t in _nested_types(arg)]]


def test_no_vault_field_name_is_a_field_of_any_temporal_facing_model():
    """The vault's own field names (given_names, date_of_birth, shelter_address, notes...)
    are the definition of identity data: none may be a field of what Temporal sees."""
    seen: set[type] = set()
    everywhere = set().union(*(_field_names(m, seen) for m in temporal_facing_models()))
    assert everywhere & IDENTITY_FIELD_NAMES == set()
    assert "given_names" in IDENTITY_FIELD_NAMES and "shelter_address" in IDENTITY_FIELD_NAMES
