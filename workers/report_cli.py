"""`homeward report statistical --from --to --format csv|html|json --out FILE`: the same
report as GET /reports/statistical over every mission (an analyst's view), written to a
file; progress on stderr (decision 0065)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from workers.cli_values import USAGE_ERROR, day


def add_arguments(sub: Any) -> None:
    report = sub.add_parser("report", help="reports over the read models")
    kinds = report.add_subparsers(dest="report_command", required=True)
    statistical = kinds.add_parser(
        "statistical", help="the statistical report, suppressed like the API's",
        description="The statistical report over every mission (small cells suppressed).")
    statistical.add_argument("--from", dest="start", help="first day, YYYY-MM-DD")
    statistical.add_argument("--to", dest="end", help="last day (inclusive), YYYY-MM-DD")
    statistical.add_argument("--basis", choices=("registered", "closed"), default="registered")
    statistical.add_argument("--mission", help="one mission's caseload (either side)")
    statistical.add_argument("--format", choices=("csv", "html", "json"), default="json")
    statistical.add_argument("--out", required=True, help="file to write ('-': stdout)")


async def run(engine: Any, args: argparse.Namespace) -> int:
    from fastapi.encoders import jsonable_encoder

    from api.access import ReportScope
    from api.report_html import render_report
    from api.service.reports import build_report, report_csv
    from store.reports import Period

    try:
        start, end = day(args.start, "--from"), day(args.end, "--to")
        if start and end and end < start:
            raise ValueError("--to is before --from")
    except ValueError as exc:
        print(f"homeward report: {exc}", file=sys.stderr)
        return USAGE_ERROR
    began = time.monotonic()
    print(f"counting the {args.basis} cases from {start or 'the start'} to {end or 'today'}…",
          file=sys.stderr)
    scope = ReportScope("either" if args.mission else None, args.mission)
    report = await build_report(engine, Period(start, end, args.basis), scope)
    print(f"counted {len(report['tables'])} tables in {time.monotonic() - began:.1f} s; "
          f"writing {args.format}", file=sys.stderr)
    if args.format == "json":
        body = json.dumps(jsonable_encoder(report), indent=2).encode()
    elif args.format == "html":
        body = render_report(report, None).encode()
    else:
        body = report_csv(report, None)[0]
    if args.out == "-":
        sys.stdout.buffer.write(body)
    else:
        Path(args.out).write_bytes(body)
        print(f"wrote {args.out} ({len(body)} bytes)", file=sys.stderr)
    return 0
