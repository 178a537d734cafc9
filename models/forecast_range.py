"""The forecast as a range (issue 16): the distribution of the value that will be won, per month and
for the KPI period, if each open prospect closes independently with its stage's probability.

- Which prospects, and at which probability: those of the forecast (models/forecast.py), i.e. the
  live prospects expected in the month that are not lost, each open one at its stage's probability;
  won ones are counted as won (their value is certain), lost ones as 0. The KPI period as a whole
  takes the prospects the KPIs count (models/period.py: every open prospect, won ones expected in
  the period).
- The quantiles, exactly: Pq is the smallest amount x with P(won value <= x) >= q. P10 <= P50 <=
  P90, all within [won, won + open].
- `p_target` = P(won value >= target).
- How (`method`): "exact" is a dynamic program over the prospects' values in cents, on a sparse
  map {amount: weight} with exact integer weights (a prospect at bp basis points multiplies the
  weights by bp and 10,000 - bp, reduced by their common factor), so every probability is an exact
  fraction. It is used while the map holds at most `EXACT_POINTS` (20,000) amounts and the program
  has done at most `EXACT_WORK` updates. Beyond that, "simulation": up to `SIM_PROSPECTS` (2,000)
  uncertain prospects, `DRAWS` (20,000) seeded draws (the same answer every time), fewer when
  draws x prospects would pass `SIM_WORK` (never fewer than `MIN_DRAWS`, 1,000); `draws` says how
  many. Beyond 2,000 uncertain prospects (a whole KPI period of a big pipeline), "normal": the
  normal distribution with the exact mean (the EV) and variance (sum of v^2 p (1 - p)), which that
  many independent prospects follow closely, so that the range costs one pass, not minutes.
- Honesty (`band_record`): for each month that has ended with final figures (judged by the forecast,
  not provisional), the band frozen at its start, computed from the prospects as they stood at
  00:00 on its 1st (models.history.prospects_at), and whether the actual A(m) fell inside
  [P10, P90]. About 80% of months should, if the ladder's probabilities are sighted in.

Targets are the owner's, per month (models/targets.py). The target of the KPI period is the sum of
the targets set for its months.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time
from fractions import Fraction
from math import gcd
from typing import TYPE_CHECKING, Any

from .kpi import Scope
from .ladder import LOST, OPEN, WON
from .period import Period, current_period
from .rawdb import fetch_chunks, raw_cursor
from .values import money_str, month_add

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from .forecast import Forecast

#: The exact program's limits: amounts in the map, and map updates in all.
EXACT_POINTS = 20_000
EXACT_WORK = 400_000
#: The simulation beyond them: draws, seeded; fewer when draws x prospects would pass SIM_WORK.
DRAWS = 20_000
MIN_DRAWS = 1_000
SIM_WORK = 500_000
SEED = 16
#: Beyond this many uncertain prospects: the normal distribution with the exact mean and variance.
SIM_PROSPECTS = 2_000
#: The standard normal's quantiles at 10% and 90% (50%: 0).
_Z = {10: -1.2815515655446004, 50: 0.0, 90: 1.2815515655446004}

FULL_BP = 10_000
QUANTILES = (10, 50, 90)


@dataclass(frozen=True)
class Distribution:
    """The won value's distribution: amounts (cents, ascending) with their cumulative weights out
    of `total` (exact integers)."""

    amounts: list[int]
    cumulative: list[int]
    total: int
    method: str  # "exact" or "simulation"
    draws: int | None = None

    def quantile(self, percent: int) -> int:
        """The smallest amount x with P(X <= x) >= percent / 100."""
        need = percent * self.total
        for amount, cum in zip(self.amounts, self.cumulative):
            if cum * 100 >= need:
                return amount
        return self.amounts[-1]

    def at_least(self, amount: int) -> Fraction:
        """P(X >= amount), exactly (a share of the draws for a simulation)."""
        below = 0
        for a, cum in zip(self.amounts, self.cumulative):
            if a >= amount:
                break
            below = cum
        return Fraction(self.total - below, self.total)


def distribution(certain_cents: int, chances: Iterable[tuple[int, int]]) -> Distribution | Normal:
    """The distribution of `certain_cents` plus the sum of the values of `chances` (value in cents,
    probability in basis points) each won independently."""
    items = []
    for value, bp in chances:
        if value == 0 or bp <= 0:
            continue
        if bp >= FULL_BP:
            certain_cents += value
        else:
            items.append((value, bp))
    if len(items) > SIM_PROSPECTS:  # the exact program cannot finish (`_EXACT_FAILS_BEYOND`)
        return Normal(certain_cents, items)
    items.sort(key=lambda t: -t[0])  # big values first: the map grows late
    dist = _exact(items)
    if dist is not None:
        return _shifted(dist, certain_cents)
    return _simulated(certain_cents, items)


#: How many uncertain prospects (a value other than 0, a probability between 0 and 100%) the exact
#: program can never finish: after k of them its map holds at least k + 1 amounts (starting from the
#: sum of the negative values, adding the positive ones one by one, then dropping the negative ones,
#: gives k + 1 different sums), so it has done at least 2 + 3 + ... + (k + 1) updates, past
#: EXACT_WORK from this many on. Beyond SIM_PROSPECTS (more than this) the range is the normal one,
#: found without trying the program first.
_EXACT_FAILS_BEYOND = math.isqrt(2 * EXACT_WORK)
assert _EXACT_FAILS_BEYOND * (_EXACT_FAILS_BEYOND + 3) // 2 > EXACT_WORK and SIM_PROSPECTS >= _EXACT_FAILS_BEYOND


class Normal:
    """The won value of very many independent prospects: normal, with the exact mean and variance,
    each quantile rounded to a cent and kept within [won, won + open]."""

    method = "normal"
    draws = None

    def __init__(self, certain_cents: int, items: list[tuple[int, int]], sums: tuple[int, int, int] | None = None):
        """`sums`: the sums over `items` (then not needed) of v, v x bp and v^2 x bp x (10,000 - bp),
        kept as the prospects were read (`Chances`)."""
        if sums is None:
            sums = _sums(items)
        total, weighted, spread = sums
        self.low = certain_cents
        self.high = certain_cents + total
        # the same exact fractions, summed over one denominator in integers (issue 13: a Fraction
        # per prospect took seconds at 100,000)
        mean = Fraction(certain_cents) + Fraction(weighted, FULL_BP)
        var = Fraction(spread, FULL_BP * FULL_BP)
        self.mean, self.sd = float(mean), math.sqrt(var)

    def quantile(self, percent: int) -> int:
        x = round(self.mean + _Z.get(percent, 0.0) * self.sd)
        return min(self.high, max(self.low, x))

    def at_least(self, amount: int) -> Fraction:
        if amount <= self.low:
            return Fraction(1)
        if amount > self.high:
            return Fraction(0)
        z = (amount - self.mean) / self.sd if self.sd else math.inf
        return Fraction(0.5 * math.erfc(z / math.sqrt(2))).limit_denominator(10**9)


def _sums(items: Iterable[tuple[int, int]]) -> tuple[int, int, int]:
    """What the normal range needs of uncertain prospects (value, bp): the sums of v, v x bp and
    v^2 x bp x (10,000 - bp), exact integers."""
    total = weighted = spread = 0
    for v, bp in items:
        total += v
        weighted += v * bp
        spread += v * v * bp * (FULL_BP - bp)
    return total, weighted, spread


def _exact(items: list[tuple[int, int]]) -> Distribution | None:
    weights: dict[int, int] = {0: 1}
    total = 1
    work = 0
    for value, bp in items:
        g = gcd(bp, FULL_BP)
        yes, no = bp // g, (FULL_BP - bp) // g
        new: dict[int, int] = {}
        get = new.get
        for x, w in weights.items():
            new[x] = get(x, 0) + w * no
            new[x + value] = get(x + value, 0) + w * yes
        weights = new
        total *= yes + no
        work += len(new)
        if len(new) > EXACT_POINTS or work > EXACT_WORK:
            return None
    amounts = sorted(weights)
    cumulative, running = [], 0
    for a in amounts:
        running += weights[a]
        cumulative.append(running)
    return Distribution(amounts, cumulative, total, "exact")


def _shifted(d: Distribution, by: int) -> Distribution:
    if not by:
        return d
    return Distribution([a + by for a in d.amounts], d.cumulative, d.total, d.method, d.draws)


def draws_for(n: int) -> int:
    """How many draws the simulation makes for `n` uncertain prospects."""
    if n == 0:
        return DRAWS
    return max(MIN_DRAWS, min(DRAWS, SIM_WORK // n))


def _simulated(certain_cents: int, items: list[tuple[int, int]]) -> Distribution:
    rng = random.Random(SEED)
    draws = draws_for(len(items))
    pairs = [(v, bp / FULL_BP) for v, bp in items]  # floats only to draw; the sums stay in cents
    rand = rng.random
    sums = sorted(certain_cents + sum(v for v, p in pairs if rand() < p) for _ in range(draws))
    amounts: list[int] = []
    cumulative: list[int] = []
    for i, s in enumerate(sums, start=1):
        if amounts and amounts[-1] == s:
            cumulative[-1] = i
        else:
            amounts.append(s)
            cumulative.append(i)
    return Distribution(amounts, cumulative, draws, "simulation", draws)


# ---------------------------------------------------------------- a month's range


@dataclass(frozen=True)
class Range:
    """The range of one month (or of the KPI period)."""

    won_cents: int
    open_cents: int
    ev_micros: int
    p10: int
    p50: int
    p90: int
    method: str
    draws: int | None = None
    target_cents: int | None = None
    p_target: Fraction | None = None
    dist: Distribution | Normal | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "p10": money_str(self.p10),
            "p50": money_str(self.p50),
            "p90": money_str(self.p90),
            "target": None if self.target_cents is None else money_str(self.target_cents),
            "p_target": None if self.p_target is None else round(float(self.p_target), 6),
            "range_method": self.method,
            "range_draws": self.draws,
        }


class Chances:
    """A set of prospects added one at a time (`add`), kept as what their range needs: the sums,
    and the uncertain prospects themselves only while there are at most SIM_PROSPECTS of them
    (beyond, the range is the normal one, which needs only the sums): a month of a million
    prospects is a few numbers, not a list."""

    __slots__ = ("won", "open", "ev", "certain", "items", "count", "total", "weighted", "spread")

    def __init__(self) -> None:
        self.won = self.open = self.ev = self.certain = 0
        self.items: list[tuple[int, int]] | None = []  # the uncertain ones, in the order added
        self.count = self.total = self.weighted = self.spread = 0

    def add(self, value: int, kind: str, bp: int) -> None:
        """One prospect: its value in cents, its stage's kind and probability in basis points."""
        self.add_group(kind, bp, int(value != 0), value, value * value)
        if self.items is not None and self.uncertain(value, kind, bp):
            self.items.append((value, bp))
            if self.count > SIM_PROSPECTS:
                self.items = None

    def add_group(self, kind: str, bp: int, nonzero: int, total: int, squares: int) -> None:
        """Prospects of one stage at once, as their sums: how many have a value (not 0), the sum of
        their values and of the values' squares. The uncertain ones themselves are kept by `add`
        (`month_ranges` reads them when it needs them)."""
        if kind == LOST:
            return
        self.ev += total * bp
        if kind == WON:
            self.won += total  # counted as won; its EV is the forecast's (the won stage's probability)
            return
        self.open += total
        if bp <= 0:  # (with a value of 0: what `distribution` leaves out, and what it counts as won)
            return
        if bp >= FULL_BP:
            self.certain += total
            return
        self.count += nonzero
        self.total += total
        self.weighted += total * bp
        self.spread += squares * bp * (FULL_BP - bp)

    @staticmethod
    def uncertain(value: int, kind: str, bp: int) -> bool:
        """Whether a prospect is among the uncertain ones `add_group` counts: open, with a value,
        at a probability strictly between 0 and 1."""
        return kind not in (LOST, WON) and value != 0 and 0 < bp < FULL_BP

    def range(self, target_cents: int | None = None) -> Range:
        """`range_of` these prospects."""
        certain = self.won + self.certain
        d: Distribution | Normal
        if self.items is None:
            d = Normal(certain, [], (self.total, self.weighted, self.spread))
        else:
            d = distribution(certain, self.items)
        p10, p50, p90 = (d.quantile(q) for q in QUANTILES)
        p_target = None if target_cents is None else d.at_least(target_cents)
        return Range(self.won, self.open, self.ev, p10, p50, p90, d.method, d.draws, target_cents, p_target, d)


