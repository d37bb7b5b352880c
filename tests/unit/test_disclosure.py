"""Disclosure control of one report (decision 0065): an attacker who knows every published
figure and every additive relation between them (row and column totals, the grand total,
the same margin printed in another table) cannot pin any suppressed cell exactly.

The attacker here is written apart from domain/disclosure.py: it derives the equations
from the published cells alone, and for every hidden cell constructs a second non-negative
assignment of the hidden cells that satisfies every published equation and gives that
cell another value."""

from __future__ import annotations

from fractions import Fraction
from itertools import product

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.disclosure import HIDDEN, TOTAL, Dimension, Table, key, protect

DIMS = {
    "outcome": Dimension("outcome", ("open", "returned", "declined", "missing")),
    "dest": Dimension("dest", ("MD", "UA", "AL")),
    "minor": Dimension("minor", ("minor", "adult")),
    "service": Dimension("service", ("medical", "shelter", "legal"), partition=False),
}
TABLES = [Table("outcome", ("outcome",)), Table("dest", ("dest",)),
          Table("minor", ("minor",)), Table("service", ("service",)),
          Table("outcome_by_dest", ("outcome", "dest")),
          Table("minor_by_service", ("minor", "service")),
          Table("minor_by_outcome", ("minor", "outcome"))]


def _published_keys() -> list[frozenset]:
    """Every cell the report prints, listed by the attacker from the tables' layout."""
    keys = {TOTAL}
    for a in ("outcome", "dest", "minor", "service"):
        keys |= {key(**{a: v}) for v in DIMS[a].values}
    for a, b in (("outcome", "dest"), ("minor", "service"), ("minor", "outcome")):
        keys |= {key(**{a: x, b: y}) for x, y in product(DIMS[a].values, DIMS[b].values)}
    return sorted(keys, key=sorted)


def _equations(keys: list[frozenset]) -> list[tuple[frozenset, list[frozenset]]]:
    """parent = Σ children wherever a partition dimension splits a printed cell into
    printed cells."""
    printed = set(keys)
    out = []
    for k in keys:
        present = {d for d, _ in k}
        for d, dim in DIMS.items():
            children = [k | {(d, v)} for v in dim.values]
            if dim.partition and d not in present and all(c in printed for c in children):
                out.append((k, children))
    return out


def _counts(persons: list[tuple[str, str, str, frozenset[str]]]) -> dict[frozenset, int]:
    counts: dict[frozenset, int] = {}
    for k in _published_keys():
        wanted = dict(k)
        counts[k] = sum(
            1 for o, d, m, s in persons
            if wanted.get("outcome", o) == o and wanted.get("dest", d) == d
            and wanted.get("minor", m) == m and ("service" not in wanted
                                                 or wanted["service"] in s))
    return counts


def _solve(rows: list[dict[int, Fraction]], rhs: list[Fraction], n: int
           ) -> list[Fraction] | None:
    """One solution of rows · x = rhs (free variables 0), None when there is none."""
    pivots: list[tuple[int, dict[int, Fraction], Fraction]] = []
    for row, b in zip(rows, rhs, strict=True):
        row = dict(row)
        for col, prow, pb in pivots:
            if row.get(col):
                f = row[col]
                for j, v in prow.items():
                    row[j] = row.get(j, Fraction(0)) - f * v
                b -= f * pb
        row = {j: v for j, v in row.items() if v}
        if not row:
            if b:
                return None
            continue
        col = min(row)
        lead = row[col]
        pivots.append((col, {j: v / lead for j, v in row.items()}, b / lead))
    x = [Fraction(0)] * n
    for col, prow, b in reversed(pivots):
        x[col] = b - sum(v * x[j] for j, v in prow.items() if j != col)
    return x


def attack(published: dict[frozenset, int | str], truth: dict[frozenset, int]) -> list:
    """The hidden cells the attacker pins exactly (should be none)."""
    hidden = [k for k, v in published.items() if v == HIDDEN]
    if len(hidden) == len(published):
        return []  # nothing published
    index = {k: i for i, k in enumerate(hidden)}
    equations = _equations(list(published))
    rows = []
    for parent, children in equations:
        row: dict[int, Fraction] = {}
        for m, s in ((parent, 1), *((c, -1) for c in children)):
            if m in index:
                row[index[m]] = row.get(index[m], Fraction(0)) + s
        rows.append({j: v for j, v in row.items() if v})
    pinned = []
    for target, i in index.items():
        # a direction v with rows·v = 0 and v_i = 1
        direction = _solve(rows + [{i: Fraction(1)}], [Fraction(0)] * len(rows) + [Fraction(1)],
                           len(hidden))
        if direction is None:
            pinned.append(target)
            continue
        x = [Fraction(truth[k]) for k in hidden]
        steps = [x[j] / -direction[j] for j in range(len(hidden)) if direction[j] < 0]
        eps = min([Fraction(1), *steps])
        other = [x[j] + eps * direction[j] for j in range(len(hidden))]
        assert eps > 0 and all(v >= 0 for v in other)
        values = {k: Fraction(v) for k, v in published.items() if v != HIDDEN}
        values |= dict(zip(hidden, other, strict=True))
        for parent, children in equations:  # every published relation still holds
            assert values[parent] == sum(values[c] for c in children)
        assert values[target] != truth[target]
    return pinned


_PERSON = st.tuples(st.sampled_from(DIMS["outcome"].values), st.sampled_from(DIMS["dest"].values),
                    st.sampled_from(DIMS["minor"].values),
                    st.frozensets(st.sampled_from(DIMS["service"].values)))


@settings(max_examples=300, deadline=None)
@given(persons=st.lists(_PERSON, max_size=60), k=st.sampled_from([3, 5, 10]))
def test_no_suppressed_cell_can_be_recovered_from_the_published_report(persons, k):
    truth = _counts(persons)
    protected = protect(DIMS, TABLES, truth, k)
    published = {c: protected.value(c) for c in _published_keys()}
    for c, v in published.items():
        if v != HIDDEN:
            assert v == truth[c]
            assert v == 0 or v >= k  # no small cell is printed
    assert attack(published, truth) == []


def test_a_report_over_fewer_than_k_persons_publishes_nothing():
    truth = _counts([("open", "MD", "minor", frozenset())] * 3)
    protected = protect(DIMS, TABLES, truth)
    assert {protected.value(c) for c in _published_keys()} == {HIDDEN}


def test_a_cell_hidden_in_one_table_is_hidden_where_another_table_prints_it():
    """The concrete case the per-table rule of GET /statistics got wrong: 'missing' is 2,
    its table's complement is 'declined'; the cross-table's margin printed 'missing' by
    destination, so 2 came back as the sum of its row."""
    persons = ([("returned", "MD", "adult", frozenset({"medical"}))] * 20
               + [("declined", "UA", "adult", frozenset())] * 6
               + [("missing", "MD", "adult", frozenset())] * 2
               + [("open", "AL", "minor", frozenset())] * 7)
    truth = _counts(persons)
    protected = protect(DIMS, TABLES, truth)
    missing = key(outcome="missing")
    assert protected.value(missing) == HIDDEN
    assert protected.value(key(outcome="missing", dest="MD")) == HIDDEN
    published = {c: protected.value(c) for c in _published_keys()}
    assert attack(published, truth) == []
    # the published figures do not pin 'missing': 2 and another value are both consistent
    assert protected.value(TOTAL) == 35
    # zeros are printed: they count nobody
    assert protected.value(key(outcome="missing", dest="UA")) == 0
