"""Organisations, users and bearer tokens.

A token is shown once, as ``hw_<token id>_<secret>``; only SHA-256 of the secret is
stored (the secret is 256 random bits, so a slow password hash would add nothing).

Wrong secrets are throttled by where they come from, never by the token they name: a
token id is printed by ``token create`` and needed for ``revoke``, so whoever saw one
could otherwise lock its user out (decision 0056). Authenticating a valid token
reads one row and writes nothing, but for ``last_used_at`` once per
``LAST_USED_GRANULARITY``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine


class OrgKind(StrEnum):
    SENDING_MISSION = "sending_mission"
    RECEIVING_MISSION = "receiving_mission"
    PARTNER_NGO = "partner_ngo"
    OPERATOR_TEAM = "operator_team"
    ANALYST = "analyst"


class UserRole(StrEnum):
    COORDINATOR = "coordinator"
    RECEIVING_OFFICER = "receiving_officer"
    PARTNER_WORKER = "partner_worker"
    OPERATOR = "operator"
    ANALYST = "analyst"
    ADMINISTRATOR = "administrator"


ROLES_BY_ORG_KIND: dict[OrgKind, frozenset[UserRole]] = {
    OrgKind.SENDING_MISSION: frozenset({UserRole.COORDINATOR, UserRole.ADMINISTRATOR}),
    OrgKind.RECEIVING_MISSION: frozenset({UserRole.RECEIVING_OFFICER, UserRole.ADMINISTRATOR}),
    OrgKind.PARTNER_NGO: frozenset({UserRole.PARTNER_WORKER}),
    OrgKind.OPERATOR_TEAM: frozenset({UserRole.OPERATOR, UserRole.ADMINISTRATOR}),
    OrgKind.ANALYST: frozenset({UserRole.ANALYST}),
}

_TOKEN = re.compile(r"^hw_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


class AccountError(Exception):
    """A refused account operation; the message is meant for the person at the terminal."""


class AuthenticationFailed(AccountError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class TooManyFailures(AuthenticationFailed):
    """The request's source sent too many wrong or unknown tokens lately; it may try again
    after ``retry_after``. Other sources, and the tokens it named, are not affected."""

    def __init__(self, retry_after: timedelta):
        super().__init__("too_many_failures",
                         "too many failed authentications from this address; try again "
                         f"in {max(int(retry_after.total_seconds()), 1)} s")
        self.retry_after = retry_after


LAST_USED_GRANULARITY = timedelta(minutes=5)


class FailureThrottle:
    """Failed authentications per source (a client address) in a sliding window.

    In memory, per process: each API process throttles what it sees, which is what slows
    a guesser down (a secret is 256 random bits: the throttle sheds abuse, it does not
    protect the secret). Bounded: beyond ``max_sources`` the longest-quiet source is
    forgotten."""

    def __init__(self, clock: Callable[[], datetime], max_failures: int = 5,
                 window: timedelta = timedelta(minutes=15), max_sources: int = 10_000):
        self._now = clock
        self.max_failures = max_failures
        self.window = window
        self._max_sources = max_sources
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def _recent(self, source: str) -> deque[datetime]:
        failures = self._failures.get(source)
        if failures is None:
            return deque()
        horizon = self._now() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[source]
        return failures

    def check(self, source: str) -> None:
        """Raise ``TooManyFailures`` while ``source`` is throttled."""
        failures = self._recent(source)
        if len(failures) >= self.max_failures:
            raise TooManyFailures(failures[0] + self.window - self._now())

    def failed(self, source: str) -> None:
        failures = self._failures.setdefault(source, deque())
        failures.append(self._now())
        self._failures.move_to_end(source)
        while len(self._failures) > self._max_sources:
            self._failures.popitem(last=False)


@dataclass(frozen=True)
class Principal:
    user_id: str
    org_id: str
    org_kind: OrgKind
    role: UserRole


@dataclass(frozen=True)
class IssuedToken:
    token_id: uuid.UUID
    bearer: str
    expires_at: datetime


def _secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class Accounts:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_failures: int = 5,
        failure_window: timedelta = timedelta(minutes=15),
    ):
        self._engine = engine
        self._now = clock
        self.throttle = FailureThrottle(clock, max_failures, failure_window)

    async def add_org(self, org_id: str, kind: OrgKind | str, display_name: str,
                      country: str) -> None:
        kind = _parse(OrgKind, kind, "organisation kind")
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO organisations (org_id, kind, display_name, country) "
                         "VALUES (:org_id, :kind, :name, :country)"),
                    {"org_id": org_id, "kind": kind.value, "name": display_name,
                     "country": country},
                )
        except IntegrityError as exc:
            raise AccountError(f"organisation {org_id!r} not added: " + _refusal(exc, {
                "unique": "it exists already",
                "organisations_org_id_check":
                    "the id must be 2 to 63 lower-case letters, digits and '-'",
                "organisations_country_check":
                    f"{country!r} is not an ISO 3166 alpha-2 country code (e.g. RS)",
            })) from exc

    async def add_user(self, user_id: str, org_id: str, role: UserRole | str) -> None:
        role = _parse(UserRole, role, "role")
        async with self._engine.begin() as conn:
            kind = (await conn.execute(
                text("SELECT kind FROM organisations WHERE org_id = :o"), {"o": org_id}
            )).scalar()
            if kind is None:
                raise AccountError(f"no organisation {org_id!r}: add it first")
            allowed = ROLES_BY_ORG_KIND[OrgKind(kind)]
            if role not in allowed:
                raise AccountError(
                    f"a {kind} organisation cannot have a {role.value}; "
                    f"allowed: {', '.join(sorted(r.value for r in allowed))}"
                )
            try:
                await conn.execute(
                    text("INSERT INTO users (user_id, org_id, role) VALUES (:u, :o, :r)"),
                    {"u": user_id, "o": org_id, "r": role.value},
                )
            except IntegrityError as exc:
                raise AccountError(f"user {user_id!r} not added: " + _refusal(exc, {
                    "unique": "it exists already",
                    "users_user_id_check":
                        "the id must be 2 to 63 lower-case letters, digits, '.', '_' and '-'",
                })) from exc

    async def create_token(self, user_id: str, ttl: timedelta = timedelta(days=30)) -> IssuedToken:
        if ttl <= timedelta(0):
            raise AccountError("a token must live for a positive time")
        token_id = uuid.uuid4()
        secret = secrets.token_urlsafe(32)
        expires_at = self._now() + ttl
        async with self._engine.begin() as conn:
            exists = (await conn.execute(
                text("SELECT 1 FROM users WHERE user_id = :u AND disabled_at IS NULL"),
                {"u": user_id},
            )).scalar()
            if exists is None:
                raise AccountError(f"no active user {user_id!r}")
            await conn.execute(
                text("INSERT INTO api_tokens (token_id, user_id, secret_hash, expires_at) "
                     "VALUES (:t, :u, :h, :e)"),
                {"t": token_id, "u": user_id, "h": _secret_hash(secret), "e": expires_at},
            )
        return IssuedToken(token_id, f"hw_{token_id.hex}_{secret}", expires_at)

    async def revoke_token(self, token_id: uuid.UUID | str) -> None:
        try:
            token_uuid = uuid.UUID(str(token_id))
        except ValueError as exc:
            raise AccountError(f"{token_id!r} is not a token id") from exc
        async with self._engine.begin() as conn:
            result = await conn.execute(
                text("UPDATE api_tokens SET revoked_at = :now "
                     "WHERE token_id = :t AND revoked_at IS NULL"),
                {"now": self._now(), "t": token_uuid},
            )
        if result.rowcount == 0:
            raise AccountError(f"no active token {token_id}")

    async def authenticate(self, bearer: str, source: str = "unknown") -> Principal:
        """The principal of a valid token, or ``AuthenticationFailed``. ``source`` (the
        client's address) is throttled after repeated failures: ``TooManyFailures``."""
        self.throttle.check(source)
        try:
            return await self._authenticate(bearer)
        except AuthenticationFailed:
            self.throttle.failed(source)
            raise

    async def _authenticate(self, bearer: str) -> Principal:
        match = _TOKEN.match(bearer or "")
        if match is None:
            raise AuthenticationFailed("malformed", "the bearer token is malformed")
        token_id, secret = uuid.UUID(match.group(1)), match.group(2)
        now = self._now()
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                text("SELECT t.secret_hash, t.expires_at, t.revoked_at, t.last_used_at, "
                     "u.user_id, u.org_id, u.role, u.disabled_at, o.kind "
                     "FROM api_tokens t JOIN users u USING (user_id) "
                     "JOIN organisations o USING (org_id) WHERE t.token_id = :t"),
                {"t": token_id},
            )).first()
            if row is None:
                raise AuthenticationFailed("unknown", "the bearer token is not known")
            if not hmac.compare_digest(row.secret_hash, _secret_hash(secret)):
                raise AuthenticationFailed("bad_secret", "the bearer token is not valid")
            if row.revoked_at is not None:
                raise AuthenticationFailed("revoked", "the bearer token was revoked")
            if row.expires_at <= now:
                raise AuthenticationFailed("expired", "the bearer token has expired")
            if row.disabled_at is not None:
                raise AuthenticationFailed("disabled", "the user is disabled")
            if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
                # Coarse on purpose: one write per token every few minutes, not per request;
                # the WHERE makes concurrent requests write it once.
                await conn.execute(
                    text("UPDATE api_tokens SET last_used_at = :now WHERE token_id = :t "
                         "AND (last_used_at IS NULL OR last_used_at <= :stale)"),
                    {"now": now, "t": token_id, "stale": now - LAST_USED_GRANULARITY},
                )
                await conn.commit()
        return Principal(row.user_id, row.org_id, OrgKind(row.kind), UserRole(row.role))

    async def org_kinds(self, org_ids: Iterable[str]) -> dict[str, OrgKind]:
        """The kind of each of ``org_ids`` that names a registered organisation, in one
        query; an unknown id is not among the keys."""
        wanted = sorted(set(org_ids))
        if not wanted:
            return {}
        query = text("SELECT org_id, kind FROM organisations WHERE org_id IN :ids").bindparams(
            bindparam("ids", expanding=True))
        async with self._engine.connect() as conn:
            rows = await conn.execute(query, {"ids": wanted})
            return {row.org_id: OrgKind(row.kind) for row in rows}

    async def org_kind(self, org_id: str) -> OrgKind | None:
        """The kind of a registered organisation, or None."""
        return (await self.org_kinds([org_id])).get(org_id)

    async def user(self, user_id: str) -> UserAccount | None:
        """A user's organisation, role and whether they are disabled, or None."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT org_id, role, disabled_at FROM users WHERE user_id = :u"),
                {"u": user_id})).first()
        if row is None:
            return None
        return UserAccount(user_id, row.org_id, row.role, row.disabled_at)


def _refusal(error: IntegrityError, reasons: dict[str, str]) -> str:
    """Why the database refused a row, in words: ``reasons`` maps "unique" (any unique
    violation) and CHECK constraint names to a sentence."""
    cause = getattr(error.orig, "__cause__", None)
    if getattr(cause, "sqlstate", None) == "23505":
        return reasons["unique"]
    constraint = getattr(cause, "constraint_name", None)
    return reasons.get(constraint, f"refused by the database ({constraint or 'constraint'})")


def _parse(enum: type[StrEnum], value, what: str):
    try:
        return enum(value)
    except ValueError as exc:
        choices = ", ".join(m.value for m in enum)
        raise AccountError(f"{value!r} is not a {what}; choose one of: {choices}") from exc


@dataclass(frozen=True)
class UserAccount:
    user_id: str
    org_id: str
    role: str  # as stored; ``UserRole`` values
    disabled_at: datetime | None