def range_of(prospects: Iterable[tuple[int, str, int]], target_cents: int | None = None) -> Range:
    """The range of a set of prospects given as (value in cents, stage kind, probability bp)."""
    chances = Chances()
    for value, kind, bp in prospects:
        chances.add(value, kind, bp)
    return chances.range(target_cents)


#: Splits a value in cents into high and low parts of 20 bits, so that the squares' sums stay
#: within SQLite's 64-bit integers (a value is at most 10^12 < 2^40): v^2 = hh * 2^40 + hl * 2^21 + ll.
_SPLIT = 20
_LOW = (1 << _SPLIT) - 1


def _live_groups(source: Any, owner: str | None) -> Iterator[tuple[str | None, str, int, int, int, int]]:
    """(expected month, kind, probability, prospects with a value, sum of values, sum of squares)
    of the live prospects that are not lost, per month and stage: the sums `Chances.add_group`
    takes, added up by the database (`source`: an Engine or models.rawdb's SqliteReader)."""
    where, params = Scope(owner=owner).sql()
    v = "CAST(p.value_cents AS BIGINT)"
    hi, lo = f"({v} >> {_SPLIT})", f"({v} & {_LOW})"
    sql = (
        f"SELECT p.expected_month, s.kind, s.probability_bp, SUM(CASE WHEN {v} <> 0 THEN 1 ELSE 0 END), "
        f"SUM({v}), SUM({hi} * {hi}), SUM({hi} * {lo}), SUM({lo} * {lo}) "
        f"FROM prospect p JOIN stage s ON s.id = p.stage_id WHERE s.kind != :lost AND {where} "
        "GROUP BY p.expected_month, s.kind, s.probability_bp"
    )
    with raw_cursor(source) as cursor:
        for chunk in fetch_chunks(cursor, sql, {"lost": LOST, **params}):
            for month, kind, bp, nonzero, total, hh, hl, ll in chunk:
                # (PostgreSQL's SUM of bigints is a numeric: exact, made an int here)
                squares = (int(hh) << (2 * _SPLIT)) + (int(hl) << (_SPLIT + 1)) + int(ll)
                yield month, kind, int(bp), int(nonzero), int(total), squares


