"""The ladder's rules, each defined once (docs/domain.md).

What a prospect adds to TV and EV, the order of the rungs, the next and previous rung, the
next-step gain and how EV/TV reads: the store, the pipeline table, the header, the CLI, exports
and the SQL that sums the KPIs all call this module. It takes plain values (a stage's kind and
probability in basis points, a value in cents), never UI rows or table objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol, TypeVar

OPEN = "open"
WON = "won"
LOST = "lost"

#: Every list puts what a rep works on first: open prospects, then won, then lost.
KIND_ORDER: tuple[str, ...] = (OPEN, WON, LOST)
KIND_RANK: dict[str, int] = {kind: i for i, kind in enumerate(KIND_ORDER)}


class Rung(Protocol):
    """What the ladder rules need to know of a stage (a table row, a StageInfo, a query row)."""

    @property
    def id(self) -> int | None: ...
    @property
    def position(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def probability_bp(self) -> int: ...


R = TypeVar("R", bound=Rung)


# ---------------------------------------------------------------- what a prospect adds to the KPIs


def counts(kind: str) -> bool:
    """Whether a prospect on a stage of this kind counts in TV and EV: every one but a lost one."""
    return kind != LOST


def ev_micros(value_cents: int, kind: str, probability_bp: int) -> int:
    """A prospect's EV in micros (cents x basis points): value x p, and 0 once lost."""
    return value_cents * probability_bp if counts(kind) else 0


def kpi_part(value_cents: int, kind: str, probability_bp: int) -> tuple[int, int, int]:
    """(count, TV cents, EV micros) that one prospect adds to the KPIs."""
    if not counts(kind):
        return 0, 0, 0
    return 1, value_cents, value_cents * probability_bp


def ev_sql(value: str, kind: str, probability: str) -> str:
    """The same rule as `ev_micros`, as a SQL expression over the given column expressions."""
    return f"CASE WHEN {kind} = '{LOST}' THEN 0 ELSE {value} * {probability} END"


def tv_sql(value: str, kind: str) -> str:
    """TV's share of one prospect, as a SQL expression (0 once lost)."""
    return f"CASE WHEN {kind} = '{LOST}' THEN 0 ELSE {value} END"


def count_sql(kind: str) -> str:
    """Whether one prospect counts, as a SQL expression giving 1 or 0."""
    return f"CASE WHEN {kind} = '{LOST}' THEN 0 ELSE 1 END"


def counts_sql(kind: str) -> str:
    """`counts` as a SQL condition (true for every kind but lost)."""
    return f"{kind} <> '{LOST}'"


def kind_rank_sql(kind: str) -> str:
    """`KIND_RANK` as a SQL expression."""
    whens = " ".join(f"WHEN '{k}' THEN {i}" for k, i in KIND_RANK.items() if i)
    return f"CASE {kind} {whens} ELSE 0 END"


# ---------------------------------------------------------------- the rungs


def open_rungs(stages: Iterable[R]) -> list[R]:
    """The open stages in ladder order (position, then id)."""
    return sorted((s for s in stages if s.kind == OPEN), key=lambda s: (s.position, s.id or 0))


def won_rung(stages: Iterable[R]) -> R | None:
    return next((s for s in stages if s.kind == WON), None)


def next_rung(stages: Sequence[R], stage_id: int | None) -> R | None:
    """Where `>` moves a prospect on this stage: the next open stage up, or the won stage above the
    top open one. None for a closed stage (reopen it first) or a stage not on the ladder."""
    opens = open_rungs(stages)
    for i, s in enumerate(opens):
        if s.id == stage_id:
            return opens[i + 1] if i + 1 < len(opens) else won_rung(stages)
    return None


def previous_rung(stages: Sequence[R], stage_id: int | None) -> R | None:
    """Where `<` moves an open prospect: the open stage below it, None on the first rung."""
    opens = open_rungs(stages)
    for i, s in enumerate(opens):
        if s.id == stage_id:
            return opens[i - 1] if i > 0 else None
    return None


def next_rungs(stages: Sequence[R]) -> dict[int, R]:
    """Each open stage's next rung, by stage id (one pass, for tables and queries)."""
    opens = open_rungs(stages)
    won = won_rung(stages)
    out: dict[int, R] = {}
    for i, s in enumerate(opens):
        nxt = opens[i + 1] if i + 1 < len(opens) else won
        if nxt is not None and s.id is not None:
            out[s.id] = nxt
    return out


def ev_moved(value_cents: int, from_probability_bp: int | None, to_probability_bp: int) -> int:
    """EV micros a move from one stage to another adds: value x (p(to) - p(from)), negative when it
    takes EV away; from None (a new prospect) counts as 0. A lost stage's probability is always 0,
    so a move to or from it needs no kind."""
    return value_cents * (to_probability_bp - (from_probability_bp or 0))


def next_step_gain(value_cents: int, probability_bp: int, next_probability_bp: int | None) -> int:
    """EV micros gained by one step up the ladder: value x (p(next) - p(now)); 0 when there is no
    next step (closed prospects)."""
    if next_probability_bp is None:
        return 0
    return ev_moved(value_cents, probability_bp, next_probability_bp)


def next_probability_sql(stage_id: str, probability: str, next_bp: Mapping[int, int]) -> str:
    """p(next rung) as a SQL expression, given each open stage's next probability by stage id
    (`next_rungs`); a stage with no next rung (a closed one) keeps its own, so its gain is 0."""
    steps = " ".join(f"WHEN {int(sid)} THEN {int(bp)}" for sid, bp in next_bp.items())
    return f"CASE {stage_id} {steps} ELSE {probability} END" if steps else probability


def gain_sql(value: str, probability: str, next_probability: str) -> str:
    """`next_step_gain` as a SQL expression over the given column expressions."""
    return f"{value} * ({next_probability} - {probability})"


# ---------------------------------------------------------------- moves a closed prospect cannot make


def closed_move_hint(name: str, kind: str, stage_name: str, target: str) -> str | None:
    """What to do instead of a move a won or lost prospect cannot make (advance it; win a won one;
    lose a lost one), in one sentence, or None when the move can be made. Screens say it before
    asking anything (a lost reason), so a key never asks a question whose answer would be refused."""
    if kind == OPEN:
        return None
    if target == "next":
        return f"{name} is {stage_name}: < reopens it, then > advances it."
    if target == kind:
        return f"{name} is {stage_name} already: < reopens it."
    return None


# ---------------------------------------------------------------- EV/TV as it reads


def ev_tv_ratio(ev_micros_total: int, tv_cents: int, places: int | None = None) -> Decimal | None:
    """EV/TV as a Decimal in 0..1 (None when TV is 0), rounded half up to `places` if given."""
    if tv_cents == 0:
        return None
    r = Decimal(ev_micros_total) / (Decimal(tv_cents) * 10_000)
    if places is None:
        return r
    return r.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def format_ev_tv(r: Decimal | None) -> str:
    """EV/TV as every screen and command shows it: '37.50%', or '—' when there is no TV. The ratio
    is rounded half up to 4 places first (so 0.37505 reads 37.51%), as `ev_tv_ratio(..., 4)` does."""
    if r is None:
        return "—"
    return f"{r.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP) * 100:.2f}%"


def ev_tv_text(ev_micros_total: int, tv_cents: int) -> str:
    """EV/TV of these totals, as every screen and command shows it."""
    return format_ev_tv(ev_tv_ratio(ev_micros_total, tv_cents, 4))
