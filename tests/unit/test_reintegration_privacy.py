"""Reintegration's events, messages and configuration hold no identity data: the same walk
as ``test_privacy_models`` over the reintegration modules (wellbeing notes are vault
record ids, an "other" closure reason is a code)."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel
from test_privacy_models import problems_of

from domain.reintegration import events as reintegration_events
from domain.reintegration import messages as reintegration_messages
from domain.reintegration.config import GrantInstalmentSpec, ReintegrationConfig


def reintegration_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [ReintegrationConfig, GrantInstalmentSpec]
    for module in (reintegration_events, reintegration_messages):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseModel) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


@pytest.mark.parametrize("model", reintegration_models(), ids=lambda m: m.__name__)
def test_reintegration_models_hold_no_identity(model):
    assert problems_of(model) == []


def test_every_reintegration_model_is_covered():
    names = {m.__name__ for m in reintegration_models()}
    assert {"ReintegrationInput", "ReintegrationState", "ReintegrationTaskCompletion",
            "PlanChange", "RiskReport", "Closure", "CheckInReached",
            "SustainabilityAssessed", "ReintegrationConfig",
            # the mission's decision at reopening: codes and a vault record id only
            "Reopening", "ReintegrationReopened", "RestoredInstalment"} <= names