def _live_rows(
    source: Any, owner: str | None, months: list[str] | None = None
) -> Iterator[tuple[str | None, int, str, int]]:
    """(expected month, value, kind, probability) of every live prospect that is not lost, in id
    order (`source`: an Engine or models.rawdb's SqliteReader). `months`: only the open ones
    expected in these months."""
    where, params = Scope(owner=owner).sql()
    if months is not None:
        params.update({f"m{i}": m for i, m in enumerate(months)})
        where += f" AND s.kind = :open AND p.expected_month IN ({', '.join(f':m{i}' for i in range(len(months)))})"
        params["open"] = OPEN
    sql = (
        "SELECT p.expected_month, p.value_cents, s.kind, s.probability_bp "
        f"FROM prospect p JOIN stage s ON s.id = p.stage_id WHERE s.kind != :lost AND {where} ORDER BY p.id"
    )
    with raw_cursor(source) as cursor:
        for chunk in fetch_chunks(cursor, sql, {"lost": LOST, **params}):
            yield from chunk


@dataclass(frozen=True)
class Ranges:
    """The ranges of the forecast's months, and of the KPI period as a whole."""

    months: dict[str, Range]
    period: Range
    kpi_period: Period

    def sentence(self, month: str) -> str:
        """'Dec: EV 31,200, 80% between 12,000 and 47,500, 38% chance of the 40,000 target'."""
        return range_sentence(month, self.months[month])


