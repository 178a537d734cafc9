"""Sighting in: the stage probabilities against real outcomes (docs/domain.md, "Sighting in").

- Only live prospects whose outcome is known (on the won or the lost stage) count; a window
  limits them to outcomes closed in the last N months (`closed_on`).
- A prospect's *rung* is the open stage it closed from: the `from` stage of its latest stage change
  out of an open stage (so a payment that bounced, won then lost, closed from the rung it was won
  from). Its *last stage*, for the Brier score, is the `from` stage of its latest move into its
  current (won or lost) stage. A move that was undone, and the undo's move back, are neither
  (models/journal.py `undone_move`): a won prospect reopened by mistake and put back still closed
  from the rung it was won from.
- Evidence: an outcome whose rung the history saw. One whose rung is the importer's guess (the row
  is marked `inferred`: the file said won or lost, not from where) is counted apart, as inferred,
  and one with no rung at all (created won or lost) counts nowhere. Neither is ever a suggestion's
  evidence.
- For each open stage s, in ladder order: W(s) = won and L(s) = lost prospects whose rung was s or
  a later rung (reaching a later rung implies the earlier ones; a prospect won from s did not pass
  the rungs above s). n = W + L, observed p(s) = W / n, with a 95% Wilson score interval. An
  outcome from another system (an import: the prospect has a `source`) passed only the stages its
  file shows: it counts for the rungs from the lowest its history saw it on up to its own, not
  for the rungs below (a file of deals won from Deposit paid says nothing of Suspect).
- Next step c(s) = the share of n(s) that got past s: reached a later rung, or won from s; from the
  top open rung that is W / n.
- Suggested probability where W > 0, L > 0 (one-sided evidence says nothing about the other side),
  n >= 10 and today's probability lies outside the interval: (W + k p_now) / (n + k) with k = 10,
  rounded to a whole percent, and at most one point below the won stage's probability (a payment
  can still bounce); None when that is today's. `note` says why a stage has none.
- Brier score of the current ladder: the mean of (p - outcome)^2 over closed prospects, each
  predicted at today's probability of its last stage (outcome 1 when won, 0 when lost); prospects
  with no last stage, last on the lost stage, or last on a guessed stage were never predicted and
  are left out.

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
from .journal import ev_phrase, undone_move
from .ladder import LOST, OPEN, WON, open_rungs
from .rawdb import fetch_all
from .values import FULL_BP, format_percent, money_str

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


#: Why a stage has no suggestion, as the screen and the CLI say it.
NOTE_NO_OUTCOMES = "no outcomes"
NOTE_INFERRED = "inferred"  # its outcomes' rungs are all the importer's guess
NOTE_NO_WINS = "no wins"
NOTE_NO_LOSSES = "no losses"
NOTE_TOO_FEW = "too few"  # fewer than MIN_N outcomes
NOTE_FITS = "fits"  # today's probability lies inside the interval, or is what the data suggests
NOTE_CAPPED = "below won"  # the suggestion is held one point below the won stage's probability


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
    inferred_won: int = 0
    inferred_lost: int = 0
    note: str = ""
    ev_move_micros: int = 0  # the EV accepting the suggestion moves (0 without one)

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
            "inferred_won": self.inferred_won,
            "inferred_lost": self.inferred_lost,
            "note": self.note or None,
            "ev_move": money_str(self.ev_move_micros, micros=True),
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
    inferred: int = 0  # outcomes whose rung is the importer's guess, or unknown: not evidence

    @property
    def suggestions(self) -> list[StageCalibration]:
        return [s for s in self.stages if s.suggested_bp is not None]

    @property
    def ev_move_micros(self) -> int:
        """The EV accepting every suggestion moves."""
        return sum(s.ev_move_micros for s in self.suggestions)

    def to_json(self) -> dict[str, Any]:
        return {
            "stages": [s.to_json() for s in self.stages],
            "won": self.won,
            "lost": self.lost,
            "inferred": self.inferred,
            "ev_move": money_str(self.ev_move_micros, micros=True),
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
SELECT s.kind AS outcome, fs.id AS last_id, fs.kind AS last_kind, fs.probability_bp AS last_bp,
       sc.inferred AS last_inferred, rs.position AS rung_pos, rc.inferred AS rung_inferred,
       CASE WHEN p.source IS NOT NULL THEN (
           SELECT min(st.position) FROM stage_change x JOIN stage st
               ON st.id = x.to_stage_id OR st.id = x.from_stage_id
            WHERE x.prospect_id = p.id AND st.kind = '{OPEN}' AND NOT {undone_move("x")}) END AS first_pos,
       COUNT(*) AS n
FROM prospect p
JOIN stage s ON s.id = p.stage_id AND s.kind IN ('{WON}', '{LOST}')
LEFT JOIN stage_change sc ON sc.id = (
    SELECT sc2.id FROM stage_change sc2
     WHERE sc2.prospect_id = p.id AND sc2.to_stage_id = p.stage_id AND NOT {undone_move("sc2")}
     ORDER BY sc2.changed_at DESC, sc2.id DESC LIMIT 1)
LEFT JOIN stage fs ON fs.id = sc.from_stage_id
LEFT JOIN stage_change rc ON rc.id = (
    SELECT sc3.id FROM stage_change sc3 JOIN stage f3 ON f3.id = sc3.from_stage_id
     WHERE sc3.prospect_id = p.id AND f3.kind = '{OPEN}' AND NOT {undone_move("sc3")}
     ORDER BY sc3.changed_at DESC, sc3.id DESC LIMIT 1)
LEFT JOIN stage rs ON rs.id = rc.from_stage_id
WHERE p.deleted_at IS NULL AND (:all_time = 1 OR p.closed_on >= :since)
GROUP BY s.kind, fs.id, sc.inferred, rs.id, rc.inferred, first_pos
"""

