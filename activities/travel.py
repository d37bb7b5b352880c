"""Journey booking through a ``TravelProvider`` port, with two adapters.

* ``simulated``: a deterministic in-process carrier with failure injection (the workflow
  input scripts which booking attempt is cancelled, denied boarding or misses its
  connection). Idempotent by request id, so a retried activity books nothing twice.
* ``manual``: the coordinator books with the carrier and enters the booking as a task
  (the workflow opens it); this adapter only answers cancellations, which the coordinator
  must then carry out with the carrier.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Any, Literal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.log import activity_logger
from domain.journey.messages import (
    Booking,
    BookingRequest,
    CancelBookingRequest,
    CancelBookingResult,
)
from domain.journey.vocabulary import RouteKind, TravelAdapter

NO_ROUTE = "NoRouteAvailable"
ADAPTER_UNAVAILABLE = "TravelAdapterUnavailable"


class NoRouteAvailable(Exception):
    """Every entry point into the destination was refused or is closed."""


class TravelProvider(ABC):
    kind: TravelAdapter

    @abstractmethod
    async def book(self, request: BookingRequest) -> Booking: ...

    @abstractmethod
    async def cancel(self, request: CancelBookingRequest) -> CancelBookingResult: ...


# Airports / crossings of entry by destination country: the first is the direct route,
# the others alternatives after a refusal at the border (§4.4.3: "via another airport").
ENTRY_POINTS: dict[str, tuple[str, ...]] = {
    "MD": ("KIV", "IAS", "BZY"),
    "RO": ("OTP", "CLJ", "TSR"),
    "UA": ("KBP", "ODS", "LWO"),
    "BG": ("SOF", "VAR", "BOJ"),
    "RU": ("SVO", "LED"),
    "BY": ("MSQ", "GME"),
    "AL": ("TIA", "OHD"),
    "RS": ("BEG", "INI"),
    "XK": ("PRN", "SKP"),
    "BA": ("SJJ", "TZL"),
    "MK": ("SKP", "OHD"),
}


def entry_points_for(country: str) -> tuple[str, ...]:
    return ENTRY_POINTS.get(country, (f"{country}A", f"{country}B"))


class SimulatedTravelProvider(TravelProvider):
    kind = TravelAdapter.SIMULATED

    def __init__(self, fail_cancellations: int = 0):
        self._bookings: dict[str, Booking] = {}  # by request id
        self._cancelled: set[str] = set()
        self._fail_cancellations = fail_cancellations  # transient-failure injection

    async def book(self, request: BookingRequest) -> Booking:
        key = str(request.request_id)
        if key in self._bookings:
            return self._bookings[key]
        options = [p for p in entry_points_for(request.destination_country)
                   if p not in request.avoid_entry_points]
        if not options:
            raise NoRouteAvailable(
                f"no entry point into {request.destination_country} left after refusals at "
                f"{', '.join(request.avoid_entry_points)}"
            )
        entry_point = options[0]
        digest = hashlib.sha256(key.encode()).hexdigest()[:8].upper()
        booking = Booking(
            booking_ref=f"SIM-{digest}",
            provider=TravelAdapter.SIMULATED,
            route=RouteKind.DIRECT if entry_point == entry_points_for(
                request.destination_country)[0] else RouteKind.ALTERNATIVE,
            entry_point=entry_point,
            departure_at=request.not_before,
            disruption=request.simulated_disruption,
        )
        self._bookings[key] = booking
        return booking

    async def cancel(self, request: CancelBookingRequest) -> CancelBookingResult:
        if self._fail_cancellations > 0:
            self._fail_cancellations -= 1
            raise ConnectionError("simulated carrier unreachable")
        self._cancelled.add(request.booking_ref)  # idempotent: cancelling twice is fine
        return CancelBookingResult(booking_ref=request.booking_ref, cancelled=True,
                                   manual_follow_up=False)

    def is_cancelled(self, booking_ref: str) -> bool:
        return booking_ref in self._cancelled


class ManualTravelProvider(TravelProvider):
    kind = TravelAdapter.MANUAL

    async def book(self, request: BookingRequest) -> Booking:
        raise ApplicationError(
            "manual travel: the coordinator enters the booking as a task",
            type=ADAPTER_UNAVAILABLE,
            non_retryable=True,
        )

    async def cancel(self, request: CancelBookingRequest) -> CancelBookingResult:
        return CancelBookingResult(booking_ref=request.booking_ref, cancelled=False,
                                   manual_follow_up=True)


def make_travel_provider(kind: Literal["simulated", "manual"], **options: Any) -> TravelProvider:
    if kind == "simulated":
        return SimulatedTravelProvider(**options)
    if kind == "manual":
        if options:
            raise TypeError(f"the manual travel adapter takes no options: {sorted(options)}")
        return ManualTravelProvider()
    raise ValueError(f"unknown travel adapter {kind!r} (simulated, manual)")


class TravelActivities:
    """Routes by the booking's provider: cancelling a manual booking works on any worker."""

    def __init__(self, travel: TravelProvider):
        self._providers: dict[TravelAdapter, TravelProvider] = {TravelAdapter.MANUAL:
                                                                 ManualTravelProvider()}
        self._providers[travel.kind] = travel

    @activity.defn(name="book_journey")
    async def book_journey(self, request: BookingRequest) -> Booking:
        log = activity_logger()
        provider = self._providers.get(TravelAdapter.SIMULATED)
        if provider is None:
            raise ApplicationError("this worker has no simulated travel adapter",
                                   type=ADAPTER_UNAVAILABLE, non_retryable=True)
        try:
            booking = await provider.book(request)
        except NoRouteAvailable as error:
            log.warning("no route", attempt=request.attempt)
            raise ApplicationError(str(error), type=NO_ROUTE, non_retryable=True) from error
        log.info("journey booked", attempt=request.attempt, booking_ref=booking.booking_ref,
                 entry_point=booking.entry_point)
        return booking

    @activity.defn(name="cancel_booking")
    async def cancel_booking(self, request: CancelBookingRequest) -> CancelBookingResult:
        log = activity_logger()
        result = await self._providers[request.provider].cancel(request)
        log.info("booking cancelled", booking_ref=request.booking_ref,
                 manual_follow_up=result.manual_follow_up)
        return result
