"""Load shedding: past ``max_inflight`` requests in progress, a new one is answered 503
``overloaded`` with ``Retry-After`` at once, as a problem (``api.errors``), instead of
queueing behind the others until its client times out and retries (decision 0054).

A plain in-flight counter, not a queue: the API's work waits on PostgreSQL and Temporal,
and past the limit more concurrency only makes every request slower. ``/health`` is never
shed: a saturated API still answers its orchestrator. A request holds its slot until the
app has answered it (the body included: no endpoint streams)."""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import send_problem

log = structlog.get_logger("homeward.api")

DEFAULT_MAX_INFLIGHT = 128
RETRY_AFTER_SECONDS = 1
# Probes and the scrape: an orchestrator must see a saturated API alive (decision 0060).
EXEMPT_PATHS = frozenset({"/health", "/health/live", "/health/ready", "/metrics"})


class LoadShedding:
    def __init__(self, app: ASGIApp, max_inflight: int = DEFAULT_MAX_INFLIGHT,
                 retry_after: int = RETRY_AFTER_SECONDS) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.app = app
        self.max_inflight = max_inflight
        self.retry_after = retry_after
        self.inflight = 0
        self.shed = 0  # requests answered 503 overloaded since start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        # One event loop: nothing runs between this test and the increment.
        if self.inflight >= self.max_inflight:
            self.shed += 1
            log.warning("request shed", inflight=self.inflight, limit=self.max_inflight)
            await self._refuse(scope, send)
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await send_problem(
            scope, send, 503, "overloaded",
            f"the API is serving {self.max_inflight} requests already; nothing was done: "
            f"try again in {self.retry_after} s", retry_after=self.retry_after)
