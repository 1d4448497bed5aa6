"""The page of ``sessionpacks report --html FILE``: one self-contained HTML file to look at.

No network and no script: the styles are inline, the charts inline SVG, and a
Content-Security-Policy forbids loading anything at all. The page shows the period's figures
per currency (the reconciliation), the unearned value (the liability) at the start and at the
end of each week, the sessions used per week, the packs expiring in the next
:data:`EXPIRING_DAYS` days, and the top templates by sales.

:func:`gather` reads what the page needs through :class:`~sessionpacks.service.PackService`:
the ledgers once, the period's :func:`sessionpacks.reports.report` and one per week (the
weeks start on ``--from``; the last may be shorter), the open packs expiring soon
(``find_packs``) and the templates' names. :func:`render` is a pure function of that
:class:`Page`, every text HTML-escaped. Each figure is in an element marked
``data-figure="KEY"`` whose text is the figure as ``--csv`` writes it (an amount without its
currency, a count, ``true``/``false``, an ISO date), so a test can read the page back and
compare it with the report. :func:`write` writes the file whole or not at all.
"""

from __future__ import annotations

import html
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import attrs

from sessionpacks import _reporting, reports
from sessionpacks.ledger import PackState, PackStatus
from sessionpacks.model import Money, format_amount
from sessionpacks.ports import MAX_PAGE, PackQuery
from sessionpacks.reports import Report, ReportLine
from sessionpacks.service import PackService

__all__ = [
    "AD_HOC",
    "EXPIRING_DAYS",
    "LINE_FIGURES",
    "MAX_WEEKS",
    "TOTAL_FIGURES",
    "Page",
    "Week",
    "gather",
    "render",
    "week_bounds",
    "write",
]

EXPIRING_DAYS = 30
"""The packs shown as expiring soon: open now, with an expiry date within this many days."""
MAX_WEEKS = 260
"""The longest period the page charts, in weeks (five years): each week is a report."""
TOP_TEMPLATES = 8
MAX_EXPIRING_ROWS = 100
AD_HOC = "(ad hoc)"
TOTAL_FIGURES = (
    "packs_sold",
    "sold",
    "sessions_used",
    "opening_unearned",
    "recognised",
    "breakage",
    "refunds",
    "written_off",
    "closing_unearned",
)
"""The figures of each currency's total, keyed ``total.CUR.NAME`` (and ``total.CUR.balances``)."""
LINE_FIGURES = ("packs_sold", "sold", "sessions_used", "recognised", "closing_unearned")
"""The figures of each top template, keyed ``template.CUR.TEMPLATE.NAME``."""
_TITLES = {
    "packs_sold": "Packs sold",
    "sold": "Sales",
    "sessions_used": "Sessions used",
    "opening_unearned": "Unearned at the start",
    "recognised": "Revenue recognised",
    "breakage": "Breakage (expired unused)",
    "refunds": "Refunds (closed packs)",
    "written_off": "Written off",
    "closing_unearned": "Unearned at the end",
}


@attrs.frozen(kw_only=True)
class Week:
    """One week of the period, ``[start, end)`` in local dates, and its report."""

    start: date
    end: date
    report: Report


@attrs.frozen(kw_only=True)
class Page:
    """Everything the page shows, read once; :func:`render` turns it into HTML."""

    practice: str
    start: date
    end: date
    as_of: datetime | None
    today: date
    report: Report
    weeks: tuple[Week, ...]
    expiring: tuple[PackState, ...]
    names: Mapping[str, str] = attrs.field(factory=dict)
    """Template ids to their names."""


# Reading -------------------------------------------------------------------------------------


def week_bounds(start: date, end: date) -> list[tuple[date, date]]:
    """``[start, end)`` cut into weeks from ``start``; the last one may be shorter."""
    bounds: list[tuple[date, date]] = []
    day = start
    while day < end:
        after = min(day + timedelta(days=7), end)
        bounds.append((day, after))
        day = after
    return bounds


def _expiring(service: PackService, today: date) -> tuple[PackState, ...]:
    query = PackQuery(
        statuses=frozenset({PackStatus.OPEN}),
        as_of=service.clock.now(),
        expiring_from=today,
        expiring_to=today + timedelta(days=EXPIRING_DAYS),
    )
    found: list[PackState] = []
    after: str | None = None
    while True:
        page = service.find_packs(query, after=after, limit=MAX_PAGE)
        found.extend(page.packs)
        if page.next_cursor is None:
            return tuple(sorted(found, key=lambda p: (p.expiry_date or today, p.pack_id)))
        after = page.next_cursor


