"""Temporal activities: every persisted step and every call to the outside world.

``build_activities`` is what a worker registers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.events import EventActivities
from activities.travel import TravelActivities, TravelProvider, make_travel_provider
from store.event_store import EventStore


def build_activities(store: EventStore, travel: TravelProvider) -> list[Callable[..., Any]]:
    events = EventActivities(store)
    journeys = TravelActivities(travel)
    return [events.append_events, journeys.book_journey, journeys.cancel_booking]


__all__ = ["TravelProvider", "build_activities", "make_travel_provider"]
