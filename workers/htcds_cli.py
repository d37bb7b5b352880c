"""`homeward export htcds --from --to [--k K] [--suppress-up-to PERCENT] [--format csv|json]
[--out FILE]`: the period's cases in Human Trafficking Case Data Standard fields,
de-identified to k-anonymity, with a coverage statement (decision 0069); progress on
stderr.

CSV (the default) writes the rows to FILE and the coverage statement beside it, in
FILE.coverage.txt (on stderr when FILE is '-', stdout); JSON writes one object holding
both. Exit 2 with one line on stderr for a bad date, period, k or percentage."""

from __future__ import annotations

import argparse
import csv
import io
import json
import secrets
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from domain.deidentify import DEFAULT_K, DEFAULT_SUPPRESSION_SHARE
from workers.cli_values import USAGE_ERROR, day

MIN_K = 2


def add_arguments(sub: Any) -> None:
    export = sub.add_parser("export", help="de-identified exports for research and donors")
    kinds = export.add_subparsers(dest="export_command", required=True)
    htcds = kinds.add_parser(
        "htcds", help="the period's cases in HTCDS fields, k-anonymous",
        description="The cases referred in the period, in Human Trafficking Case Data "
        "Standard 2.0 fields where homeward holds them: no names, vault fields or case "
        "ids, dates as months or coarser, ages as bands, generalised and suppressed until "
        "every combination of quasi-identifiers holds at least k rows; with a coverage "
        "statement.")
    htcds.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    htcds.add_argument("--to", dest="end", required=True,
                       help="last day (inclusive), YYYY-MM-DD")
    htcds.add_argument("--k", type=int, default=DEFAULT_K,
                       help=f"rows every quasi-identifier combination holds at least "
                       f"(default {DEFAULT_K})")
    htcds.add_argument("--suppress-up-to", dest="suppress", type=float, metavar="PERCENT",
                       default=DEFAULT_SUPPRESSION_SHARE * 100,
                       help="records that may be dropped rather than generalise every record "
                       f"further (default {DEFAULT_SUPPRESSION_SHARE * 100:g} percent)")
    htcds.add_argument("--format", choices=("csv", "json"), default="csv")
    htcds.add_argument("--out", default="-", help="file to write (default '-': stdout)")


def _check(args: argparse.Namespace) -> tuple[date, date]:
    start, end = day(args.start, "--from"), day(args.end, "--to")
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    if args.k < MIN_K:
        raise ValueError(f"--k {args.k}: k must be at least {MIN_K}")
    if not 0 <= args.suppress <= 100:
        raise ValueError(f"--suppress-up-to {args.suppress:g}: a percentage, 0 to 100")
    return start, end


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def published_rows(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """A fresh random id per row and a random order: neither says anything about a case,
    nor links one export's row to another's."""
    rows = [{"row_id": str(uuid.uuid4()), **r} for r in records]
    secrets.SystemRandom().shuffle(rows)
    return rows


def coverage_text(cover: dict[str, Any]) -> str:
    lines = [cover["text"], "", "Columns:"]
    lines += [f"  {name}: {what}" for name, what in cover["fields"].items()]
    lines += ["", "HTCDS 2.0 fields not exported:"]
    lines += [f"  {name}: {why}" for name, why in cover["htcds_fields_not_exported"].items()]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, str]]) -> bytes:
    from domain.htcds import COLUMNS

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


async def run(engine: Any, args: argparse.Namespace) -> int:
    from domain.htcds import coverage, deidentify
    from store.htcds import Period, case_facts, imported_in_period

    try:
        start, end = _check(args)
    except ValueError as exc:
        _say(f"homeward export htcds: {exc}")
        return USAGE_ERROR
    began = time.monotonic()
    period = Period(start, end)
    _say(f"reading the cases referred from {start} to {end} from the read models…")
    facts = [f async for f in case_facts(engine, period, progress=lambda n: _say(
        f"  {n} cases read"))]
    imported = await imported_in_period(engine, period)
    _say(f"de-identifying {len(facts)} cases at k = {args.k}…")
    share = args.suppress / 100
    result = deidentify(facts, args.k, share)
    cover = coverage(result, start, end, imported, share)
    generalised = ", ".join(f"{q} to {n}" for q, n in result.generalised.items()) or "nothing"
    _say(f"generalised {generalised}; suppressed {result.suppressed} of {result.total}")
    rows = published_rows(result.records)
    if args.format == "json":
        body = json.dumps({"coverage": cover, "records": rows}, indent=2).encode()
    else:
        body = to_csv(rows)
    if args.out == "-":
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        if args.format == "csv":
            _say(coverage_text(cover))
    else:
        Path(args.out).write_bytes(body)
        written = args.out
        if args.format == "csv":
            Path(f"{args.out}.coverage.txt").write_text(coverage_text(cover))
            written += f" and {args.out}.coverage.txt"
        _say(f"wrote {written}: {len(rows)} rows in {time.monotonic() - began:.1f} s")
    return 0
