"""Which database failures a retry can cure, decided in one place.

The driver reports an unreachable or restarting PostgreSQL in several shapes: asyncpg
raises a plain ``ConnectionRefusedError`` (an ``OSError``) when it cannot connect, its own
``PostgresConnectionError`` family, ``CannotConnectNowError`` while the server starts,
``AdminShutdownError`` when it stops under a session; SQLAlchemy wraps some of these in
``OperationalError`` / ``InterfaceError`` or marks them ``connection_invalidated``. Callers
ask ``unavailable(error)``, or run their work inside ``translated(...)`` to receive a
``StoreUnavailable`` (transient: retry later) instead of the driver's exception; every
other failure stays what it was (permanent for that request). Nothing here keeps the
driver's message: it may quote the values of a refused row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg.exceptions as pg
from sqlalchemy import exc as sa

from store.events import StoreError

_UNAVAILABLE = (
    OSError,  # ConnectionRefusedError, ConnectionResetError, TimeoutError
    pg.PostgresConnectionError,  # ConnectionDoesNotExist, ClientCannotConnect, …
    pg.OperatorInterventionError,  # AdminShutdown, CrashShutdown, CannotConnectNow
    pg.TooManyConnectionsError,
)
# SQLSTATE classes of a server that is going away or not there yet: 08 connection
# exception, 57P0x operator intervention (shutdown, crash, cannot connect now), 53300 too
# many connections.
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


class StoreUnavailable(StoreError):
    """The database cannot be reached now; the same request may succeed later."""

    def __init__(self, what: str):
        super().__init__(f"{what}: the database is unavailable")
        self.what = what


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) says the database is unreachable now."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (StoreUnavailable, *_UNAVAILABLE)):
            return True
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, pg.InterfaceError) and "closed" in str(current):
            return True  # a pooled connection the server closed (restart, shutdown)
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES):
            return True
        current = (getattr(current, "orig", None) or current.__cause__
                   or current.__context__)
    return False


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run a database step; an unreachable database becomes ``StoreUnavailable``."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as error:
        if unavailable(error):
            raise StoreUnavailable(what) from error
        raise