def gather(service: PackService, start: date, end: date, *, as_of: datetime | None = None) -> Page:
    """What the page of ``[start, end)`` (the practice's local dates) shows, as recorded
    before ``as_of`` (``None``: everything); the expiring packs are those of today."""
    ledgers = tuple(_reporting.ledgers(service))
    zone = service.practice.zone

    def between(first: date, after: date) -> Report:
        begin, finish = datetime.combine(first, time(), zone), datetime.combine(after, time(), zone)
        return reports.report(ledgers, begin, finish, as_of=as_of)

    today = service.today()
    return Page(
        practice=service.practice.id,
        start=start,
        end=end,
        as_of=as_of,
        today=today,
        report=between(start, end),
        weeks=tuple(Week(start=a, end=b, report=between(a, b)) for a, b in week_bounds(start, end)),
        expiring=_expiring(service, today),
        names={t.id: t.terms.name for t in service.templates()},
    )


# Writing -------------------------------------------------------------------------------------


def _as_target(error: OSError, target: str) -> OSError:
    """The error as if it were about ``target``, not the temporary file beside it."""
    return OSError(error.errno, error.strerror or str(error), target)


def write(target: str, text: str) -> None:
    """Write ``text`` to the file ``target`` whole or not at all: into a new file beside it,
    then renamed over it. An :class:`OSError` names ``target``; nothing is left behind."""
    final = Path(target)
    temporary = final.parent / f".sessionpacks-{secrets.token_hex(6)}.tmp"
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise _as_target(error, target) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise _as_target(error, target) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# Rendering: values and figures ---------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _value(value: object) -> str:
    """A figure's text, as ``--csv`` writes it."""
    if isinstance(value, Money):
        return str(value.amount)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _figure(key: str, value: object, tag: str = "td", css: str = "num") -> str:
    return f'<{tag} class="{css}" data-figure="{_e(key)}">{_e(_value(value))}</{tag}>'


def _label(line: ReportLine) -> str:
    return line.template_id or AD_HOC


def _name(page: Page, template_id: str | None) -> str:
    if template_id is None:
        return "Ad hoc packs"
    return page.names.get(template_id, template_id)


def _number(value: Money | int) -> float:
    return float(value.amount if isinstance(value, Money) else Decimal(value))


def _total(found: Report, currency: str) -> ReportLine | None:
    return next((t for t in found.totals if t.currency == currency), None)


def _currencies(page: Page) -> list[str]:
    return [total.currency for total in page.report.totals]


# Rendering: charts ---------------------------------------------------------------------------

_W, _H, _LEFT, _TOP, _BOTTOM = 760, 230, 70, 26, 34


