"""The weekly review as one self-contained HTML file (`evpipe review --format html`, issue 14).

The three KPIs and their change, the EV bridge, the EV history and the forecast by month as inline
SVG drawn here (bars and lines, labels exact, with thousands separators), and the follow-ups and
best next steps: readable on a phone (viewport, fluid layout), printable (print CSS), no script, no
outside asset (a Content-Security-Policy in the file says so to the browser too). Every piece of
user text goes through `html.escape`.

This is output formatting, like the XLSX export (models/exporter.py): it lives in models/ because it
needs nothing of the UI (the standard library and the models' own rules for money and EV/TV), so
the CLI, a cron job or a later web page call the same function. It reads nothing itself: the
caller hands it the review, the forecast and the KPI history (`build_report` gathers them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape
from typing import TYPE_CHECKING

from .ladder import ev_tv_ratio, format_ev_tv
from .period import month_name
from .values import balanced_cents, format_money

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from .focus import FocusItem
    from .forecast import Forecast
    from .kpi import Kpi
    from .review import Review

#: Sizes of the drawings (SVG user units; the SVG scales to the page's width).
CHART_W, CHART_H = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 86, 16, 16, 40
#: Room for one character of an axis label (12px sans-serif: a digit is up to 7.7 units wide).
LABEL_CHAR = 8

STYLE = """
:root { color-scheme: light; --ink: #1d2327; --dim: #5f6b73; --line: #d8dee2; --ev: #1f6f8b;
  --tv: #9aa9b2; --up: #1e7b34; --down: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 52rem; padding: 1rem; color: var(--ink);
  font: 16px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.45rem; margin: .2rem 0 .2rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); }
