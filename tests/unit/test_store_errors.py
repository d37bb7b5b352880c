"""One decision of which database failures a retry can cure (issue 13: an unreachable
PostgreSQL answered 500 because asyncpg raises a plain ConnectionRefusedError)."""

from __future__ import annotations

import asyncpg.exceptions as pg
import pytest
from sqlalchemy import exc as sa

from store.errors import StoreUnavailable, translated, unavailable
from store.events import ConcurrencyConflict


def wrapped(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as error:
            raise outer from error
    except Exception as raised:
        return raised


@pytest.mark.parametrize("error", [
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(),
    TimeoutError(),
    pg.CannotConnectNowError("the database system is starting up"),
    pg.AdminShutdownError("terminating connection due to administrator command"),
    pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    pg.TooManyConnectionsError("sorry, too many clients already"),
    pg.InterfaceError("connection is closed"),
    sa.OperationalError("SELECT 1", {}, ConnectionRefusedError(), connection_invalidated=True),
    wrapped(RuntimeError("while reading the case"), ConnectionRefusedError()),
], ids=lambda e: type(e).__name__)
def test_an_unreachable_database_is_unavailable(error):
    assert unavailable(error)
    with pytest.raises(StoreUnavailable) as translated_error:
        with translated("reading the case"):
            raise error
    assert translated_error.value.__cause__ is error


@pytest.mark.parametrize("error", [
    sa.IntegrityError("INSERT", {"name": "Ana"}, Exception("duplicate key")),
    pg.UniqueViolationError("duplicate key value violates unique constraint"),
    ConcurrencyConflict("c-1", 3, 4),
    pg.InterfaceError("cannot perform operation: another operation is in progress"),
    ValueError("bad input"),
], ids=lambda e: type(e).__name__)
def test_other_failures_stay_what_they_are(error):
    assert not unavailable(error)
    with pytest.raises(type(error)):
        with translated("appending"):
            raise error


def test_the_translation_keeps_no_driver_message():
    with pytest.raises(StoreUnavailable) as raised:
        with translated("appending"):
            raise pg.AdminShutdownError("terminating connection; row (Ana Popescu) lost")
    assert "Popescu" not in str(raised.value)