def _bounds(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(0.0, *values), max(0.0, *values)
    return (low, high) if high > low else (low, low + 1.0)


def _y(value: float, low: float, high: float) -> float:
    return _TOP + (high - value) / (high - low) * (_H - _TOP - _BOTTOM)


def _ticks(count: int, wanted: int = 8) -> set[int]:
    """Which of ``count`` places get a label: every step-th and the last, none crowded."""
    step = max(1, -(-count // wanted))
    shown = list(range(0, count, step))
    if shown and shown[-1] != count - 1:
        if len(shown) > 1 and count - 1 - shown[-1] < step / 2 + 1:
            shown.pop()
        shown.append(count - 1)
    return set(shown)


def _frame(title: str, body: Sequence[str], low: float, high: float, unit: str) -> str:
    zero, top = _y(0.0, low, high), _y(high, low, high)
    head = f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(title)}">'
    axis = [
        f'<line class="axis" x1="{_LEFT}" y1="{zero:.1f}" x2="{_W - 10}" y2="{zero:.1f}"/>',
        f'<text class="tick" x="{_LEFT - 6}" y="{zero + 4:.1f}" text-anchor="end">0</text>',
        f'<text class="tick" x="{_LEFT - 6}" y="{top + 4:.1f}" text-anchor="end">'
        f"{_e(_short(high))}</text>",
        f'<text class="unit" x="4" y="12">{_e(unit)}</text>',
    ]
    if low < 0:
        bottom = _y(low, low, high)
        axis.append(
            f'<text class="tick" x="{_LEFT - 6}" y="{bottom + 4:.1f}" text-anchor="end">'
            f"{_e(_short(low))}</text>"
        )
    return "".join([head, *axis, *body, "</svg>"])


def _short(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.2f}"


def _x_label(x: float, text: str) -> str:
    anchor = "start" if x < _LEFT + 20 else "end" if x > _W - 40 else "middle"
    return f'<text class="tick" x="{x:.1f}" y="{_H - 12}" text-anchor="{anchor}">{_e(text)}</text>'


def _bars(title: str, labels: Sequence[str], values: Sequence[float], unit: str) -> str:
    """A vertical bar chart, one bar a label; negative values hang below the zero line."""
    if not values:
        return '<p class="empty">Nothing to chart.</p>'
    low, high = _bounds(values)
    slot = (_W - _LEFT - 10) / len(values)
    shown, body = _ticks(len(values)), []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = _LEFT + i * slot
        top, zero = _y(max(value, 0.0), low, high), _y(min(value, 0.0), low, high)
        body.append(
            f'<rect class="bar" x="{x + slot * 0.15:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}"'
            f' height="{max(zero - top, 0.5):.1f}"><title>{_e(label)}: {_e(_short(value))}'
            "</title></rect>"
        )
        if i in shown:
            body.append(_x_label(x + slot / 2, label))
    return _frame(title, body, low, high, unit)


def _line(title: str, labels: Sequence[str], values: Sequence[float], unit: str) -> str:
    """A line through the values at evenly spaced labels, a dot and a tooltip at each."""
    low, high = _bounds(values)
    step = (_W - _LEFT - 20) / max(len(values) - 1, 1)
    points = [(_LEFT + 10 + i * step, _y(v, low, high)) for i, v in enumerate(values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    zero = _y(0.0, low, high)
    body = [
        f'<polygon class="area" points="{points[0][0]:.1f},{zero:.1f} {path} '
        f'{points[-1][0]:.1f},{zero:.1f}"/>',
        f'<polyline class="line" points="{path}"/>',
    ]
    shown = _ticks(len(values))
    for i, ((x, y), label, value) in enumerate(zip(points, labels, values, strict=True)):
        body.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3">'
            f"<title>{_e(label)}: {_e(_short(value))}</title></circle>"
        )
        if i in shown:
            body.append(_x_label(x, label))
    return _frame(title, body, low, high, unit)


def _hbars(labels: Sequence[str], values: Sequence[float], texts: Sequence[str]) -> str:
    """Horizontal bars, one a row, each with its label at the left and its text at the end."""
    width, left, row = _W, 220, 26
    high = max([*values, 0.0]) or 1.0
    body = [f'<svg class="chart" viewBox="0 0 {width} {row * len(values) + 8}" role="img">']
    for i, (label, value, text) in enumerate(zip(labels, values, texts, strict=True)):
        y, length = 4 + i * row, max(value, 0.0) / high * (width - left - 130)
        body += [
            f'<text class="tick" x="{left - 8}" y="{y + 15}" text-anchor="end">{_e(label)}</text>',
            f'<rect class="bar" x="{left}" y="{y + 2}" width="{max(length, 0.5):.1f}" height="18">'
            f"<title>{_e(label)}: {_e(text)}</title></rect>",
            f'<text class="tick" x="{left + length + 6:.1f}" y="{y + 15}">{_e(text)}</text>',
        ]
    return "".join([*body, "</svg>"])


# Rendering: sections -------------------------------------------------------------------------


def _summary(page: Page) -> str:
    currencies = _currencies(page)
    if not currencies:
        return '<section><h2>Summary</h2><p class="empty">No packs in this period.</p></section>'
    head = "".join(f'<th class="num">{_e(c)}</th>' for c in currencies)
    rows = []
    for name in TOTAL_FIGURES:
        cells = "".join(
            _figure(f"total.{t.currency}.{name}", getattr(t, name)) for t in page.report.totals
        )
        rows.append(f"<tr><th>{_e(_TITLES[name])}</th>{cells}</tr>")
    totals = page.report.totals
    checks = "".join(_figure(f"total.{t.currency}.balances", t.balances) for t in totals)
    rows.append(f"<tr><th>Reconciles to the cent</th>{checks}</tr>")
    lines = "".join(f"<li>{_e(_reconciliation(t))}</li>" for t in page.report.totals)
    return (
        '<section><h2>Summary</h2><table class="figures"><thead><tr><th>figure</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<ul class="reconciliation">{lines}</ul></section>'
    )


def _reconciliation(total: ReportLine) -> str:
    check = "balances" if total.balances else f"DOES NOT BALANCE ({total.reconciled})"
    return (
        f"{total.currency}: opening {total.opening_unearned.amount} + sold {total.sold.amount}"
        f" − recognised {total.recognised.amount} − breakage {total.breakage.amount}"
        f" − refunds {total.refunds.amount} − written off {total.written_off.amount}"
        f" = closing {total.closing_unearned.amount}: {check}"
    )


def _week_label(week: Week) -> str:
    return week.start.strftime("%d %b")


def _unearned(page: Page, currency: str) -> list[float]:
    first = _total(page.weeks[0].report, currency) if page.weeks else None
    values = [_number(first.opening_unearned) if first else 0.0]
    for week in page.weeks:
        total = _total(week.report, currency)
        values.append(_number(total.closing_unearned) if total else 0.0)
    return values


def _unearned_section(page: Page) -> str:
    charts = []
    for currency in _currencies(page):
        labels = [page.start.strftime("%d %b")]
        labels += [(w.end - timedelta(days=1)).strftime("%d %b") for w in page.weeks]
        title = f"Unearned value in {currency}, at the start and at each week's end"
        charts.append(
            f"<figure><figcaption>{_e(title)}</figcaption>"
            f"{_line(title, labels, _unearned(page, currency), currency)}</figure>"
        )
    body = "".join(charts) or '<p class="empty">No packs in this period.</p>'
    return f"<section><h2>Unearned value over the period</h2>{body}</section>"


def _week_sessions(week: Week) -> int:
    return sum(total.sessions_used for total in week.report.totals)


def _week_rows(page: Page) -> str:
    currencies = _currencies(page)
    head = "".join(f'<th class="num">unearned at the end, {_e(c)}</th>' for c in currencies)
    rows = []
    for week in page.weeks:
        key = f"week.{week.start.isoformat()}"
        cells = [_figure(f"{key}.sessions_used", _week_sessions(week))]
        for currency in currencies:
            total = _total(week.report, currency)
            amount = total.closing_unearned if total else Money.from_minor(0, currency)
            cells.append(_figure(f"{key}.{currency}.closing_unearned", amount))
        span = f"{week.start.isoformat()} to {(week.end - timedelta(days=1)).isoformat()}"
        rows.append(f"<tr><th>{_e(span)}</th>{''.join(cells)}</tr>")
    return (
        '<details><summary>The weeks\' figures</summary><table class="figures"><thead><tr>'
        f'<th>week</th><th class="num">sessions used</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></details>"
    )


def _weekly_section(page: Page) -> str:
    labels = [_week_label(w) for w in page.weeks]
    values = [float(_week_sessions(w)) for w in page.weeks]
    chart = _bars("Sessions used per week", labels, values, "sessions")
    return (
        "<section><h2>Sessions used per week</h2>"
        f"<figure><figcaption>Sessions used each week (net of releases), weeks from "
        f"{_e(page.start.isoformat())}</figcaption>{chart}</figure>{_week_rows(page)}</section>"
    )


def _expiring_rows(page: Page) -> str:
    rows = []
    for pack in page.expiring[:MAX_EXPIRING_ROWS]:
        key = f"expiring.{pack.pack_id}"
        rows.append(
            f"<tr>{_figure(f'{key}.expiry_date', pack.expiry_date, css='date')}"
            f"<td>{_e(pack.pack_id)}</td>{_figure(f'{key}.client', pack.client_id, css='text')}"
            f"<td>{_e(_name(page, pack.template_id))}</td>"
            f"{_figure(f'{key}.left', format_amount(pack.remaining))}</tr>"
        )
    more = len(page.expiring) - MAX_EXPIRING_ROWS
    if more > 0:
        rows.append(f'<tr><td colspan="5" class="empty">and {more} more</td></tr>')
    return (
        '<table class="figures"><thead><tr><th>expires on</th><th>pack</th><th>client</th>'
        f'<th>template</th><th class="num">left</th></tr></thead><tbody>{"".join(rows)}'
        "</tbody></table>"
    )


def _expiring_section(page: Page) -> str:
    until = page.today + timedelta(days=EXPIRING_DAYS)
    days = [page.today + timedelta(days=n) for n in range(EXPIRING_DAYS + 1)]
    counts = [float(sum(1 for p in page.expiring if p.expiry_date == d)) for d in days]
    count = _figure("expiring.count", len(page.expiring), tag="strong", css="count")
    intro = (
        f"<p>{count} open pack(s) expire from {_e(page.today.isoformat())} to "
        f"{_e(until.isoformat())} (today and the next {EXPIRING_DAYS} days).</p>"
    )
    if not page.expiring:
        return f"<section><h2>Packs expiring in the next {EXPIRING_DAYS} days</h2>{intro}</section>"
    chart = _bars("Packs expiring each day", [d.strftime("%d %b") for d in days], counts, "packs")
    return (
        f"<section><h2>Packs expiring in the next {EXPIRING_DAYS} days</h2>{intro}"
        f"<figure><figcaption>Packs expiring each day</figcaption>{chart}</figure>"
        f"{_expiring_rows(page)}</section>"
    )


def _top(page: Page) -> list[ReportLine]:
    def rank(line: ReportLine) -> tuple[str, int, int, int, str]:
        sold, used = line.sold.minor, line.sessions_used
        return (line.currency, -sold, -used, -line.packs_sold, _label(line))

    return sorted(page.report.lines, key=rank)[:TOP_TEMPLATES]


def _template_rows(page: Page, lines: Sequence[ReportLine]) -> str:
    rows = []
    for line in lines:
        key = f"template.{line.currency}.{_label(line)}"
        cells = "".join(_figure(f"{key}.{name}", getattr(line, name)) for name in LINE_FIGURES)
        rows.append(
            f"<tr><th>{_e(_name(page, line.template_id))}</th><td>{_e(_label(line))}</td>"
            f"<td>{_e(line.currency)}</td>{cells}</tr>"
        )
    head = "".join(f'<th class="num">{_e(_TITLES[n].lower())}</th>' for n in LINE_FIGURES)
    return (
        '<table class="figures"><thead><tr><th>template</th><th>id</th><th>currency</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _templates_section(page: Page) -> str:
    lines = _top(page)
    if not lines:
        body = '<p class="empty">No packs in this period.</p>'
    else:
        chart = _hbars(
            [_name(page, line.template_id) for line in lines],
            [_number(line.sold) for line in lines],
            [f"{line.sold} ({line.packs_sold} sold)" for line in lines],
        )
        body = f"<figure><figcaption>Sales by template</figcaption>{chart}</figure>"
        body += _template_rows(page, lines)
    return f"<section><h2>Top templates</h2>{body}</section>"


# The page ------------------------------------------------------------------------------------

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
_STYLE = """
body{font:14px/1.45 "DejaVu Sans","Liberation Sans",Arial,sans-serif;color:#1d2733;
margin:0;background:#f4f6f9}
main{max-width:820px;margin:0 auto;padding:20px 24px 40px}
header{border-bottom:3px solid #2c6e91;margin-bottom:12px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:0 0 8px;color:#2c6e91}
section{background:#fff;border:1px solid #d9dee5;border-radius:6px;padding:14px 16px;
margin:14px 0}
.meta{color:#5b6775;margin:0 0 10px}
table.figures{border-collapse:collapse;width:100%;margin-top:6px}
.figures th,.figures td{padding:3px 8px;border-bottom:1px solid #e6e9ee;text-align:left}
.figures td{white-space:nowrap}
.figures thead th{font-size:12px;color:#5b6775;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
.figures td.num,.figures th.num{text-align:right}
.reconciliation{color:#3b4654;font-size:13px;padding-left:18px}
figure{margin:6px 0 10px}
figcaption{font-size:12px;color:#5b6775;margin-bottom:2px}
svg.chart{width:100%;height:auto;display:block}
.bar{fill:#2c6e91}
.line{fill:none;stroke:#2c6e91;stroke-width:2}
.area{fill:#2c6e91;fill-opacity:.12}
.dot{fill:#fff;stroke:#2c6e91;stroke-width:2}
.axis{stroke:#8a95a3;stroke-width:1}
.tick,.unit{font-size:11px;fill:#5b6775}
.count{font-size:16px}
.empty{color:#5b6775;font-style:italic}
summary{cursor:pointer;color:#2c6e91;margin-top:6px}
"""


def _header(page: Page) -> str:
    end = page.end - timedelta(days=1)
    meta = (
        f"{_figure('period.start', page.start, tag='span', css='date')} to "
        f"{_e(end.isoformat())} (until {_figure('period.end', page.end, tag='span', css='date')}"
        f", excluded) · practice {_e(page.practice)} · today "
        f"{_figure('today', page.today, tag='span', css='date')}"
    )
    if page.as_of is not None:
        meta += f" · as recorded before {_e(page.as_of.isoformat())}"
    return f'<header><h1>Session packs report</h1><p class="meta">{meta}</p></header>'


def render(page: Page) -> str:
    """The page, as one HTML document: no script, no external reference, every text
    escaped."""
    title = f"Session packs report {page.start.isoformat()} to {page.end.isoformat()}"
    sections: Iterator[str] = (
        part(page)
        for part in (
            _header,
            _summary,
            _unearned_section,
            _weekly_section,
            _expiring_section,
            _templates_section,
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )
