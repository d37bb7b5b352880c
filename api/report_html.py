"""The statistical report and the snapshot as one printable HTML page (decision 0065):
tables, an SVG bar chart per table and the routes as a flow diagram, drawn on the server.
No script, no font, no stylesheet or image from elsewhere: it works offline and prints
to PDF from any browser."""

from __future__ import annotations

from html import escape
from typing import Any

from domain.disclosure import HIDDEN

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b;max-width:62rem}
h1{font-size:1.6rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}
p.coverage{background:#f3f3f3;padding:.8rem;border-left:4px solid #555}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #bbb;padding:.2rem .5rem}
td.n{text-align:right}td.hidden{color:#777;font-style:italic}
.chart{display:block;margin:.5rem 0}.bar{fill:#2c6e9b}.hidden-bar{fill:url(#hatch)}
section{break-inside:avoid;page-break-inside:avoid}
@media print{body{margin:0;max-width:none}a{color:inherit;text-decoration:none}
h2{break-after:avoid}}
"""

_HATCH = ('<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
          'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eee"/>'
          '<line x1="0" y1="0" x2="0" y2="6" stroke="#999" stroke-width="2"/></pattern></defs>')


def _label(row: dict[str, Any], dims: list[str]) -> str:
    return " × ".join(str(row.get(d, "all")).replace("_", " ") for d in dims)


def bar_chart(title: str, rows: list[tuple[str, int | str]]) -> str:
    """Horizontal bars, one per row; a suppressed row is a hatched stub that says so."""
    width, label_w, bar_h, gap = 640, 230, 16, 6
    top = max([n for _, n in rows if isinstance(n, int)] + [1])
    height = len(rows) * (bar_h + gap) + gap
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>{_HATCH}']
    for i, (label, n) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h - 4}" text-anchor="end" '
                     f'font-size="12">{escape(label)}</text>')
        if n == HIDDEN:
            parts.append(f'<rect class="hidden-bar" data-count="suppressed" x="{label_w}" '
                         f'y="{y}" width="40" height="{bar_h}"/>'
                         f'<text x="{label_w + 46}" y="{y + bar_h - 4}" font-size="11" '
                         f'fill="#666">suppressed</text>')
        else:
            w = 0 if not n else max(2, round((width - label_w - 60) * int(n) / top))
            parts.append(f'<rect class="bar" data-count="{n}" x="{label_w}" y="{y}" '
                         f'width="{w}" height="{bar_h}"/>'
                         f'<text x="{label_w + w + 5}" y="{y + bar_h - 4}" '
                         f'font-size="11">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def flow_diagram(rows: list[dict[str, Any]]) -> str:
    """Routes: origin countries on the left, next countries on the right, a band per
    flow as wide as the persons it counts; a suppressed flow is a dashed thin line."""
    flows = [(*r["route_flow"].split(">", 1), r["count"]) for r in rows
             if r["count"] != 0 and ">" in r["route_flow"]]
    if not flows:
        return '<p class="empty">No route recorded in this period.</p>'
    left = sorted({a for a, _, _ in flows})
    right = sorted({b for _, b, _ in flows})
    step, width = 36, 560
    height = max(len(left), len(right)) * step + 20
    top = max([n for *_, n in flows if isinstance(n, int)] + [1])
    y_left = {c: 20 + i * step for i, c in enumerate(left)}
    y_right = {c: 20 + i * step for i, c in enumerate(right)}
    parts = [f'<svg class="chart flows" role="img" aria-label="Trafficking routes" '
             f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>Trafficking routes</title>']
    for a, b, n in flows:
        y1, y2 = y_left[a], y_right[b]
        path = f"M 90 {y1} C 280 {y1}, 280 {y2}, 470 {y2}"
        if n == HIDDEN:
            parts.append(f'<path class="flow" data-count="suppressed" d="{path}" fill="none" '
                         'stroke="#888" stroke-width="2" stroke-dasharray="5 4"/>')
        else:
            stroke = max(2, round(18 * int(n) / top))
            parts.append(f'<path class="flow" data-count="{n}" d="{path}" fill="none" '
                         f'stroke="#2c6e9b" stroke-opacity="0.6" stroke-width="{stroke}"/>')
    for c, y in y_left.items():
        parts.append(f'<circle cx="90" cy="{y}" r="6" fill="#1b1b1b"/><text x="78" y="{y + 4}" '
                     f'text-anchor="end" font-size="13">{escape(c)}</text>')
    for c, y in y_right.items():
        parts.append(f'<circle cx="470" cy="{y}" r="6" fill="#1b1b1b"/><text x="482" '
                     f'y="{y + 4}" font-size="13">{escape(c)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _html_table(t: dict[str, Any]) -> str:
    dims = t["dimensions"]
    head = "".join(f"<th>{escape(d.replace('_', ' '))}</th>" for d in dims)
    body = []
    for row in [*t["rows"], *t.get("margins", [])]:
        n = row["count"]
        cls = "n hidden" if n == HIDDEN else "n"
        cells = "".join(f"<td>{escape(str(row.get(d, 'all')))}</td>" for d in dims)
        body.append(f'<tr>{cells}<td class="{cls}">{escape(str(n))}</td></tr>')
    if "total" in t:
        total = t["total"]
        body.append(f"<tr><th colspan=\"{len(dims)}\">total</th>"
                    f'<td class="n">{escape(str(total))}</td></tr>')
    return f"<table><tr>{head}<th>persons</th></tr>{''.join(body)}</table>"


def _section(t: dict[str, Any]) -> str:
    title = t.get("title") or t["name"].replace("_", " ")
    if t["dimensions"] == ["route_flow"]:
        chart = flow_diagram(t["rows"])
    else:
        chart = bar_chart(title, [(_label(r, t["dimensions"]), r["count"]) for r in t["rows"]])
    note = f'<p class="note">{escape(t["note"])}</p>' if t.get("note") else ""
    return (f'<section id="{escape(t["name"])}"><h2>{escape(title)}</h2>{note}{chart}'
            f"{_html_table(t)}</section>")


def _page(title: str, intro: str, sections: list[str]) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1>{intro}{''.join(sections)}</body></html>")


def render_report(report: dict[str, Any], lag: int | None) -> str:
    period = report["period"]
    facts = (f"<p>Period: {escape(str(period['from'] or 'the start'))} to "
             f"{escape(str(period['to'] or 'today'))} ({escape(period['basis'])}). "
             f"Persons referred: <strong>{escape(str(report['persons_referred']))}</strong>; "
             f"identified as victims (assisted): "
             f"<strong>{escape(str(report['persons_assisted']))}</strong>; screened as not "
             f"victims: {escape(str(report['screened_not_victim']))}. "
             f"Generated {escape(str(report.get('generated_at', '')))}"
             + (f", {lag} events not yet counted" if lag else "") + ".</p>")
    intro = f'<p class="coverage">{escape(report["coverage"])}</p>{facts}'
    return _page(report["title"], intro, [_section(t) for t in report["tables"]])


def render_snapshot(body: dict[str, Any], lag: int | None) -> str:
    intro = (f"<p>Open cases: <strong>{escape(str(body['open_cases']))}</strong>"
             + (" (small cells suppressed)" if body["suppressed"] else "")
             + (f"; {lag} events not yet counted" if lag else "") + ".</p>")
    return _page(body["title"], intro, [_section(t) for t in body["tables"]])