p.lead { color: var(--dim); margin: 0 0 1rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: .6rem; }
.card { border: 1px solid var(--line); border-radius: .5rem; padding: .6rem .8rem; }
.card .name { color: var(--dim); font-size: .85rem; }
.card .now { font-size: 1.35rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .was { color: var(--dim); font-size: .85rem; }
.up { color: var(--up); } .down { color: var(--down); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3rem .4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; color: var(--dim); font-weight: 600; }
td.n, th.n { text-align: right; white-space: nowrap; }
td.n:first-child { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid var(--ink); }
svg { width: 100%; height: auto; display: block; }
svg text { font: 12px sans-serif; fill: var(--dim); }
.legend { font-size: .85rem; color: var(--dim); }
.swatch { display: inline-block; width: .8rem; height: .8rem; vertical-align: -.1rem; margin: 0 .2rem 0 .6rem; }
ol, ul { padding-left: 1.3rem; } li { margin: .2rem 0; }
.none { color: var(--dim); }
.names { color: var(--dim); font-size: .85rem; }
footer { margin-top: 2rem; color: var(--dim); font-size: .8rem; }
@media (max-width: 30rem) {
  body { font-size: 14px; padding: .6rem; } th, td { padding: .25rem .15rem; } .card .now { font-size: 1.2rem; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  h2 { break-after: avoid; } .card, svg, tr, li { break-inside: avoid; }
  .scroll { overflow: visible; }
}
"""


def _money(cents: int, *, signed: bool = False) -> str:
    return format_money(cents, signed=signed and cents != 0)


def _ev(micros: int, *, signed: bool = False) -> str:
    return format_money(micros, micros=True, signed=signed and micros != 0)


def _whole(cents: int) -> str:
    return format_money(cents, decimals=False)


def _tone(amount: int) -> str:
    return "up" if amount > 0 else "down" if amount < 0 else ""


def _ratio_text(k: Kpi) -> str:
    return format_ev_tv(ev_tv_ratio(k.ev_micros, k.tv_cents, 4))


def _nice_step(top_cents: int, parts: int = 4) -> int:
    """A round step (1, 2 or 5 times a power of ten, in whole units) for about `parts` gridlines."""
    raw = max(top_cents // parts, 100)
    step = 100
    while True:
        for m in (1, 2, 5):
            if step * m >= raw:
                return step * m
        step *= 10


def _axis(top_cents: int) -> tuple[int, list[int]]:
    """The axis' top (a multiple of a round step, at least `top_cents`) and its gridlines."""
    step = _nice_step(top_cents)
    top = max(step, -(-top_cents // step) * step)
    return top, list(range(0, top + 1, step))


def _left(ticks: list[int]) -> int:
    """Where the plot starts: after the widest gridline label (a pipeline of billions has labels
    such as 10,000,000,000, which a fixed margin cut to ',000,000,000')."""
    return max(LEFT, 6 + 6 + LABEL_CHAR * max(len(_whole(t)) for t in ticks))


def _grid(ticks: list[int], top: int, left: int) -> list[str]:
    out = []
    for t in ticks:
        y = TOP + (CHART_H - TOP - BOTTOM) * (1 - t / top)
        out.append(f'<line x1="{left}" x2="{CHART_W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d8dee2"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_whole(t)}</text>')
    return out


def history_svg(points: Sequence[tuple[date, int, int]]) -> str:
    """EV (and TV, lighter) over time as lines: (day, TV cents, EV micros) per reading."""
    if not points:
        return '<p class="none">No KPI history yet.</p>'
    cents = [(d, tv, ev // 10_000) for d, tv, ev in points]  # EV in cents, for the drawing only
    top, ticks = _axis(max(max(tv, ev) for _, tv, ev in cents))
    left = _left(ticks)
    plot_w, plot_h = CHART_W - left - RIGHT, CHART_H - TOP - BOTTOM
    first, last = cents[0][0], cents[-1][0]
    span = max((last - first).days, 1)

    def xy(day: date, value: int) -> str:
        x = left + plot_w * ((day - first).days / span if len(cents) > 1 else 0.5)
        return f"{x:.1f},{TOP + plot_h * (1 - value / top):.1f}"

    tv_line = " ".join(xy(d, tv) for d, tv, _ in cents)
    ev_line = " ".join(xy(d, ev) for d, _, ev in cents)
    last_ev = points[-1][2]
    end_x, end_y = (float(v) for v in xy(last, cents[-1][2]).split(","))
    parts = [
        f'<svg viewBox="0 0 {CHART_W} {CHART_H}" role="img" aria-label="EV and TV over time">',
        *_grid(ticks, top, left),
        f'<polyline points="{tv_line}" fill="none" stroke="#9aa9b2" stroke-width="2" stroke-dasharray="5 4"/>',
        f'<polyline points="{ev_line}" fill="none" stroke="#1f6f8b" stroke-width="3"/>',
        f'<circle cx="{end_x:.1f}" cy="{end_y:.1f}" r="4" fill="#1f6f8b"/>',
        f'<text x="{min(end_x, CHART_W - RIGHT):.1f}" y="{max(end_y - 9, 12):.1f}" text-anchor="end" '
        f'style="fill:#1f6f8b;font-weight:600">EV {_ev(last_ev)}</text>',
        f'<text x="{left}" y="{CHART_H - 14}">{first:%d %b %Y}</text>',
        f'<text x="{CHART_W - RIGHT}" y="{CHART_H - 14}" text-anchor="end">{last:%d %b %Y}</text>',
        "</svg>",
    ]
    return "\n".join(parts)


def forecast_svg(fc: Forecast) -> str:
    """The forecast by month as bars: today's EV of each month's prospects, and, for the months
    that have ended, what they were won for beside it."""
    months = fc.months
    if not months:
        return '<p class="none">No months to show.</p>'
    values = [(m.kpi.ev_micros // 10_000, m.actual_cents if m.complete else None) for m in months]
    top, ticks = _axis(max(max(ev, actual or 0) for ev, actual in values))
    left = _left(ticks)
    plot_w, plot_h = CHART_W - left - RIGHT, CHART_H - TOP - BOTTOM
    slot = plot_w / len(months)
    bar = max(slot * 0.36, 1.5)
    parts = [
        f'<svg viewBox="0 0 {CHART_W} {CHART_H}" role="img" aria-label="Forecast by month">',
        *_grid(ticks, top, left),
    ]
    for i, (m, (ev, actual)) in enumerate(zip(months, values)):
        x = left + slot * i + slot * 0.12
        h = plot_h * ev / top
        label = f"{month_name(m.month)}: EV {_ev(m.kpi.ev_micros)}"
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="#1f6f8b">'
            f"<title>{escape(label)}</title></rect>"
        )
        if actual is not None:
            h = plot_h * actual / top
            parts.append(
                f'<rect x="{x + bar:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="#e0a030"><title>{escape(month_name(m.month))}: won {_money(actual)}</title></rect>'
            )
        if i % max(1, len(months) // 8) == 0:
            parts.append(
                f'<text x="{x + bar:.1f}" y="{CHART_H - 14}" text-anchor="middle">{escape(month_name(m.month))}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _kpi_card(name: str, now: str, was: str, change: str, tone: str) -> str:
    return (
        f'<div class="card"><div class="name">{name}</div><div class="now">{now}</div>'
        f'<div class="was">was {was} · <span class="{tone}">{change}</span></div></div>'
    )


def _focus_line(i: FocusItem) -> str:
    owner = f" · {escape(i.owner)}" if i.owner else ""
    return (
        f"<li><strong>{escape(i.name)}</strong>{owner}: {escape(i.stage)} → {escape(i.next_stage)} would add "
        f"{_ev(i.gain_micros)} EV <span class='none'>({escape(i.reason)})</span></li>"
    )


def _follow_list(title: str, items: Sequence[FocusItem]) -> str:
    if not items:
        return f'<h3>{title}</h3><p class="none">None.</p>'
    lines = "".join(
        f"<li><strong>{escape(i.name)}</strong> · {escape(i.stage)} · {_money(i.value_cents)}"
        f"{' · ' + escape(i.owner) if i.owner else ''}: {escape(i.reason)}</li>"
        for i in items
    )
    return f"<h3>{title} ({len(items)})</h3><ul>{lines}</ul>"


# Longer than 80 lines on purpose: it is one page, written top to bottom in the order it reads.
def review_html(r: Review, fc: Forecast, history: Sequence[tuple[date, int, int]], *, database: str = "") -> str:
    """The review as one HTML page (see the module's docstring)."""
    first, last = r.start_at.date(), r.end_at.date()
    d_ev = r.end.ev_micros - r.start.ev_micros
    d_tv = r.end.tv_cents - r.start.tv_cents
    r_start = ev_tv_ratio(r.start.ev_micros, r.start.tv_cents, 4)
    r_end = ev_tv_ratio(r.end.ev_micros, r.end.tv_cents, 4)
    if r_start is not None and r_end is not None:
        points = (r_end - r_start) * 100
        ratio_change, ratio_tone = f"{points:+.2f} pt", _tone(int(points * 100))
    else:
        ratio_change, ratio_tone = "—", ""
    title = f"Pipeline review, {first:%a %d %b} – {last:%a %d %b %Y}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="lead">{escape(database) + " · " if database else ""}'
        f"from {r.start_at:%Y-%m-%d %H:%M} to {r.end_at:%Y-%m-%d %H:%M}</p>",
        '<section class="cards">',
        _kpi_card(
            "Expected value (EV)", _ev(r.end.ev_micros), _ev(r.start.ev_micros), _ev(d_ev, signed=True), _tone(d_ev)
        ),
        _kpi_card(
            "Total value (TV)", _money(r.end.tv_cents), _money(r.start.tv_cents), _money(d_tv, signed=True), _tone(d_tv)
        ),
        _kpi_card("EV/TV", _ratio_text(r.end), _ratio_text(r.start), ratio_change, ratio_tone),
        "</section>",
        f'<p class="legend">Prospects in play: {r.end.count:,} (was {r.start.count:,}).</p>',
        "<h2>What moved expected value</h2>",
    ]
    if not r.terms:
        out.append('<p class="none">Nothing changed in the pipeline.</p>')
    else:
        rows = []
        # the terms to the cent, adding up to the change as shown (models.values.balanced_cents)
        for t, cents in zip(r.terms, balanced_cents([t.d_ev_micros for t in r.terms], micros=True)):
            moved = [i for i in t.items if i.d_ev_micros or i.d_tv_cents or i.d_count]
            names = ", ".join(escape(i.name) for i in moved[:4])
            if len(moved) > 4:
                names += f" and {len(moved) - 4} more"
            rows.append(
                f"<tr><td>{escape(t.label)}<div class='names'>{names}</div></td>"
                f"<td class='n {_tone(t.d_ev_micros)}'>{_money(cents, signed=True)}</td>"
                f"<td class='n'>{_money(t.d_tv_cents, signed=True)}</td></tr>"
            )
        out += [
            '<div class="scroll"><table><thead><tr><th>Term (its prospects)</th><th class="n">EV</th>'
            '<th class="n">TV</th></tr></thead><tbody>',
            f"<tr><td>Start</td><td class='n'>{_ev(r.start.ev_micros)}</td><td class='n'>{_money(r.start.tv_cents)}"
            "</td></tr>",
            *rows,
            f"<tr class='total'><td>Change</td><td class='n'>{_ev(d_ev, signed=True)}</td>"
            f"<td class='n'>{_money(d_tv, signed=True)}</td></tr>",
            f"<tr><td>Now</td><td class='n'>{_ev(r.end.ev_micros)}</td><td class='n'>{_money(r.end.tv_cents)}</td></tr>",
            "</tbody></table></div>",
        ]
    out += [
        "<h2>EV over time</h2>",
        history_svg(history),
        '<p class="legend"><span class="swatch" style="background:#1f6f8b"></span>EV'
        '<span class="swatch" style="background:#9aa9b2"></span>TV (dashed)</p>',
        "<h2>Forecast by month</h2>",
        forecast_svg(fc),
        '<p class="legend"><span class="swatch" style="background:#1f6f8b"></span>EV of the month\'s prospects'
        '<span class="swatch" style="background:#e0a030"></span>won (months that have ended)</p>',
        '<div class="scroll"><table><thead><tr><th>Month</th><th class="n">EV now</th>'
        '<th class="n">EV at its start</th><th class="n">Won</th></tr></thead><tbody>',
    ]
    shown = [m for m in fc.months if m.kpi.ev_micros or m.frozen_ev_micros or m.actual_cents]
    for m in shown:
        frozen = "—" if m.frozen_ev_micros is None else _ev(m.frozen_ev_micros)
        won = _money(m.actual_cents) if m.complete else ""
        out.append(
            f"<tr><td class='n'>{escape(month_name(m.month))}</td><td class='n'>{_ev(m.kpi.ev_micros)}</td>"
            f"<td class='n'>{frozen}</td><td class='n'>{won}</td></tr>"
        )
    left_out = len(fc.months) - len(shown)
    out += [
        "</tbody></table></div>",
        f'<p class="legend">{left_out} month(s) with nothing expected or won are left out of the table.</p>'
        if left_out
        else "",
        "<h2>What's next</h2>",
    ]
    if r.focus:
        out += ["<p>The next steps that would lift expected value most:</p>", "<ol>"]
        out += [_focus_line(i) for i in r.focus]
        out.append("</ol>")
    else:
        out.append('<p class="none">No open prospects.</p>')
    out += [
        _follow_list("Follow-ups overdue", r.overdue),
        _follow_list("Follow-ups due this week", r.due),
        _follow_list("Gone quiet", r.stale),
        f"<footer>Made by evpipe on {r.end_at:%Y-%m-%d %H:%M}. EV = sum of value × stage probability; "
        "EV/TV is how far the pipeline is towards cash.</footer>",
        "</body></html>",
    ]
    return "\n".join(out) + "\n"


def build_report(engine: Engine, since: str | None = None, *, database: str = "", weeks: int = 26) -> str:
    """Gather the review, the forecast and the KPI history (today's KPI period) and make the page."""
    from .forecast import forecast
    from .history import trend
    from .kpi import Scope
    from .period import current_period
    from .review import review

    r = review(engine, since)
    points = trend(engine, weeks, Scope(period=current_period(engine)))
    history = [(p.taken_on, p.kpi.tv_cents, p.kpi.ev_micros) for p in points]
    return review_html(r, forecast(engine), history, database=database)


__all__ = ["build_report", "forecast_svg", "history_svg", "review_html"]