def month_ranges(
    engine: Engine, months: list[str], *, owner: str | None = None, targets: dict[str, int] | None = None
) -> Ranges:
    """The range of each month in `months` and of the KPI period, from today's pipeline."""
    from .targets import period_target
    from .targets import targets as read_targets

    targets = read_targets(engine) if targets is None else targets
    period = current_period(engine)
    by_month = {m: Chances() for m in months}
    in_period = Chances()
    holds = period.holds
    # The sums, added up by the database per month and stage; then the uncertain prospects
    # themselves, only where there are at most SIM_PROSPECTS of them (exact or simulated ranges
    # need them; the normal one needs only the sums): a big pipeline is read as a few hundred sums.
    for month, kind, bp, nonzero, total, squares in _live_groups(engine, owner):
        if (chances := by_month.get(month)) is not None:  # type: ignore[arg-type]
            chances.add_group(kind, bp, nonzero, total, squares)
        if holds(kind, month):
            in_period.add_group(kind, bp, nonzero, total, squares)
    for chances in (*by_month.values(), in_period):
        if chances.count > SIM_PROSPECTS:
            chances.items = None
    wanted = sorted(m for m, c in by_month.items() if c.items is not None and c.count)
    if in_period.items is not None and in_period.count:  # the period holds every open prospect
        rows = _live_rows(engine, owner)
    elif wanted:
        rows = _live_rows(engine, owner, wanted)
    else:
        rows = iter(())
    for month, value, kind, bp in rows:  # streamed, in id order: never every prospect at once
        if not Chances.uncertain(value, kind, bp):
            continue
        if (chances := by_month.get(month)) is not None and chances.items is not None:  # type: ignore[arg-type]
            chances.items.append((value, bp))
        if in_period.items is not None and holds(kind, month):
            in_period.items.append((value, bp))
    out = {m: chances.range(targets.get(m)) for m, chances in by_month.items()}
    return Ranges(out, in_period.range(period_target(targets, period)), period)


