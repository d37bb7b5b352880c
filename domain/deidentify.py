"""k-anonymity by generalisation and suppression (decision 0069). Pure: records in,
records out, no I/O and no randomness.

A record is a mapping of column → string. The quasi-identifiers are the columns someone
who knows a person from outside could match on; each has a ``Hierarchy`` of ever coarser
levels ending in ``SUPPRESSED``. ``anonymise`` raises one quasi-identifier a level at a
time, for every record alike (full-domain generalisation), choosing the one with the most
distinct values at its current level (Sweeney's Datafly heuristic: the attribute that
splits records most is the one that makes small groups), until the records in groups of
fewer than ``k`` are few enough to drop (``max_suppressed``), or every quasi-identifier is
at its top. The climb can overshoot, so it then steps back down, latest raise first,
wherever a finer level still needs no more suppression than allowed. Then every record in
a group under ``k`` is dropped. Whatever the hierarchies,
every combination of quasi-identifier values in the output holds at least ``k`` records,
or the output is empty.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

SUPPRESSED = "*"
"""A value generalised away (the top of every hierarchy)."""

DEFAULT_K = 11  # what the Counter-Trafficking Data Collaborative publishes at
DEFAULT_SUPPRESSION_SHARE = 0.05

Record = Mapping[str, str]


@dataclass(frozen=True)
class Hierarchy:
    """Levels of one quasi-identifier: 0 is the value (``base`` names it), each step maps
    a value to a coarser one, and the last level is ``SUPPRESSED``. A step reads the
    original value, so it must be coarser than the step before it."""

    base: str
    steps: tuple[tuple[str, Callable[[str], str]], ...] = ()

    @property
    def top(self) -> int:
        return len(self.steps) + 1

    def level_name(self, level: int) -> str:
        if level == 0:
            return self.base
        return "suppressed" if level >= self.top else self.steps[level - 1][0]

    def apply(self, value: str, level: int) -> str:
        if level == 0:
            return value
        if level >= self.top:
            return SUPPRESSED
        return self.steps[level - 1][1](value)


@dataclass(frozen=True)
class Anonymised:
    records: list[dict[str, str]]  # generalised; the records of small groups dropped
    levels: dict[str, int]  # quasi-identifier → level applied
    level_names: dict[str, str]
    total: int  # records in
    suppressed: int  # records dropped
    k: int

    @property
    def generalised(self) -> dict[str, str]:
        """The quasi-identifiers raised above their own values, and to what."""
        return {q: self.level_names[q] for q, level in self.levels.items() if level}


def suppression_limit(total: int, share: float = DEFAULT_SUPPRESSION_SHARE) -> int:
    """How many records may be dropped rather than generalise further."""
    return int(total * share)


def _generalise(record: Record, quasi: Mapping[str, Hierarchy],
                levels: Mapping[str, int]) -> dict[str, str]:
    out = dict(record)
    for q, hierarchy in quasi.items():
        out[q] = hierarchy.apply(record.get(q, ""), levels[q])
    return out


def _group(record: Mapping[str, str], quasi: Sequence[str]) -> tuple[str, ...]:
    return tuple(record[q] for q in quasi)


def _outliers(records: Sequence[Record], quasi: Mapping[str, Hierarchy],
              levels: Mapping[str, int], k: int) -> tuple[list[dict[str, str]], int]:
    """The records at ``levels``, and how many are in groups under ``k``."""
    current = [_generalise(r, quasi, levels) for r in records]
    sizes = Counter(_group(r, list(quasi)) for r in current)
    return current, sum(n for n in sizes.values() if n < k)


def anonymise(records: Sequence[Record], quasi: Mapping[str, Hierarchy], k: int = DEFAULT_K,
              max_suppressed: int | None = None) -> Anonymised:
    """``records`` generalised over ``quasi`` (in priority order: on a tie of distinct
    values, the first is raised first) and thinned until k-anonymous."""
    if k < 1:
        raise ValueError("k must be at least 1")
    names = list(quasi)
    limit = suppression_limit(len(records)) if max_suppressed is None else max_suppressed
    levels = dict.fromkeys(names, 0)
    raised: list[str] = []
    while True:
        current, outliers = _outliers(records, quasi, levels, k)
        raisable = [q for q in names if levels[q] < quasi[q].top]
        if outliers <= limit or not raisable:
            break
        widest = max(raisable, key=lambda q: len({r[q] for r in current}))
        levels[widest] += 1
        raised.append(widest)
    if outliers <= limit:
        # The greedy climb can overshoot: step back down, latest raise first, wherever
        # the finer level still leaves few enough records to drop.
        for q in reversed(raised):
            finer = {**levels, q: levels[q] - 1}
            if _outliers(records, quasi, finer, k)[1] <= limit:
                levels = finer
        current, _ = _outliers(records, quasi, levels, k)
    sizes = Counter(_group(r, names) for r in current)
    kept = [r for r in current if sizes[_group(r, names)] >= k]
    return Anonymised(kept, levels, {q: quasi[q].level_name(levels[q]) for q in names},
                      len(records), len(records) - len(kept), k)


def is_k_anonymous(records: Sequence[Record], quasi: Sequence[str], k: int) -> bool:
    sizes = Counter(_group(r, quasi) for r in records)
    return all(n >= k for n in sizes.values())


__all__ = ["DEFAULT_K", "SUPPRESSED", "Anonymised", "Hierarchy", "anonymise",
           "is_k_anonymous"]
