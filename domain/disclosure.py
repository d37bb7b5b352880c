"""Disclosure control of one statistical report: primary and complementary suppression,
consistent across every table of the report (decision 0065). Pure: counts in, a set of
hidden cells out.

A cell is named by its key: the set of (dimension, value) pairs it counts persons by.
The empty key is the report's grand total; the key ``{(outcome, returned)}`` is the same
cell whether it is printed in the outcome table or as a margin of outcome × destination,
so it is hidden in both or in neither.

The published constraints are additive. For a *partition* dimension (every person has
exactly one of its values) a cell without it equals the sum of the cells that add each of
its values: ``total = Σ outcome``, ``outcome=returned = Σ_dest returned × dest``. A
multi-valued dimension (assistance types: one person may have several) adds no such
constraint; its cells are still protected as cells.

The rule:

1. Primary: a cell counting 1 to k-1 persons is hidden. A zero is published: it counts
   nobody (and so it can also never be a complement).
2. Complementary: in every constraint, a hidden member has at least one other hidden
   member (the smallest non-zero child, else the parent), iterated over all tables to
   a fixed point.
3. Verified: the hidden cells are the unknowns of the published equations; a hidden cell
   the equations still determine (a "bridge" between two hidden cycles is the classic
   case) gets one more complement next to it, and the check is repeated. Every hidden
   cell counts at least one person, so a hidden cell that the equations do not determine
   can move a little either way with every cell staying non-negative: the published
   figures are consistent with other values of it, and nobody can pin it exactly.
4. A report over 1 to k-1 persons in all publishes no figure at all (zeros included):
   which rows are empty would say what each of the few persons is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import product

DEFAULT_K = 5
HIDDEN = "suppressed"

Key = frozenset[tuple[str, str]]
TOTAL: Key = frozenset()


@dataclass(frozen=True)
class Dimension:
    name: str
    values: tuple[str, ...]
    partition: bool = True  # every person has exactly one value


@dataclass(frozen=True)
class Table:
    name: str
    dims: tuple[str, ...]


def key(**values: str) -> Key:
    return frozenset(values.items())


def table_keys(table: Table, dimensions: Mapping[str, Dimension]) -> list[Key]:
    """The cells a table publishes: its own, then its margins (each partition dimension
    summed out, down to the grand total when every dimension is a partition)."""
    keys: list[Key] = []
    seen: set[Key] = set()
    for dims in _margins(table.dims, dimensions):
        for combo in product(*(dimensions[d].values for d in dims)):
            k = frozenset(zip(dims, combo, strict=True))
            if k not in seen:
                seen.add(k)
                keys.append(k)
    return keys


def _margins(dims: tuple[str, ...], dimensions: Mapping[str, Dimension]) -> list[tuple[str, ...]]:
    out = [dims]
    for i, d in enumerate(dims):
        if dimensions[d].partition:
            for m in _margins(dims[:i] + dims[i + 1:], dimensions):
                if m not in out:
                    out.append(m)
    return out


def constraints(tables: Sequence[Table], dimensions: Mapping[str, Dimension]
                ) -> list[tuple[Key, tuple[Key, ...]]]:
    """Every published equation: (parent, children) with parent = Σ children."""
    found: dict[tuple[Key, tuple[Key, ...]], None] = {}
    for table in tables:
        for cell in table_keys(table, dimensions):
            for d, _ in cell:
                if not dimensions[d].partition:
                    continue
                parent = frozenset(p for p in cell if p[0] != d)
                children = tuple(parent | {(d, v)} for v in dimensions[d].values)
                found[(parent, children)] = None
    return list(found)


@dataclass(frozen=True)
class Protected:
    counts: Mapping[Key, int]
    hidden: frozenset[Key]
    withheld: bool  # the report is over 1 to k-1 persons: nothing is published
    k: int

    def value(self, cell: Key) -> int | str:
        if self.withheld or cell in self.hidden:
            return HIDDEN
        return self.counts.get(cell, 0)


def protect(dimensions: Mapping[str, Dimension], tables: Sequence[Table],
            counts: Mapping[Key, int], k: int = DEFAULT_K) -> Protected:
    """Which cells of the report to hide (see the module's docstring)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    cells = [c for t in tables for c in table_keys(t, dimensions)]
    universe = {c: counts.get(c, 0) for c in cells} | {TOTAL: counts.get(TOTAL, 0)}
    if 0 < universe[TOTAL] < k:
        return Protected(universe, frozenset(universe), True, k)
    equations = constraints(tables, dimensions)
    hidden = {c for c, n in universe.items() if 0 < n < k}
    while True:
        _pair_up(equations, universe, hidden)
        pinned = determined(equations, hidden, universe)
        if not pinned:
            return Protected(universe, frozenset(hidden), False, k)
        if not _complement_near(next(iter(sorted(pinned, key=sorted))), equations, universe,
                                hidden):
            return Protected(universe, frozenset(universe), True, k)  # nothing left to add


def _pair_up(equations: Sequence[tuple[Key, tuple[Key, ...]]], counts: Mapping[Key, int],
             hidden: set[Key]) -> None:
    """Until no equation has exactly one hidden member, hide a complement in each that
    has."""
    changed = True
    while changed:
        changed = False
        for parent, children in equations:
            members = (parent, *children)
            if sum(m in hidden for m in members) == 1:
                complement = _complement(parent, children, counts, hidden)
                if complement is not None:
                    hidden.add(complement)
                    changed = True


def _complement(parent: Key, children: tuple[Key, ...], counts: Mapping[Key, int],
                hidden: set[Key]) -> Key | None:
    """The smallest non-zero published child, else the parent when it is not zero."""
    candidates = sorted((counts.get(c, 0), sorted(c)) for c in children
                        if c not in hidden and counts.get(c, 0) > 0)
    if candidates:
        return frozenset(candidates[0][1])
    if parent not in hidden and counts.get(parent, 0) > 0:
        return parent
    return None


def _complement_near(cell: Key, equations: Sequence[tuple[Key, tuple[Key, ...]]],
                     counts: Mapping[Key, int], hidden: set[Key]) -> bool:
    """Hide one more cell in an equation that holds ``cell``: the smallest non-zero one."""
    options = sorted((counts.get(m, 0), sorted(m)) for parent, children in equations
                     if cell == parent or cell in children
                     for m in (parent, *children)
                     if m not in hidden and counts.get(m, 0) > 0)
    if not options:  # its equations are all hidden: widen to any published cell
        options = sorted((n, sorted(m)) for m, n in counts.items() if m not in hidden and n > 0)
    if not options:
        return False
    hidden.add(frozenset(options[0][1]))
    return True


def determined(equations: Iterable[tuple[Key, tuple[Key, ...]]], hidden: set[Key],
               counts: Mapping[Key, int]) -> set[Key]:
    """The hidden cells whose value the published equations fix (linear algebra over
    the rationals: a variable is fixed when it is a pivot whose reduced row has no free
    variable)."""
    unknowns = sorted(hidden, key=sorted)
    index = {c: i for i, c in enumerate(unknowns)}
    rows: list[dict[int, Fraction]] = []
    for parent, children in equations:
        row: dict[int, Fraction] = {}
        for member, sign in ((parent, 1), *((c, -1) for c in children)):
            if member in index:
                row[index[member]] = row.get(index[member], Fraction(0)) + sign
        row = {i: v for i, v in row.items() if v}
        if row:
            rows.append(row)
    pivots: dict[int, dict[int, Fraction]] = {}  # pivot column → its reduced row
    for row in rows:
        for col, prow in pivots.items():
            if col in row:
                factor = row[col]
                for j, v in prow.items():
                    row[j] = row.get(j, Fraction(0)) - factor * v
                row = {j: v for j, v in row.items() if v}
        if not row:
            continue
        col = min(row)
        lead = row[col]
        row = {j: v / lead for j, v in row.items()}
        for other in pivots.values():
            if col in other:
                factor = other[col]
                for j, v in row.items():
                    other[j] = other.get(j, Fraction(0)) - factor * v
                for j in [j for j, v in other.items() if not v]:
                    del other[j]
        pivots[col] = row
    return {unknowns[col] for col, row in pivots.items() if set(row) == {col}}
