"""Sighting in: the stage probabilities against real outcomes (docs/domain.md, "Sighting in").

- Only live prospects whose outcome is known (on the won or the lost stage) count; a window
  limits them to outcomes closed in the last N months (`closed_on`).
- A prospect's *last stage* is the stage it was on when it was won or lost: the `from` stage of
  its latest stage change into its current (won or lost) stage. A lost prospect with no such
  record (created lost, e.g. imported) counts as lost on the first open rung.
- For each open stage s, in ladder order: W(s) = every won prospect (a won prospect passed every
  open stage); L(s) = lost prospects whose last stage was s or a later rung (one lost after being
  won, a bounced payment, passed every open stage). n = W + L, observed p(s) = W / n, with a 95%
  Wilson score interval.
- Conversion c(s -> s+1) = reached(s+1) / reached(s) among the same prospects, reaching a later
  rung implying the earlier ones, so reached(s) = n(s); from the top open rung the next step is
  the won stage: c = W / n. (So p(s) = c(s -> s+1) x p(s+1), as it should.)
- Suggested probability where n >= 10 and today's probability lies outside the interval:
  (W + k p_now) / (n + k) with k = 10, rounded to a whole percent; None when that rounds to today's.
- Brier score of the current ladder: the mean of (p - outcome)^2 over closed prospects, each
  predicted at today's probability of its last stage (outcome 1 when won, 0 when lost); prospects
  with no last stage, or last on the lost stage, were never predicted and are left out.

Counts come from one grouped SQL query; no prospect row is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Engine

from . import clock
from .errors import DomainError
from .ladder import LOST, WON, open_rungs
from .rawdb import fetch_all
from .values import FULL_BP, format_percent

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution
MIN_N = 10
K = 10


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (successes out of n)."""
    if n <= 0:
        raise ValueError("wilson_interval: n must be positive")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class StageCalibration:
    stage_id: int
    stage: str
    configured_bp: int
    won: int
    lost: int
    low: float | None
    high: float | None
    conversion_next: float | None
    suggested_bp: int | None

    @property
    def n(self) -> int:
        return self.won + self.lost

    @property
    def observed(self) -> float | None:
        return self.won / self.n if self.n else None

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "configured": self.configured_bp / FULL_BP,
            "observed": _r(self.observed),
            "won": self.won,
            "lost": self.lost,
            "n": self.n,
            "low": _r(self.low),
            "high": _r(self.high),
            "conversion_next": _r(self.conversion_next),
            "suggested": None if self.suggested_bp is None else self.suggested_bp / FULL_BP,
        }


