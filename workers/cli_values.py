"""What every command module shares: the exit code of a usage error, and dates as the
command line gives them."""

from __future__ import annotations

from datetime import date

USAGE_ERROR = 2  # bad arguments or configuration: the command did nothing


def day(value: str | None, flag: str) -> date | None:
    """``value`` of ``flag`` as a date (None stays None); a ValueError naming the flag and
    the value otherwise."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{flag} {value!r} is not a date (YYYY-MM-DD)") from None
