"""The two aggregates' deciders read alike (decision 0050): a newcomer who learnt one
knows where everything is in the other."""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing

import pytest

from domain.journey import decider as journey
from domain.reintegration import decider as follow_up

DECIDERS = pytest.mark.parametrize("decider", [journey, follow_up], ids=["journey", "follow_up"])
VERB_OBJECT = re.compile(r"^(?:[A-Z][a-z]+){2,}$")


STATE = {journey: "JourneyState", follow_up: "ReintegrationState"}


def annotations(function) -> list[str]:
    return [p.annotation for p in inspect.signature(function).parameters.values()]


@DECIDERS
def test_decide_evolve_and_fold_take_the_same_arguments(decider):
    state = STATE[decider]
    assert annotations(decider.decide) == [state, "Command", "Context"]
    assert annotations(decider.evolve)[0] == state
    assert annotations(decider.fold)[0] == state
    assert dataclasses.is_dataclass(decider.Context)
    assert "now" in {f.name for f in dataclasses.fields(decider.Context)}


@DECIDERS
def test_commands_are_frozen_and_named_verb_then_object(decider):
    commands = typing.get_args(decider.Command)
    assert commands
    for command in commands:
        assert dataclasses.is_dataclass(command) and command.__dataclass_params__.frozen
        assert VERB_OBJECT.match(command.__name__), command.__name__
        assert command.__name__ in decider.__all__ or command.__module__ == decider.__name__


def test_the_states_are_named_after_their_aggregate():
    assert journey.JourneyState.__name__ == "JourneyState"
    assert follow_up.ReintegrationState.__name__ == "ReintegrationState"
    journey_commands = {c.__name__ for c in typing.get_args(journey.Command)}
    follow_up_commands = {c.__name__ for c in typing.get_args(follow_up.Command)}
    # The same act has the same name in both.
    assert {"CompleteTask", "AssessAge"} <= journey_commands & follow_up_commands
