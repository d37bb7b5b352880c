"""Which deployments this one exchanges case packages with (decision 0067): its own key
pair in a file, the public keys of others in the database.

- Own keys: ``HOMEWARD_PACKAGE_KEY_FILE``, else ``package-keys.json`` under
  ``HOMEWARD_DATA_DIR`` (default ``./.homeward``, as ``workers.settings``): written once by
  ``homeward keys generate`` (mode 0600, never printed), read by export and import.
- Trusted keys: the ``package_trust`` table (migration 0014), one row per organisation
  and key fingerprint, added by ``homeward keys trust`` after the fingerprint was compared
  out of band. Every key of an organisation verifies its packages (a new key beside the
  old one while packages signed with the old one are in transit); the newest encrypts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, DateTime, LargeBinary, MetaData, Table, Text, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from store.packages import OwnKeys, PublicKeys

KEY_FILE_SETTING = "HOMEWARD_PACKAGE_KEY_FILE"
KEY_FILE_NAME = "package-keys.json"


class TrustError(Exception):
    """Keys missing, malformed or ambiguous: one line, no secret."""


def own_key_file() -> Path:
    configured = os.environ.get(KEY_FILE_SETTING)
    if configured:
        return Path(configured)
    return Path(os.environ.get("HOMEWARD_DATA_DIR", "./.homeward")) / KEY_FILE_NAME


def generate_own_keys(org: str, path: Path) -> OwnKeys:
    """A new key pair for ``org``, written to ``path`` (0600); refused if one is there:
    packages already sent to this deployment would no longer open."""
    if path.exists():
        raise TrustError(f"{path} exists already: this deployment has its keys "
                         "(`homeward keys show`); it is never overwritten")
    keys = OwnKeys.generate(org)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(keys.to_json())
    return keys


def load_own_keys(path: Path | None = None) -> OwnKeys:
    path = path or own_key_file()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TrustError(f"this deployment has no package keys ({path}): run "
                         f"`homeward keys generate --org <your org>` or set "
                         f"{KEY_FILE_SETTING}") from None
    except OSError as error:
        raise TrustError(f"{path}: {error.strerror}") from None
    try:
        return OwnKeys.from_json(text)
    except (ValueError, KeyError, TypeError):
        raise TrustError(f"{path} is not a homeward package key file") from None


_metadata = MetaData()
package_trust = Table(
    "package_trust",
    _metadata,
    Column("org_id", Text, primary_key=True),
    Column("fingerprint", Text, primary_key=True),
    Column("signing_public_key", LargeBinary, nullable=False),
    Column("encryption_public_key", LargeBinary, nullable=False),
    Column("trusted_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class TrustedKey:
    keys: PublicKeys
    trusted_at: datetime


class TrustStore:
    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def trust(self, keys: PublicKeys) -> bool:
        """Trust ``keys`` for their organisation; False when they were trusted already."""
        async with self._engine.begin() as conn:
            row = (await conn.execute(
                insert(package_trust).values(
                    org_id=keys.org, fingerprint=keys.fingerprint,
                    signing_public_key=keys.signing, encryption_public_key=keys.encryption,
                    trusted_at=datetime.now(UTC))
                .on_conflict_do_nothing(index_elements=["org_id", "fingerprint"])
                .returning(package_trust.c.org_id))).first()
        return row is not None

    async def all(self) -> list[TrustedKey]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(package_trust).order_by(
                package_trust.c.org_id, package_trust.c.trusted_at))).all()
        return [_trusted(row) for row in rows]

    async def sender(self, org: str, fingerprint: str) -> PublicKeys | None:
        """The key of ``org`` with this fingerprint, if this deployment trusts it."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(package_trust).where(
                package_trust.c.org_id == org,
                package_trust.c.fingerprint == fingerprint))).first()
        return None if row is None else _trusted(row).keys

    async def recipient(self, org: str) -> PublicKeys | None:
        """The newest key trusted for ``org``: packages to it are encrypted to this one."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(package_trust).where(
                package_trust.c.org_id == org).order_by(
                package_trust.c.trusted_at.desc()).limit(1))).first()
        return None if row is None else _trusted(row).keys


def _trusted(row) -> TrustedKey:
    return TrustedKey(PublicKeys(row.org_id, bytes(row.signing_public_key),
                                 bytes(row.encryption_public_key)), row.trusted_at)