@dataclass(frozen=True)
class Calibration:
    stages: list[StageCalibration]
    won: int
    lost: int
    brier: float | None
    brier_suggested: float | None
    brier_n: int
    months: int | None
    since: date | None

    def to_json(self) -> dict[str, Any]:
        return {
            "stages": [s.to_json() for s in self.stages],
            "won": self.won,
            "lost": self.lost,
            "brier": _r(self.brier),
            "brier_suggested": _r(self.brier_suggested),
            "brier_n": self.brier_n,
            "months": self.months,
            "since": self.since.isoformat() if self.since else None,
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    import calendar

    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


_OUTCOMES_SQL = f"""
SELECT s.kind AS outcome, fs.id AS last_id, fs.position AS last_pos, fs.kind AS last_kind,
       fs.probability_bp AS last_bp, COUNT(*) AS n
FROM prospect p
JOIN stage s ON s.id = p.stage_id AND s.kind IN ('{WON}', '{LOST}')
LEFT JOIN stage_change sc ON sc.id = (
    SELECT sc2.id FROM stage_change sc2
     WHERE sc2.prospect_id = p.id AND sc2.to_stage_id = p.stage_id
     ORDER BY sc2.changed_at DESC, sc2.id DESC LIMIT 1)
LEFT JOIN stage fs ON fs.id = sc.from_stage_id
WHERE p.deleted_at IS NULL AND (:since IS NULL OR p.closed_on >= :since)
GROUP BY s.kind, fs.id
"""


def _suggest(won: int, n: int, p_now_bp: int, low: float | None, high: float | None) -> int | None:
    if n < MIN_N or low is None or high is None:
        return None
    p_now = Decimal(p_now_bp) / FULL_BP
    if Decimal(str(low)) <= p_now <= Decimal(str(high)):
        return None
    blended = (Decimal(won) + K * p_now) / (n + K)
    bp = int((blended * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 100
    return None if bp == p_now_bp else bp


def calibrate(engine: Engine, *, months: int | None = None) -> Calibration:
    """The sighting-in table: per open stage, configured against observed (see the module docstring)."""
    if months is not None and (not isinstance(months, int) or months < 1 or months > 1200):
        raise DomainError("months: a whole number of months from 1 to 1200", field="months")
    since = months_back(clock.today(), months) if months else None
    from .store import Store

    ladder = Store(engine, who="calibration").ladder()
    opens = open_rungs(ladder)
    if not opens:
        raise DomainError("calibrate: the ladder has no open stage")
    first_pos = opens[0].position
    won = 0
    lost_at: dict[int, int] = {}  # last-stage position -> lost prospects
    brier_groups: list[tuple[int, int, int, int]] = []  # (stage id, its bp, outcome, count)
    with engine.connect() as conn:
        for outcome, last_id, last_pos, last_kind, last_bp, count in fetch_all(conn, _OUTCOMES_SQL, {"since": since}):
            count = int(count)
            if outcome == WON:
                won += count
            else:
                pos = first_pos if last_pos is None else int(last_pos)
                lost_at[pos] = lost_at.get(pos, 0) + count
            if last_id is not None and last_kind != LOST:
                brier_groups.append((int(last_id), int(last_bp), 1 if outcome == WON else 0, count))
    lost_total = sum(lost_at.values())
    ns = []
    for s in opens:
        lost = sum(c for pos, c in lost_at.items() if pos >= s.position)
        ns.append((s, lost))
    rows = []
    for i, (s, lost) in enumerate(ns):
        n = won + lost
        low = high = None
        if n:
            low, high = wilson_interval(won, n)
        if n == 0:
            conv = None
        elif i + 1 < len(ns):
            conv = (won + ns[i + 1][1]) / n
        else:
            conv = won / n
        rows.append(
            StageCalibration(
                s.id,
                s.name,
                s.probability_bp,
                won,
                lost,
                low,
                high,
                conv,
                _suggest(won, n, s.probability_bp, low, high),
            )
        )
    suggested = {r.stage_id: r.suggested_bp for r in rows if r.suggested_bp is not None}
    brier_n = sum(c for *_, c in brier_groups)

    def brier(overrides: dict[int, int]) -> float | None:
        if not brier_n:
            return None
        total = Decimal(0)
        for sid, bp, outcome, count in brier_groups:
            p = Decimal(overrides.get(sid, bp)) / FULL_BP
            total += count * (p - outcome) ** 2
        return float(total / brier_n)

    return Calibration(rows, won, lost_total, brier({}), brier(suggested), brier_n, months, since)


def apply_suggestions(
    store, stages: list[str | int] | None = None, *, months: int | None = None, calibration: Calibration | None = None
) -> list[Any]:
    """Accept the suggestions (all, or those of the stages named/numbered in `stages`), each recorded
    as a probability change through the store. Returns the ChangeResults."""
    cal = calibration or calibrate(store.engine, months=months)
    wanted = None
    if stages is not None:
        wanted = set()
        for ref in stages:
            wanted.add(store.stage(ref).id)
    results = []
    for row in cal.stages:
        if row.suggested_bp is None or (wanted is not None and row.stage_id not in wanted):
            continue
        percent = format_percent(row.suggested_bp).rstrip("%")
        results.append(store.set_probability(row.stage_id, percent))
    return results