_STAGE_VALUES_SQL = "SELECT stage_id, SUM(value_cents) FROM prospect WHERE deleted_at IS NULL GROUP BY stage_id"


def _suggest(
    won: int, lost: int, p_now_bp: int, won_bp: int, low: float | None, high: float | None, inferred: int
) -> tuple[int | None, str]:
    """(the suggested probability or None, the note that says why not, or that it was held below won)."""
    n = won + lost
    if n == 0:
        return None, NOTE_INFERRED if inferred else NOTE_NO_OUTCOMES
    if won == 0:
        return None, NOTE_NO_WINS
    if lost == 0:
        return None, NOTE_NO_LOSSES
    if n < MIN_N or low is None or high is None:
        return None, NOTE_TOO_FEW
    p_now = Decimal(p_now_bp) / FULL_BP
    if Decimal(str(low)) <= p_now <= Decimal(str(high)):
        return None, NOTE_FITS
    blended = (Decimal(won) + K * p_now) / (n + K)
    bp = int((blended * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 100
    note = ""
    ceiling = won_bp - 100
    if bp > ceiling:
        bp, note = ceiling, NOTE_CAPPED
    if bp == p_now_bp or bp < 0:
        return None, note or NOTE_FITS
    return bp, note


#: Where an outcome counts: (the lowest rung it was seen on, None: any below its rung; its rung).
Rungs = tuple[int | None, int]


def _at_or_above(counts: dict[Rungs, int], position: int, seen_by: int | None = None) -> int:
    """The outcomes that passed the rung at `position`: closed from it or a later rung, and (one
    from another system, an import: it passed only the stages its history shows) seen on the
    rung at `seen_by` (default: `position`) or an earlier one."""
    seen = position if seen_by is None else seen_by
    return sum(c for (first, pos), c in counts.items() if pos >= position and (first is None or first <= seen))


def calibrate(engine: Engine, *, months: int | None = None) -> Calibration:
    """The sighting-in table: per open stage, configured against observed (see the module docstring)."""
    if months is not None and (not isinstance(months, int) or months < 1 or months > 1200):
        raise DomainError("months: a whole number of months from 1 to 1200", field="months")
    since = months_back(clock.today(), months) if months else None
    from .store import Store
    from .store_ladder import probability_ev_change

    ladder = Store(engine, who="calibration").ladder()
    opens = open_rungs(ladder)
    if not opens:
        raise DomainError("calibrate: the ladder has no open stage")
    won_bp = next((s.probability_bp for s in ladder if s.kind == WON), FULL_BP)
    won = lost_total = unplaced = 0
    # rung position -> outcomes closed from it: seen by the history, or guessed by an import
    won_at: dict[Rungs, int] = {}
    lost_at: dict[Rungs, int] = {}
    guessed_won_at: dict[Rungs, int] = {}
    guessed_lost_at: dict[Rungs, int] = {}
    brier_groups: list[tuple[int, int, int, int]] = []  # (stage id, its bp, outcome, count)
    with engine.connect() as conn:
        rows = fetch_all(conn, _OUTCOMES_SQL, {"all_time": int(since is None), "since": since or clock.today()})
        values = {int(sid): int(total) for sid, total in fetch_all(conn, _STAGE_VALUES_SQL)}
    for outcome, last_id, last_kind, last_bp, last_inferred, rung_pos, rung_inferred, first_pos, count in rows:
        count = int(count)
        is_won = outcome == WON
        if is_won:
            won += count
        else:
            lost_total += count
        if rung_pos is None:
            unplaced += count
        else:
            if rung_inferred:
                unplaced += count
                target = guessed_won_at if is_won else guessed_lost_at
            else:
                target = won_at if is_won else lost_at
            key = (None if first_pos is None else int(first_pos), int(rung_pos))
            target[key] = target.get(key, 0) + count
        if last_id is not None and last_kind != LOST and not last_inferred:
            brier_groups.append((int(last_id), int(last_bp), 1 if is_won else 0, count))
    rows_out = []
    for i, s in enumerate(opens):
        w, lo = _at_or_above(won_at, s.position), _at_or_above(lost_at, s.position)
        iw, il = _at_or_above(guessed_won_at, s.position), _at_or_above(guessed_lost_at, s.position)
        n = w + lo
        low = high = None
        if n:
            low, high = wilson_interval(w, n)
        if n == 0:
            conv = None
        elif i + 1 < len(opens):
            later = opens[i + 1].position
            # of the n(s), all seen on s or below: those that got past s, every win (from a later rung,
            # or from s itself) and the losses from a later rung
            conv = (w + _at_or_above(lost_at, later, s.position)) / n
        else:
            conv = w / n
        suggested, note = _suggest(w, lo, s.probability_bp, won_bp, low, high, iw + il)
        ev_move = 0
        if suggested is not None:
            ev_move = probability_ev_change(values.get(s.id, 0), s.kind, s.probability_bp, suggested)
        rows_out.append(
            StageCalibration(s.id, s.name, s.probability_bp, w, lo, low, high, conv, suggested, iw, il, note, ev_move)
        )
    suggested_bp = {r.stage_id: r.suggested_bp for r in rows_out if r.suggested_bp is not None}
    brier_n = sum(c for *_, c in brier_groups)

    def brier(overrides: dict[int, int]) -> float | None:
        if not brier_n:
            return None
        total = Decimal(0)
        for sid, bp, outcome, count in brier_groups:
            p = Decimal(overrides.get(sid, bp)) / FULL_BP
            total += count * (p - outcome) ** 2
        return float(total / brier_n)

    return Calibration(
        rows_out, won, lost_total, brier({}), brier(suggested_bp), brier_n, months, since, inferred=unplaced
    )


def change_text(row: StageCalibration) -> str:
    """How accepting a stage's suggestion reads: 'Engaging 30% → 63%, EV +1,234' (the EV it moves,
    from the prospects on the stage now)."""
    assert row.suggested_bp is not None, "only a stage with a suggestion changes"
    return f"{row.stage} {format_percent(row.configured_bp)} → {format_percent(row.suggested_bp)}, " + ev_phrase(
        row.ev_move_micros
    )


def changes_text(cal: Calibration) -> list[str]:
    """What accepting every suggestion changes, one line a stage, then the EV in all (for more than one)."""
    lines = [change_text(r) for r in cal.suggestions]
    if len(lines) > 1:
        lines.append(f"in all: {ev_phrase(cal.ev_move_micros)}")
    return lines


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
