"""Interleaved rounds, their statistics, the table and the JSON of `homeward bench`.

A row measures homeward and one or more baselines on the same machine, in the same run:
round after round, each subject once per round, in alternating order (homeward first in
even rounds, last in odd ones), so that a drift of the machine (another process, a
checkpoint, thermal limits) touches every subject alike. A ratio is computed per round,
from the samples of that round, and the median of those per-round ratios is reported
with their min–max: a noisy round moves one ratio, not the result.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

HOMEWARD = "homeward"


def progress(message: str) -> None:
    """One progress line on stderr, with the time since the bench started."""
    print(f"[bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


_STARTED = time.monotonic()


@dataclass
class Spread:
    median: float
    min: float
    max: float
    samples: list[float]

    @classmethod
    def of(cls, samples: list[float]) -> Spread:
        return cls(statistics.median(samples), min(samples), max(samples), list(samples))


@dataclass
class Target:
    """What the issue asks of this row: ``ratio`` targets compare the median ratio to one
    baseline (homeward / baseline, in the row's unit); ``absolute`` ones compare
    homeward's median to a value in the row's unit."""

    kind: str  # "ratio" | "absolute"
    op: str  # ">=" | "<="
    value: float
    baseline: str | None = None
    met: bool | None = None

    def describe(self) -> str:
        return f"{self.op} {self.value:g}" + ("×" if self.kind == "ratio" else "")

    def check(self, measured: float) -> bool:
        return measured >= self.value if self.op == ">=" else measured <= self.value


@dataclass
class RowResult:
    row: str
    title: str
    unit: str
    better: str  # "higher" | "lower": which way of the unit is better
    rounds: int
    subjects: dict[str, Spread]
    ratios: dict[str, Spread]  # per baseline: homeward / baseline, one per round
    targets: list[Target] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Measure = Callable[[], Awaitable[float]]


async def interleave(subjects: dict[str, Measure], rounds: int, warmup: bool = True,
                     label: str = "") -> dict[str, list[float]]:
    """Run every subject once per round, alternating the order between rounds; return
    each subject's samples in round order. A warm-up run of each, untimed, comes first
    when ``warmup`` (connections opened, statements prepared, caches filled)."""
    names = list(subjects)
    if warmup:
        for name in names:
            await subjects[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            value = await subjects[name]()
            samples[name].append(value)
        progress(f"  {label} round {r + 1}/{rounds}: " + ", ".join(
            f"{n} {samples[n][-1]:,.1f}" for n in names))
    return samples


def build_result(row: str, title: str, unit: str, better: str,
                 samples: dict[str, list[float]], targets: list[Target] | None = None,
                 extra: dict[str, Any] | None = None, notes: str = "") -> RowResult:
    home = samples[HOMEWARD]
    ratios = {}
    for name, values in samples.items():
        if name == HOMEWARD:
            continue
        ratios[name] = Spread.of([h / b if b else float("inf")
                                  for h, b in zip(home, values, strict=True)])
    result = RowResult(row=row, title=title, unit=unit, better=better, rounds=len(home),
                       subjects={n: Spread.of(v) for n, v in samples.items()},
                       ratios=ratios, targets=targets or [], extra=extra or {}, notes=notes)
    for target in result.targets:
        if target.kind == "ratio":
            measured = result.ratios[target.baseline].median
        else:
            measured = result.subjects[HOMEWARD].median
        target.met = target.check(measured)
    return result


# --- output --------------------------------------------------------------------------------


def _num(value: float, unit: str) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return "—"
    if unit in ("ev/s", "cases/s", "calls/s") or abs(value) >= 100:
        return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.2f}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def _spread(s: Spread, unit: str) -> str:
    if len(s.samples) == 1:
        return _num(s.median, unit)
    return f"{_num(s.median, unit)} ({_num(s.min, unit)}–{_num(s.max, unit)})"


def _ratio(s: Spread) -> str:
    if len(s.samples) == 1:
        return f"{s.median:.2f}"
    return f"{s.median:.2f} ({s.min:.2f}–{s.max:.2f})"


def table(results: list[RowResult]) -> str:
    """The report as a Markdown table: one line per baseline of each row."""
    header = ["work", "unit", "homeward", "baseline", "baseline value",
              "homeward / baseline", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        home = _spread(result.subjects[HOMEWARD], result.unit)
        baselines = [n for n in result.subjects if n != HOMEWARD] or [None]
        for i, name in enumerate(baselines):
            targets = [t for t in result.targets
                       if (t.kind == "ratio" and t.baseline == name)
                       or (t.kind == "absolute" and i == 0)]
            cells = [
                result.title if i == 0 else "",
                result.unit if i == 0 else "",
                home if i == 0 else "",
                name or "—",
                _spread(result.subjects[name], result.unit) if name else "—",
                _ratio(result.ratios[name]) if name else "—",
                "; ".join(t.describe() + (f" {result.unit}" if t.kind == "absolute" else "")
                          for t in targets),
                "; ".join("yes" if t.met else "no" for t in targets) or "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        if result.extra.get("summary"):
            lines.append(f"| ↳ {result.extra['summary']} |" + " |" * (len(header) - 1))
    return "\n".join(lines)


def write_json(path: str, results: list[RowResult], meta: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"meta": meta, "rows": [r.to_json() for r in results]}, handle, indent=2,
                  default=str)
        handle.write("\n")
