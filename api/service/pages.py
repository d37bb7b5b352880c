"""Cursor pages for every list the API answers (decision 0058).

A list is read in a stable order (its sort key ends with a unique id), one row more than
asked: when that row exists, the page ends with a ``next_cursor`` that names the last row
sent, and the next page starts after it (a keyset, ``WHERE (key, id) > (...)``), so that
rows inserted or removed meanwhile never shift a page; at the end ``next_cursor`` is null.

A cursor is opaque to clients: URL-safe base64 of a small JSON array, the list's name and
the last row's sort key, which is made of case ids, task ids, versions, organisation ids
and times only, never identity data. It positions a page within what the caller may see
(the filters and the authorisation are applied again on every page); it grants nothing.
A cursor that does not decode, or names another list, or holds a key of the wrong shape
is refused: 422 ``invalid_cursor``."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query

from api.errors import ApiError

T = TypeVar("T")

CURSOR_VERSION = 1
MAX_CURSOR_LENGTH = 512

CursorQuery = Annotated[str | None, Query(
    max_length=MAX_CURSOR_LENGTH, pattern=r"^[A-Za-z0-9_-]+$",
    description="The `next_cursor` of the page before; omit it for the first page.")]


def encode(name: str, key: Sequence[Any]) -> str:
    """The cursor after a row whose sort key is ``key`` in list ``name``."""
    values = [v.isoformat() if isinstance(v, datetime) else
              str(v) if isinstance(v, uuid.UUID) else v for v in key]
    raw = json.dumps([CURSOR_VERSION, name, *values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(name: str, cursor: str | None,
           shape: Sequence[Callable[[Any], Any]]) -> tuple[Any, ...] | None:
    """The sort key a cursor of list ``name`` names, each value parsed by ``shape``
    (``an_id``, ``parse_time``, ``whole``, ``text``, or ``nullable(...)`` of one);
    None without a cursor; 422 ``invalid_cursor`` for anything else."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, listed, *values = json.loads(raw)
        if version != CURSOR_VERSION or listed != name or len(values) != len(shape):
            raise ValueError("another list's cursor")
        return tuple(parse(value) for parse, value in zip(shape, values, strict=True))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "invalid_cursor",
                       "the cursor is not one this list gave out: send the next_cursor of "
                       "the page before unchanged, or none for the first page") from None


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("a time is a string")
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError("a time has a zone")
    return at


def an_id(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise TypeError("an id is a string")
    return uuid.UUID(value)


def text(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        raise TypeError("a text key")
    return value


def whole(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError("a whole number")
    return value


def nullable(parse: Callable[[Any], T]) -> Callable[[Any], T | None]:
    def parse_or_none(value: Any) -> T | None:
        return None if value is None else parse(value)

    return parse_or_none


def page(name: str, rows: Sequence[T], limit: int,
         key: Callable[[T], Sequence[Any]]) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``rows`` (read with ``limit + 1``) and the cursor after the
    last of them, or None when no row follows."""
    shown = list(rows[:limit])
    if len(rows) <= limit or not shown:
        return shown, None
    return shown, encode(name, key(shown[-1]))