def range_sentence(
    month: str | None,
    r: Range,
    amount: Callable[[int], str] | None = None,
    target_amount: Callable[[int], str] | None = None,
) -> str:
    """The sentence of a month's range (`month` None: the KPI period's). `amount`: how an amount in
    cents reads (default: whole units, as the forecast shows them); `target_amount`: how the target
    reads, when not as the range's amounts (a target far larger would otherwise set their unit)."""
    from .values import format_money, month_label

    if amount is None:

        def amount(cents: int) -> str:
            return format_money(cents, decimals=False)

    name = "Period" if month is None else month_label(month).split()[0][:3]
    text = f"{name}: EV {amount((r.ev_micros + FULL_BP // 2) // FULL_BP)}, "
    if r.p10 == r.p90:
        text += f"{amount(r.p10)} for certain" if r.open_cents == 0 else f"80% at {amount(r.p10)}"
    else:
        text += f"80% between {amount(r.p10)} and {amount(r.p90)}"
    if r.target_cents is not None and r.p_target is not None:
        text += f", {percent_text(r.p_target)} chance of the {(target_amount or amount)(r.target_cents)} target"
    return text


def method_text(r: Range) -> str:
    """How a range was worked out, in a rep's words: 'exact', 'simulated, 20,000 draws' or
    'normal approximation' (beyond SIM_PROSPECTS uncertain prospects)."""
    if r.method == "simulation" and r.draws is not None:
        return f"simulated, {r.draws:,} draws"
    if r.method == "normal":
        return "normal approximation"
    return r.method


def percent_text(p: Fraction) -> str:
    """A probability as a whole percent, never rounded to a certainty it is not ('<1%', '>99%')."""
    pct = p * 100
    if 0 < pct < 1:
        return "<1%"
    if 99 < pct < 100:
        return ">99%"
    return f"{math.floor(pct + Fraction(1, 2))}%"  # half up


def band_text(r: Range, width: int = 21) -> str:
    """The range as a text band from the won value to won + open: '[---|===*===|----]': '|' at P10
    and P90, '*' at the EV, '=' between P10 and P90; readable without colour."""
    inner = width - 2
    low, high = r.won_cents, r.won_cents + r.open_cents
    if high <= low:
        return "[" + "*".center(inner, "=") + "]"

    def at(cents: int | float) -> int:
        return min(inner - 1, max(0, round((cents - low) * (inner - 1) / (high - low))))

    cells = ["-"] * inner
    a, b = at(r.p10), at(r.p90)
    for i in range(a, b + 1):
        cells[i] = "="
    cells[a] = cells[b] = "|"
    cells[at(r.ev_micros / FULL_BP)] = "*"  # the position only: a float is fine for a cell
    return "[" + "".join(cells) + "]"


