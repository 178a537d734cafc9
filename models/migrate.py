"""`evpipe migrate --to URL`: copy a whole database to another one, SQLite to PostgreSQL or back.

The source is read as `evpipe dump` reads it (one consistent read), and written as `evpipe restore`
writes it, into a new database, in ONE transaction on the target; before that transaction commits,
the copy is proved against the source: every table's row count, the journal's sums (count, TV, EV:
what the bridges add up) and the KPIs (count, TV cents, EV micros, over the KPI period and over
everything) must be equal on both sides. Any difference rolls the copy back: the target is then
as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel, col

from .backup import HEAD, dump, restore_on, user_rows
from .db import writer
from .errors import DomainError, database_failure
from .kpi import ALL, Scope, kpis
from .period import current_period
from .tables import ChangeEvent


@dataclass
class Side:
    """What one database holds, as the proof compares it."""

    rows: dict[str, int] = field(default_factory=dict)
    journal: tuple[int, int, int] = (0, 0, 0)  # sums of d_count, d_tv_cents, d_ev_micros
    kpi: tuple[int, int, int] = (0, 0, 0)  # over the KPI period
    kpi_all: tuple[int, int, int] = (0, 0, 0)  # over every prospect


@dataclass
class MigrateReport:
    source: Side
    target: Side

    @property
    def agrees(self) -> bool:
        return self.source == self.target

    def differences(self) -> list[str]:
        out = [
            f"{name} rows: {n} -> {self.target.rows.get(name)}"
            for name, n in self.source.rows.items()
            if self.target.rows.get(name) != n
        ]
        for label in ("journal", "kpi", "kpi_all"):
            a, b = getattr(self.source, label), getattr(self.target, label)
            if a != b:
                out.append(f"{label}: {a} -> {b}")
        return out

    def to_json(self) -> dict[str, Any]:
        def side(s: Side) -> dict[str, Any]:
            return {
                "rows": s.rows,
                "journal": dict(zip(("count", "tv_cents", "ev_micros"), s.journal)),
                "kpi": dict(zip(("count", "tv_cents", "ev_micros"), s.kpi)),
                "kpi_all": dict(zip(("count", "tv_cents", "ev_micros"), s.kpi_all)),
            }

        return {"agrees": self.agrees, "source": side(self.source), "target": side(self.target)}


def measure(conn: Connection) -> Side:
    """Row counts, journal sums and KPIs of the database `conn` reads (in its transaction)."""
    rows = {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        for t in SQLModel.metadata.sorted_tables
    }
    journal = conn.execute(
        select(
            func.coalesce(func.sum(col(ChangeEvent.d_count)), 0),
            func.coalesce(func.sum(col(ChangeEvent.d_tv_cents)), 0),
            func.coalesce(func.sum(col(ChangeEvent.d_ev_micros)), 0),
        )
    ).one()
    k = kpis(conn, Scope(period=current_period(conn)))
    every = kpis(conn, ALL)
    return Side(
        rows,
        (int(journal[0]), int(journal[1]), int(journal[2])),
        (k.count, k.tv_cents, k.ev_micros),
        (every.count, every.tv_cents, every.ev_micros),
    )


@contextmanager
def on_target(url: str) -> Iterator[None]:
    """What the database `url`, the copy's target, raises in the block, as one line naming it: the
    command line names --db's database in such a line, and so once told of a damaged or locked
    target that the source was damaged and should be restored from a backup."""
    from sqlalchemy.engine import make_url

    from .locations import db_label, sqlite_path

    try:
        yield
    except (DBAPIError, sqlite3.Error) as exc:
        path = sqlite_path(url)
        name = path if path is not None else db_label(url)
        role = None if path is not None else make_url(url).username
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
        said = database_failure(exc, name, role) or f"the database {name} failed: {reason}"
        done = "" if "nothing was" in said else "; nothing was written"
        raise DomainError(f"migrate: the target: {said}{done}", field="to") from None


def migrate(source: Engine, target: Engine, *, force: bool = False) -> MigrateReport:
    """Copy `source` into `target` (a new database, or any with `force`) in one transaction, and
    prove it (see the module docstring). Raises DomainError, with nothing written, when the target
    is not empty or the copy does not agree."""
    if source.url == target.url:
        raise DomainError("migrate: --to names the database being copied; give another one", field="to")
    data = dump(source)
    if data.get("schema") != HEAD:  # pragma: no cover - open_db upgraded it
        raise DomainError(f"migrate: the source is at schema {data.get('schema')!r}, not {HEAD!r}", field="db")
    with source.connect() as conn:
        before = measure(conn)
    with on_target(target.url.render_as_string(hide_password=False)), writer(target).begin() as conn:
        busy = {name: n for name, n in user_rows(conn).items() if n}
        if busy and not force:
            held = ", ".join(f"{n} {name.replace('_', ' ')} rows" for name, n in busy.items())
            raise DomainError(
                f"migrate: the target is not empty ({held}); give a new database, or add --force to replace "
                "everything in it",
                field="to",
            )
        restore_on(conn, data["tables"], force=True)
        report = MigrateReport(before, measure(conn))
        if not report.agrees:
            raise DomainError(
                "migrate: the copy does not agree with the source (" + "; ".join(report.differences()) + "); "
                "nothing was written",
                field="to",
            )
    return report
