"""The ladder a file carries, compared with the database's (issue 15, point 10).

An export says which probability each stage had where it was made: an XLSX has a "Ladder" sheet,
a CSV has a companion `NAME.ladder.csv` written beside it, and every exported row also names its
stage and that stage's probability. When the file is imported into a database whose ladder gives
those stages other probabilities, the same prospects would show the same TV but another EV without
a word. The preview says which probabilities differ and what EV the import will show here and with
the file's ladder; `--adopt-ladder` takes the file's probabilities in the same transaction as the
import (journalled as probability changes, like `evpipe stages`).

Where the file's ladder comes from, and how it is read: models/import_rungs.py.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlmodel import col

from .import_rungs import FileRung
from .import_types import ImportPlan, LadderCheck
from .journal import BridgeCategory, BulkJournal, probability_summary
from .ladder import LOST, ev_micros
from .store_base import stage_totals
from .tables import Stage, pk

# ---------------------------------------------------------------- comparing


def compare_ladder(conn: Connection, plan: ImportPlan, rungs: list[FileRung], source: str) -> LadderCheck | None:
    """How the file's ladder differs from the one the import writes on (None: the file has none)."""
    if not rungs:
        return None
    here = {name.casefold(): (name, kind, bp) for name, kind, bp, _ in plan.ladder}
    added = {name.casefold() for name, _, _, new in plan.ladder if new}  # --add-stage gives their probability
    to_here: dict[str, str] = {}
    for m in plan.stage_mappings:
        if m.ladder_name:
            to_here[m.file_name.casefold()] = m.ladder_name.casefold()
    explicit = {k.strip().casefold(): v.strip().casefold() for k, v in plan.options.stage_map.items()}
    wanted: dict[str, set[int]] = defaultdict(set)
    for rung in rungs:
        key = rung.name.casefold()
        target = to_here.get(key) or explicit.get(key) or (key if key in here else None)
        if target is None or target not in here or target in added:
            continue
        wanted[target].add(rung.bp)
    check = LadderCheck(source=source, adopt=plan.options.adopt_ladder)
    new_bp: dict[str, int] = {}
    for key, bps in wanted.items():
        name, kind, bp = here[key]
        if len(bps) > 1:
            check.mixed.append(name)
            continue
        (file_bp,) = bps
        if kind == LOST or file_bp == bp:
            continue  # a lost stage is 0% wherever it is
        check.differences.append((name, file_bp, bp))
        new_bp[key] = file_bp
    for r in plan.records:
        _, kind, bp = here[r.stage]
        check.tv_cents += r.value_cents if kind != LOST else 0
        check.ev_here_micros += ev_micros(r.value_cents, kind, bp)
        check.ev_file_micros += ev_micros(r.value_cents, kind, new_bp.get(r.stage, bp))
    if new_bp:
        for sid, stage_name, stage_kind, stage_bp in _stages(conn):
            adopted = new_bp.get(stage_name.casefold())
            if adopted is None:
                continue
            count, total = stage_totals(conn, sid)
            check.existing_count += count
            check.existing_shift_micros += ev_micros(total, stage_kind, adopted) - ev_micros(
                total, stage_kind, stage_bp
            )
    return check


def _stages(conn: Connection) -> list[tuple[int, str, str, int]]:
    q = select(pk(Stage.id), col(Stage.name), col(Stage.kind), col(Stage.probability_bp)).where(
        col(Stage.archived) == False  # noqa: E712 (SQL, not Python)
    )
    return [(int(sid), name, kind, int(bp)) for sid, name, kind, bp in conn.execute(q)]


# ---------------------------------------------------------------- adopting, inside the import's transaction


@dataclass(frozen=True)
class Adoption:
    """One stage taking the file's probability: planned before the import's write lock, written
    under it (models/import_commit.py)."""

    stage_id: int
    name: str
    kind: str
    before: int
    after: int
    count: int  # live prospects on the stage before the import
    total_cents: int

    @property
    def d_ev(self) -> int:
        return ev_micros(self.total_cents, self.kind, self.after) - ev_micros(self.total_cents, self.kind, self.before)


def plan_adoption(conn: Connection, plan: ImportPlan, ladder: list[tuple[int, str, str, int, int]]) -> list[Adoption]:
    """The stages that take the file's probabilities (only when the user asked), on the ladder
    rows `(id, name, kind, bp, position)` the import works with."""
    check = plan.ladder_check
    if check is None or not check.adopt or not check.differences:
        return []
    wanted = {name.casefold(): file_bp for name, file_bp, _ in check.differences}
    out = []
    for sid, name, kind, bp, _ in ladder:
        target = wanted.get(name.casefold())
        if target is None or target == bp or kind == LOST:
            continue
        count, total = stage_totals(conn, sid)
        out.append(Adoption(sid, name, kind, bp, target, count, total))
    return out


def adopted_ladder(
    ladder: list[tuple[int, str, str, int, int]], adoptions: list[Adoption]
) -> list[tuple[int, str, str, int, int]]:
    """The ladder rows with the adopted probabilities."""
    after = {a.stage_id: a.after for a in adoptions}
    return [(sid, name, kind, after.get(sid, bp), pos) for sid, name, kind, bp, pos in ladder]


def journal_adoption(journal: BulkJournal, adoptions: list[Adoption], source: str, at: datetime) -> None:
    """Each adoption's journal entry, like `evpipe stages set` writes it."""
    for a in adoptions:
        journal.event(
            at=at,
            category=BridgeCategory.PROB,
            stage_id=a.stage_id,
            d=(0, 0, a.d_ev),
            payload={"before": a.before, "after": a.after},
            summary=f"{probability_summary(a.name, a.before, a.after, a.count, a.d_ev)} (the ladder of {source})",
        )


def write_adoption(conn: Connection, adoptions: list[Adoption]) -> None:
    for a in adoptions:
        conn.execute(update(Stage).where(col(Stage.id) == a.stage_id).values(probability_bp=a.after))


def adoption_basis(conn: Connection, adoptions: list[Adoption]) -> tuple[tuple[int, int], ...]:
    """What the adoptions' journal entries depend on: the prospects on each stage now."""
    return tuple(stage_totals(conn, a.stage_id) for a in adoptions)


__all__ = [
    "Adoption",
    "LadderCheck",
    "adopted_ladder",
    "adoption_basis",
    "compare_ladder",
    "journal_adoption",
    "plan_adoption",
    "write_adoption",
]
