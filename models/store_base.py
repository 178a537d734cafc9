"""What every part of the store shares: sessions, finding stages and prospects, the reads.

`Store` (models/store.py) is this plus its writes: prospect writes (store_prospects.py), ladder
writes (store_ladder.py) and undo (store_undo.py). Every write goes through the journal writer
(models/journal.py) and the ladder's rules (models/ladder.py).
"""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, func, select
from sqlmodel import Session, col

from . import snapshot_deltas
from .db import writer
from .dialect import lock_ladder
from .errors import Conflict, DomainError, NotFound
from .journal import Delta
from .ladder import kpi_part, open_rungs
from .names import SHOWN, fold, like_prefix, resolve_prospect
from .rawdb import LARGEST_INTEGER
from .records import ActivityInfo, ProspectInfo, StageChangeInfo, StageInfo
from .roles import acting_user, require, role_of
from .tables import Activity, Prospect, Stage, StageChange, id_of

StageRef = str | int | StageInfo


def _acting(engine: Engine) -> tuple[str, str]:
    with engine.connect() as conn:
        acting = acting_user(conn)
    return acting.name, acting.note


def part(value_cents: int, stage: Stage | StageInfo) -> Delta:
    """(count, TV cents, EV micros) a prospect of this value adds on this stage (models.ladder)."""
    return kpi_part(value_cents, stage.kind, stage.probability_bp)


def stage_totals(db: Session | Connection, stage_id: int | None) -> tuple[int, int]:
    """(live prospects on the stage, their value in cents): what a change of the stage's
    probability moves (`evpipe stages`, an import adopting a file's ladder, undo)."""
    row = db.execute(
        select(func.count(), func.coalesce(func.sum(Prospect.value_cents), 0)).where(
            col(Prospect.stage_id) == stage_id, col(Prospect.deleted_at).is_(None)
        )
    ).one()
    return int(row[0]), int(row[1])