def attach(fc_json: dict[str, Any], ranges: Ranges) -> dict[str, Any]:
    """`forecast --json` with each month's range and the KPI period's."""
    for m in fc_json["months"]:
        r = ranges.months.get(m["month"])
        if r is not None:
            m.update(r.to_json())
    fc_json["period"] = {**ranges.kpi_period.to_json(), "ev": money_str(ranges.period.ev_micros, micros=True)}
    fc_json["period"].update(ranges.period.to_json())
    return fc_json


# ---------------------------------------------------------------- honesty


@dataclass(frozen=True)
class BandCheck:
    month: str
    p10: int
    p90: int
    actual_cents: int
    method: str

    @property
    def inside(self) -> bool:
        return self.p10 <= self.actual_cents <= self.p90

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "frozen_p10": money_str(self.p10),
            "frozen_p90": money_str(self.p90),
            "actual": money_str(self.actual_cents),
            "inside": self.inside,
            "method": self.method,
        }


@dataclass(frozen=True)
class BandRecord:
    checks: list[BandCheck]
    #: Ended months left out: nothing uncertain was expected in them at their start (no prospect,
    #: or only won ones), so the band was one amount that could not miss and tests nothing.
    certain: int = 0

    @property
    def inside(self) -> int:
        return sum(1 for c in self.checks if c.inside)

    @property
    def share(self) -> Fraction | None:
        return Fraction(self.inside, len(self.checks)) if self.checks else None

    def summary(self) -> str:
        left_out = ""
        if self.certain:
            many = "s" if self.certain != 1 else ""
            left_out = f"; {self.certain} month{many} with nothing uncertain expected at the start left out"
        if not self.checks:
            return f"P10-P90 band: no ended month with final figures to judge yet{left_out}"
        n = len(self.checks)
        return (
            f"P10-P90 band: the actual fell inside the band frozen at the month's start in {self.inside} "
            f"of {n} ended month{'s' if n != 1 else ''} ({percent_text(self.share or Fraction(0))}; about 80% "
            f"if the probabilities are right{left_out})"
        )

    def to_json(self) -> dict[str, Any]:
        share = self.share
        return {
            "months": [c.to_json() for c in self.checks],
            "inside": self.inside,
            "judged": len(self.checks),
            "share": None if share is None else round(float(share), 6),
            "left_out_certain": self.certain,
        }


def band_record(
    engine: Engine, fc: Forecast | None = None, *, months: int = 12, owner: str | None = None
) -> BandRecord:
    """For the last `months` months that have ended with final figures and a forecast frozen at
    their start: the P10-P90 band of that frozen state, and whether the actual fell inside."""
    from . import clock
    from .forecast import forecast
    from .history import prospects_at

    if fc is None:
        this = clock.this_month()
        fc = forecast(engine, month_add(this, -months), month_add(this, -1), owner=owner)
    judged = [m for m in fc.months if m.judged and not m.provisional][-months:]
    if not judged:  # nothing to judge: no replay of the journal (seconds at a million prospects)
        return BandRecord([])
    checks = []
    certain = 0
    starts = [datetime.combine(datetime.strptime(m.month + "-01", "%Y-%m-%d").date(), time(0, 0)) for m in judged]
    month_at = {start: m.month for start, m in zip(starts, judged, strict=True)}

    def keep(moment: datetime, o: str, month: str | None) -> bool:  # each start: its own month's
        return month == month_at[moment] and (owner is None or o == owner)

    with engine.connect() as conn:
        then = prospects_at(conn, starts, keep)  # one replay of the journal for every month's start
    for m, prospects in zip(judged, then):
        rows = [(value, kind, bp) for _o, _month, value, kind, bp in prospects]
        if not any(value and kind == OPEN and 0 < bp < FULL_BP for value, kind, bp in rows):
            certain += 1  # nothing uncertain expected: a band that cannot miss tests no probability
            continue
        r = range_of(rows)
        checks.append(BandCheck(m.month, r.p10, r.p90, m.actual_cents, r.method))
    return BandRecord(checks, certain)


__all__ = [
    "BandCheck",
    "BandRecord",
    "Distribution",
    "OPEN",
    "Range",
    "Ranges",
    "attach",
    "band_record",
    "band_text",
    "distribution",
    "month_ranges",
    "percent_text",
    "range_of",
    "range_sentence",
]
