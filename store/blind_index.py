"""The blind index: recognising a person who comes back without storing who she is
(issue 16 item 4, decision 0070).

For each identity the vault keeps a few keyed digests: one over her normalised name and
birth date, one over each identity document (issuing country and normalised number).
The digest is an HMAC-SHA256 under a key derived from the master key for this use only
(``index_key``), so that without the master key nobody can test a guessed name and birth
date against the table; unlike the registration digests (decision 0058) it is *not* bound
to the case: the same person gives the same digest in every case, which is the point.
The table maps digest → case id and holds nothing else; it is written with the fields it
is derived from and deleted with them (erasure, a discarded registration).

Normalisation (``name_material``, ``document_material``): case-folded, accents and other
combining marks stripped (Unicode NFKD), the letters NFKD does not decompose mapped
(ł→l, ø→o, đ→d, æ→ae, …), punctuation read as a space, whitespace collapsed, and the
name's words sorted: the given names and the family name together, in any order and in
either field (a family name written first, or given and family names swapped, still
match). A name is only indexed with a birth date: a name alone is too common. Aliases are
not indexed (street names are shared). A document number keeps letters and digits only,
case-folded, and is bound to its issuing country; its kind is not part of it (a passport
recorded as a travel document still matches). No transliteration between scripts.

Rotation: rows carry the id of the master key the index key was derived from. A write
indexes under every key of the keyring (the current one and those still being rotated
from), so a lookup made during a rotation finds cases indexed under either; the rotation
re-indexes every live identity under the new key from its decrypted fields
(``store.vault.reindex``), and rows under keys no longer configured are replaced then.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import Column, LargeBinary, MetaData, Table, Text, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from store.keys import Key

INDEXED_FIELDS = frozenset({"given_names", "family_name", "date_of_birth",
                            "identity_documents"})
"""The vault fields the index is derived from: a write of any of them re-indexes."""


class MatchKind(StrEnum):
    NAME_AND_BIRTH_DATE = "name_and_birth_date"
    DOCUMENT = "document"


_metadata = MetaData()
person_blind_index = Table(  # migration 0015: digests and case ids only
    "person_blind_index",
    _metadata,
    Column("case_id", Text, primary_key=True),
    Column("key_id", Text, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("digest", LargeBinary, primary_key=True),
)

# Latin letters that NFKD leaves whole (no combining mark to strip), after case-folding.
_UNDECOMPOSED = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ŀ": "l",
                               "ı": "i", "æ": "ae", "œ": "oe", "þ": "th", "ŧ": "t"})
_NOT_A_WORD = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    """Case-folded, without accents, punctuation as spaces, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    bare = unicodedata.normalize("NFKC", bare).translate(_UNDECOMPOSED)
    return " ".join(_NOT_A_WORD.sub(" ", bare).split())


def name_material(given_names: str | None, family_name: str | None,
                  date_of_birth: date | None) -> bytes | None:
    """What the name-and-birth-date digest is made of; None without a birth date or a
    name."""
    words = sorted(normalise(f"{given_names or ''} {family_name or ''}").split())
    if date_of_birth is None or not words:
        return None
    return _material(MatchKind.NAME_AND_BIRTH_DATE, " ".join(words), date_of_birth.isoformat())


def document_material(issuing_country: str, number: str) -> bytes | None:
    digits = "".join(normalise(number).split())
    if not digits:
        return None
    return _material(MatchKind.DOCUMENT, issuing_country.upper(), digits)


def _material(kind: MatchKind, *parts: str) -> bytes:
    return json.dumps(["homeward/blind-index/v1", kind.value, *parts],
                      ensure_ascii=False).encode()


def materials(given_names: str | None, family_name: str | None, date_of_birth: date | None,
              documents: Iterable[tuple[str, str]]) -> set[tuple[MatchKind, bytes]]:
    """Every entry one identity is indexed by: (kind, material)."""
    found: set[tuple[MatchKind, bytes]] = set()
    name = name_material(given_names, family_name, date_of_birth)
    if name is not None:
        found.add((MatchKind.NAME_AND_BIRTH_DATE, name))
    for country, number in documents:
        document = document_material(country, number)
        if document is not None:
            found.add((MatchKind.DOCUMENT, document))
    return found


def index_key(kek: Key) -> bytes:
    """The blind index's own key, derived from a master key for this use only."""
    return hmac.new(kek.secret, b"homeward/vault/blind-index/v1", hashlib.sha256).digest()


def digest(kek: Key, material: bytes) -> bytes:
    return hmac.new(index_key(kek), material, hashlib.sha256).digest()


async def replace(conn: AsyncConnection, case_id: str, keys: Sequence[Key],
                  entries: Iterable[tuple[MatchKind, bytes]]) -> None:
    """The case's index rows, now: under each of ``keys``, one row per entry."""
    await conn.execute(delete(person_blind_index).where(
        person_blind_index.c.case_id == case_id))
    rows = [{"case_id": case_id, "key_id": key.key_id, "kind": kind.value,
             "digest": digest(key, material)}
            for key in keys for kind, material in entries]
    if rows:
        await conn.execute(insert(person_blind_index).values(rows).on_conflict_do_nothing())


async def forget(conn: AsyncConnection, case_id: str) -> None:
    await conn.execute(delete(person_blind_index).where(
        person_blind_index.c.case_id == case_id))


@dataclass(frozen=True)
class IndexMatch:
    """Another case whose identity gave the same digest: its id and on what it matched."""

    case_id: str
    kinds: tuple[MatchKind, ...]


async def matches(conn: AsyncConnection, case_id: str) -> list[IndexMatch]:
    """The other cases that share a digest with this one, by case id."""
    mine = person_blind_index.alias("mine")
    other = person_blind_index.alias("other")
    rows = (await conn.execute(
        select(other.c.case_id, other.c.kind).distinct()
        .join(mine, (mine.c.key_id == other.c.key_id) & (mine.c.digest == other.c.digest)
              & (mine.c.kind == other.c.kind))
        .where(mine.c.case_id == case_id, other.c.case_id != case_id)
        .order_by(other.c.case_id, other.c.kind))).all()
    found: dict[str, list[MatchKind]] = {}
    for row in rows:
        found.setdefault(row.case_id, []).append(MatchKind(row.kind))
    return [IndexMatch(c, tuple(k)) for c, k in found.items()]