class StoreBase:
    """All reads and writes of prospects and the ladder, for one user."""

    def __init__(self, engine: Engine, who: str | None = None) -> None:
        self.engine = engine
        #: Who this store acts as: `who` when the caller names them (the app, tests), else the
        #: login name, or EVPIPE_USER where models/roles.py honours it; `note` says when it did not.
        self.who, self.note = (who, "") if who else _acting(engine)
        #: The journal ids this same session wrote (the app's saver keeps them, tui/saving.py): a
        #: prospect moved on only by these since the caller read it was moved by the caller's own
        #: changes, saved one after another (`>` `u` `>` in one burst), not by someone else.
        self.own_events: Container[int] = frozenset()

    # ------------------------------------------------------------ sessions

    def _read(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _write(self, *, ladder: bool = False) -> Session:
        """A session for one write transaction, which locks what it changes. On PostgreSQL (SQLite's
        writer holds the whole database from BEGIN IMMEDIATE instead, and ignores FOR UPDATE): the
        transaction first takes the ladder's lock (models.dialect.lock_ladder), shared by prospect
        writes and exclusively by `ladder` writes (a stage's probability or place, undo), so an EV
        sum never mixes two probabilities of one stage. (An advisory lock, not the stages' rows: a
        row lock needs the UPDATE privilege, which a rep's role has not on a server, models/grants.py.)
        The prospects it reads to change are read FOR UPDATE (`_locked`), so a version check
        reads the committed row and two saves of one prospect take turns. A lock wait ends at the
        lock timeout (models/db.py) with a clear message. What the write changes is added to
        today's KPI snapshot as it commits (models/snapshot_deltas.py)."""
        session = Session(writer(self.engine), expire_on_commit=False, info={"lock": True})
        snapshot_deltas.watch(session)

        @event.listens_for(session, "after_begin")
        def _lock_ladder(_session, _transaction, connection) -> None:
            if connection.dialect.name != "sqlite":
                lock_ladder(connection, exclusive=ladder)

        return session

    @staticmethod
    def _locked(s: Session, q: Any) -> Any:
        """A read of prospects `q` as a write session makes it: FOR UPDATE, re-reading rows already
        loaded (see `_write`). Read sessions read as they are."""
        if not s.info.get("lock"):
            return q
        return q.with_for_update().execution_options(populate_existing=True)

    # ------------------------------------------------------------ ladder reads

    def ladder(self, *, include_archived: bool = False) -> list[StageInfo]:
        with self._read() as s:
            q = select(Stage).order_by(col(Stage.position), col(Stage.id))
            if not include_archived:
                q = q.where(col(Stage.archived) == False)  # noqa: E712
            return [StageInfo.of(x) for x in s.scalars(q)]

    def stage(self, ref: StageRef) -> StageInfo:
        with self._read() as s:
            return StageInfo.of(self._stage(s, ref))

    def _stages(self, s: Session) -> list[Stage]:
        q = select(Stage).where(col(Stage.archived) == False).order_by(col(Stage.position), col(Stage.id))  # noqa: E712
        return list(s.scalars(q))

    def _stage(self, s: Session, ref: StageRef | Stage) -> Stage:
        key = ref.id if isinstance(ref, (StageInfo, Stage)) else ref
        if isinstance(key, int):
            found = s.get(Stage, key)
            if found is None or found.archived:
                raise NotFound(f"stage: there is no stage number {key}", field="stage")
            return found
        name = str(key).strip()
        stages = self._stages(s)
        for st in stages:
            if st.name.casefold() == name.casefold():
                return st
        names = ", ".join(st.name for st in stages)
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise NotFound(f"stage: {shown!r} is not on the ladder; the stages are {names}", field="stage")

    def _open_stages(self, s: Session) -> list[Stage]:
        return open_rungs(self._stages(s))

    def _first_stage(self, s: Session) -> Stage:
        opens = self._open_stages(s)
        if not opens:
            raise DomainError("stage: the ladder has no open stage", field="stage")
        return opens[0]

    def _kind_stage(self, s: Session, kind: str) -> Stage:
        for st in self._stages(s):
            if st.kind == kind:
                return st
        raise DomainError(f"stage: the ladder has no {kind} stage", field="stage")

    # ------------------------------------------------------------ prospect reads

    def get(self, ref: int | str, *, include_deleted: bool = False) -> ProspectInfo:
        with self._read() as s:
            p = self._prospect(s, ref, include_deleted=include_deleted)
            return ProspectInfo.of(p, s.get_one(Stage, p.stage_id))

    def _prospect(self, s: Session, ref: int | str, *, include_deleted: bool = False) -> Prospect:
        text = str(ref).strip()
        only = self._sees_only(s)
        # (decimal digits, which int() reads, any script's: isdigit() lets through ¹ and ①)
        if isinstance(ref, int) or text.isdecimal() or (text.startswith("#") and text[1:].isdecimal()):
            pid = int(text.lstrip("#"))
            p = self._by_id(s, pid) if 0 <= pid <= LARGEST_INTEGER else None  # (beyond: no database integer)
            if p is not None and only is not None and p.owner != only:
                p = None  # hidden from this rep: as if there were none
            if not isinstance(ref, int) and not text.startswith("#"):
                # A name made of digits wins over an id when it exists.
                named = [n for n in self._by_name(s, text, only) if fold(n.name) == fold(text)]
                if len(named) == 1:
                    return self._by_id(s, id_of(named[0])) or named[0]
            if p is None or (p.deleted_at is not None and not include_deleted):
                raise NotFound(f"prospect: there is no prospect #{pid}", field="prospect")
            return p
        chosen = resolve_prospect(text, self._by_name(s, text, only), lambda p: p.name, id_of)
        return (self._by_id(s, id_of(chosen)) or chosen) if s.info.get("lock") else chosen

    def _sees_only(self, s: Session) -> str | None:
        """The one owner whose prospects this user may see (a rep, when the owner chose that reps
        see only their own: models/visibility.py), or None. Another's prospect is then not named
        nor found, by id or by name, as if it were not there."""
        from .visibility import reps_see_setting, sees_only

        return sees_only(self.who, role_of(s, self.who), reps_see_setting(s.connection()))

    def _by_id(self, s: Session, pid: int) -> Prospect | None:
        """Prospect `pid`, locked in a write session (`_locked`). A row the server does not let this
        role change is left out of a locked read (row-level security, models/grants.py): it is read
        as it is then, so that the role check names it instead of a "no such prospect"."""
        q = select(Prospect).where(col(Prospect.id) == pid)
        p = s.scalars(self._locked(s, q)).first()
        if p is None and s.info.get("lock"):
            p = s.scalars(q).first()
        return p

    def _by_name(self, s: Session, name: str, only: str | None = None) -> list[Prospect]:
        """Live prospects whose name is `name` or starts with it, ignoring case (SQL's lower() knows
        only ASCII; models.names compares again with full case folding): the exact ones first; only
        `only`'s when given. Read as they are, in a write session too: `_prospect` locks the one it
        finds."""
        low = func.lower(Prospect.name)
        q = (
            select(Prospect)
            .where(low.like(func.lower(like_prefix(name)), escape="\\"), col(Prospect.deleted_at).is_(None))
            .order_by(low != name.lower(), col(Prospect.id))
        )
        if only is not None:
            q = q.where(col(Prospect.owner) == only)
        return list(s.scalars(q.limit(SHOWN + 1)))

    def activities(self, prospect_id: int) -> list[ActivityInfo]:
        with self._read() as s:
            q = (
                select(Activity)
                .where(col(Activity.prospect_id) == prospect_id, col(Activity.voided_at).is_(None))
                .order_by(col(Activity.occurred_at).desc(), col(Activity.id).desc())
            )
            return [
                ActivityInfo(id_of(a), a.prospect_id, a.occurred_at, a.kind, a.text, a.who, a.timed)
                for a in s.scalars(q)
            ]

    def history(self, prospect_id: int) -> list[StageChangeInfo]:
        with self._read() as s:
            names = {st.id: st.name for st in s.scalars(select(Stage))}
            q = (
                select(StageChange)
                .where(col(StageChange.prospect_id) == prospect_id)
                .order_by(col(StageChange.changed_at), col(StageChange.id))
            )
            return [
                StageChangeInfo(
                    id_of(c),
                    c.prospect_id,
                    c.changed_at,
                    c.who,
                    names.get(c.from_stage_id) if c.from_stage_id else None,
                    names[c.to_stage_id],
                    c.value_cents,
                    c.from_probability_bp,
                    c.to_probability_bp,
                    c.reason,
                )
                for c in s.scalars(q)
            ]

    def owners(self) -> list[str]:
        with self._read() as s:
            q = (
                select(col(Prospect.owner))
                .where(col(Prospect.deleted_at).is_(None))
                .distinct()
                .order_by(col(Prospect.owner))
            )
            return [o for o in s.scalars(q)]

    def refusals(self, actions: tuple[str, ...]) -> dict[str, str]:
        """Why this user may not take each of `actions` (models/roles.py OWNER_ONLY), for those
        refused: read with a screen, so that its keys say it before asking anything."""
        found: dict[str, str] = {}
        with self._read() as s:
            for action in actions:
                try:
                    require(s, self.who, action)
                except DomainError as exc:
                    found[action] = str(exc)
        return found

    # ------------------------------------------------------------ for writes

    def _may(self, s: Session, action: str, p: Prospect | None = None, *, owner: str | None = None) -> None:
        """Refuse a change this user's role does not allow (models/roles.py), before anything is
        written: `p` the prospect changed, `owner` the owner a prospect is given."""
        if p is not None:
            require(s, self.who, action, owner=p.owner, name=p.name)
        else:
            require(s, self.who, action, owner=owner)

    @staticmethod
    def _bump(s: Session, p: Prospect, expected_version: int | None, at: datetime) -> None:
        """Optimistic concurrency: the row must still be the version the caller read."""
        if expected_version is not None and p.version != expected_version:
            raise Conflict(
                f"{p.name}: changed by someone else since you opened it (now version {p.version}); "
                "reload and try again",
                field="version",
            )
        p.version += 1
        p.updated_at = at
