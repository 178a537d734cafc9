"""The KPI history on a server, out of reps' reach (PostgreSQL only; a SQLite file has no users).

The owner's trend, review and sighting in read the KPI history (`kpi_snapshot`, its months in
`kpi_snapshot_month`). If a rep could write those tables, one UPDATE from psql would rewrite the
team's history; and a rep who sees only their own prospects must not read the team's sums either.
So on a server (models/grants.py `apply`):

- owners and managers read and write the history as before: their own write keeps today's reading
  by its deltas (models/snapshot_deltas.py) and they record the day's first reading (a recount);
- a rep only reads it (everyone's, or only their own scope's while reps see only their own) and
  has no privilege to change it;
- today's reading still takes in a rep's change, in the same transaction: a trigger on `prospect`
  (`TRIGGER`), run with the privileges of the role that owns the tables (SECURITY DEFINER), adds the
  difference the row made. It reads the row as it was and as it is (OLD and NEW) and the stage's
  kind and probability itself, so what it adds is the change the rep really made: nothing a rep
  sends can change what it writes. It fires only for a session whose login role may not write the
  history (`WHEN`: a rep), so owners' and managers' writes cost nothing more.

Which day is today is not the rep's to say (her app could be told any moment, and psql says what she
likes): every live reading (a recount, or one kept by an owner's or a manager's change) keeps the
server's clock beside the app's moment (`kpi_snapshot.server_at`, `taken_at`), and the trigger takes
the moment now as the latest reading's plus the time the server has seen pass since. A rep's change
adds to that reading while that moment is still its day; the day's first reading is a recount by
someone who may write the history, as snapshot_deltas does for the others, so a reading that is
missing stays missing until then (and one rebuilt from the journal, with no server clock, is never
added to).
What one prospect adds is ladder's rule in SQL (`ladder.count_sql`, `tv_sql`, `ev_sql`); making the
month rows a snapshot shares its own (its `months_of`) is `snapshot_deltas.own_months`, written
again in PL/pgSQL (`_OWN_MONTHS`), and so is removing a day that proves not to match
(`snapshot_deltas.forget_day`, `_FORGET_DAY`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, text

from .dialect import LADDER_LOCK
from .kpi import ALL, NO_MONTH, Scope
from .ladder import WON, count_sql, ev_sql, tv_sql
from .tables import KpiSnapshot, KpiSnapshotMonth, table_of
from .values import MAX_VALUE_CENTS

#: the trigger on prospect, and its function
TRIGGER = "evpipe_keep_kpi"
_FIGURES = ("count", "tv_cents", "ev_micros", "won_count", "won_tv_cents", "won_ev_micros")
_SNAP = table_of(KpiSnapshot).name
_MONTHS = table_of(KpiSnapshotMonth).name
_OWNER_SCOPE = Scope(owner="").snapshot_key  # 'owner:' and the owner's name

#: The tables as the functions name them: with their schema, as everything the functions name. They
#: run as the role that owns the tables, with pg_catalog alone on their search path: were evpipe's
#: schema on it, an operator or function a member made there (where PostgreSQL before 15 lets
#: every role create, and a database upgraded since keeps it so) could be a closer match for one of
#: theirs than pg_catalog's, and would run with the owner's privileges.
_SNAP_Q = "{schema}." + _SNAP
_SEARCH_PATH = "search_path=pg_catalog, pg_temp"  # (as pg_proc.proconfig lists it)
_MONTHS_Q = "{schema}." + _MONTHS
#: (for the journal's guard, models/journal_guard.py, which hardens its function as this one)
SNAP, SNAP_Q, SEARCH_PATH, ALL_SCOPE = _SNAP, _SNAP_Q, _SEARCH_PATH, ALL.key


def team_now_sql(latest_at: str, latest_server: str) -> str:
    """The team's clock now, by the server's, as PL/pgSQL where `server_now` is the server's clock
    in UTC: a moment an owner's or a manager's evpipe gave (`latest_at`, a live reading's
    `taken_at`) plus the time the server has seen pass since it (`latest_server`, its `server_at`)."""
    return f"{latest_at} + (server_now - {latest_server})"


_OWN_MONTHS = f"""
CREATE OR REPLACE FUNCTION evpipe_own_months(sid bigint) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  shared bigint;
  heir bigint;
BEGIN
  SELECT months_of INTO shared FROM {_SNAP_Q} WHERE id = sid;
  SELECT min(id) INTO heir FROM {_SNAP_Q} WHERE months_of = sid;
  IF shared IS NOT NULL THEN
    INSERT INTO {_MONTHS_Q} (snapshot_id, month, {", ".join(_FIGURES)})
      SELECT sid, month, {", ".join(_FIGURES)} FROM {_MONTHS_Q} WHERE snapshot_id = shared;
    UPDATE {_SNAP_Q} SET months_of = NULL WHERE id = sid;
  END IF;
  IF heir IS NOT NULL THEN
    INSERT INTO {_MONTHS_Q} (snapshot_id, month, {", ".join(_FIGURES)})
      SELECT heir, month, {", ".join(_FIGURES)} FROM {_MONTHS_Q} WHERE snapshot_id = sid;
    UPDATE {_SNAP_Q} SET months_of = NULL WHERE id = heir;
    UPDATE {_SNAP_Q} SET months_of = heir WHERE months_of = sid;
  END IF;
END
$fn$"""

_FORGET_DAY = f"""
CREATE OR REPLACE FUNCTION evpipe_forget_day(day date) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  sid bigint;
  ids bigint[];
BEGIN
  SELECT array_agg(id) INTO ids FROM {_SNAP_Q}
    WHERE taken_on = day AND (scope = '{ALL.key}' OR scope LIKE '{_OWNER_SCOPE}%');
  IF ids IS NULL THEN
    RETURN;
  END IF;
  FOREACH sid IN ARRAY ids LOOP
    PERFORM {{schema}}.evpipe_own_months(sid);
  END LOOP;
  DELETE FROM {_MONTHS_Q} WHERE snapshot_id = ANY (ids);
  DELETE FROM {_SNAP_Q} WHERE id = ANY (ids);
END
$fn$"""


def _keep_sql() -> str:
    part = {
        "c": count_sql("s.kind"),
        "tv": tv_sql("p.value", "s.kind"),
        "ev": ev_sql("p.value", "s.kind", "s.probability_bp"),
    }
    figures = ", ".join(f"p.sign * ({sql})::bigint AS {name}" for name, sql in part.items())
    won = ", ".join(
        f"CASE WHEN s.kind = '{WON}' THEN p.sign * ({sql})::bigint ELSE 0 END AS w{name}" for name, sql in part.items()
    )
    sums = ", ".join(f"sum({n})::bigint AS {n}" for n in ("c", "tv", "ev", "wc", "wtv", "wev"))
    totals = ", ".join(f"sum(sum({n})) OVER (PARTITION BY scope)::bigint AS total_{n}" for n in ("c", "tv", "ev"))
    return f"""
CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  server_now timestamp := now() AT TIME ZONE 'UTC';
  at timestamp;
  day date;
  all_id bigint;
  latest_at timestamp;
  latest_server timestamp;
  sid bigint;
  cur text;
  left_count bigint;
  r record;
BEGIN
  -- a value evpipe never takes (models/values.py): one huge value would take the team's sums near
  -- their 64-bit limit, where the owner's next change is refused, and whether a value overflows them
  -- would tell a rep who sees only her own what they are
  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.value_cents IS DISTINCT FROM OLD.value_cents)
      AND NOT NEW.value_cents BETWEEN 0 AND {MAX_VALUE_CENTS} THEN
    RAISE EXCEPTION 'value_cents % is not a value evpipe takes (0 to {MAX_VALUE_CENTS})', NEW.value_cents
      USING ERRCODE = 'check_violation';
  END IF;
  -- the ladder's lock, shared, as evpipe's own writes take it (a statement from psql does not): a
  -- recount holds it exclusively, so it never reads before this change and writes after it
  PERFORM pg_advisory_xact_lock_shared({LADDER_LOCK});
  -- everyone's reading first: the row lock holds it for this change until it commits
  SELECT id, taken_on, taken_at, server_at INTO all_id, day, latest_at, latest_server
    FROM {_SNAP_Q} WHERE scope = '{ALL.key}' ORDER BY taken_on DESC LIMIT 1 FOR UPDATE;
  IF latest_server IS NULL THEN
    RETURN NULL;  -- no live reading (none, or the latest rebuilt from the journal): a recount is next
  END IF;
  at := {team_now_sql("latest_at", "latest_server")};  -- the team's clock now, by the server's
  IF at::date <> day THEN
    RETURN NULL;  -- a new day: its first reading is a recount
  END IF;
  FOR r IN
    WITH p(sign, owner, month, stage_id, value) AS (
      SELECT -1, OLD.owner, OLD.expected_month, OLD.stage_id, OLD.value_cents
        WHERE TG_OP <> 'INSERT' AND OLD.deleted_at IS NULL
      UNION ALL
      SELECT 1, NEW.owner, NEW.expected_month, NEW.stage_id, NEW.value_cents
        WHERE TG_OP <> 'DELETE' AND NEW.deleted_at IS NULL
    ), f AS (
      SELECT p.owner, coalesce(nullif(p.month, ''), '{NO_MONTH}') AS month, {figures}, {won}
      FROM p JOIN {{schema}}.stage s ON s.id = p.stage_id
    ), scoped AS (
      SELECT '{ALL.key}' AS scope, month, c, tv, ev, wc, wtv, wev FROM f
      UNION ALL
      SELECT '{_OWNER_SCOPE}' || owner, month, c, tv, ev, wc, wtv, wev FROM f
    )
    SELECT scope, month, {sums}, {totals}
    FROM scoped GROUP BY scope, month
    HAVING sum(c) <> 0 OR sum(tv) <> 0 OR sum(ev) <> 0 OR sum(wc) <> 0 OR sum(wtv) <> 0 OR sum(wev) <> 0
    ORDER BY scope <> '{ALL.key}', scope, month
  LOOP
    IF cur IS DISTINCT FROM r.scope THEN
      cur := r.scope;
      IF cur = '{ALL.key}' THEN
        sid := all_id;
      ELSE
        SELECT id INTO sid FROM {_SNAP_Q} WHERE scope = cur AND taken_on = day;
      END IF;
      IF sid IS NULL THEN  -- an owner with nothing counted that day until now
        IF r.total_c < 0 THEN
          PERFORM {{schema}}.evpipe_forget_day(day);
          RETURN NULL;
        END IF;
        INSERT INTO {_SNAP_Q} (scope, taken_on, taken_at, server_at, count, tv_cents, ev_micros)
          VALUES (cur, day, at, server_now, 0, 0, 0) RETURNING id INTO sid;
      ELSE
        PERFORM {{schema}}.evpipe_own_months(sid);
      END IF;
      UPDATE {_SNAP_Q} SET taken_at = at, server_at = server_now, count = count + r.total_c, tv_cents = tv_cents + r.total_tv,
        ev_micros = ev_micros + r.total_ev WHERE id = sid;
    END IF;
    UPDATE {_MONTHS_Q} SET count = count + r.c, tv_cents = tv_cents + r.tv, ev_micros = ev_micros + r.ev,
      won_count = won_count + r.wc, won_tv_cents = won_tv_cents + r.wtv, won_ev_micros = won_ev_micros + r.wev
      WHERE snapshot_id = sid AND month = r.month;
    IF NOT FOUND THEN
      IF r.c <= 0 THEN  -- taking away from a month the reading does not have: recount it
        PERFORM {{schema}}.evpipe_forget_day(day);
        RETURN NULL;
      END IF;
      INSERT INTO {_MONTHS_Q} (snapshot_id, month, {", ".join(_FIGURES)})
        VALUES (sid, r.month, r.c, r.tv, r.ev, r.wc, r.wtv, r.wev);
    ELSIF r.c < 0 THEN
      SELECT count INTO left_count FROM {_MONTHS_Q} WHERE snapshot_id = sid AND month = r.month;
      IF left_count < 0 THEN
        PERFORM {{schema}}.evpipe_forget_day(day);
        RETURN NULL;
      ELSIF left_count = 0 THEN  -- no prospect left that month: a recount would not list it
        DELETE FROM {_MONTHS_Q} WHERE snapshot_id = sid AND month = r.month;
      END IF;
    END IF;
  END LOOP;
  RETURN NULL;
END
$fn$"""


def writer_check(schema: str | None = None) -> str:
    """Whether the session's login role may write the KPI history itself (an owner, a manager, the
    role that owns the tables): then the trigger stays out of its way. The trigger's check names the
    table with its schema (`schema`, quoted): a name alone is looked up in the session's search path
    when the check runs, where a rep's own temporary table `kpi_snapshot` comes first, and the
    trigger would then take her for a writer and add none of her changes."""
    table = _SNAP if schema is None else f"{schema}.{_SNAP}".replace("'", "''")
    return f"has_table_privilege(session_user, '{table}', 'UPDATE')"


def install(conn: Connection) -> None:
    """Make (or remake) the trigger and its functions, owned by the role that owns the tables,
    callable by no one else (a trigger function runs only as a trigger). `conn` is that role's or a
    superuser's (models/grants.py `check_can_apply`)."""
    prep = conn.dialect.identifier_preparer
    schema = str(prep.quote_identifier(str(conn.scalar(text("SELECT current_schema()")))))
    owner = str(
        conn.scalar(
            text("SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'prospect'")
        )
    )
    for sql in (_OWN_MONTHS, _FORGET_DAY, _keep_sql()):
        conn.execute(text(sql.replace("{schema}", schema)))
    for signature in ("evpipe_own_months(bigint)", "evpipe_forget_day(date)", f"{TRIGGER}()"):
        conn.exec_driver_sql(f"ALTER FUNCTION {signature} OWNER TO {prep.quote_identifier(owner)}")
        conn.exec_driver_sql(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {TRIGGER} ON prospect")
    conn.exec_driver_sql(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR DELETE OR UPDATE OF owner, expected_month, stage_id, "
        f"value_cents, deleted_at ON prospect FOR EACH ROW WHEN (NOT {writer_check(schema)}) "
        f"EXECUTE FUNCTION {TRIGGER}()"
    )
    # today's live readings recorded before the server's clock was kept beside them (an upgrade
    # from before migration 0012): the server's clock now, so that a rep's change today still
    # reaches them (the trigger leaves a reading with none alone, as one rebuilt from the journal)
    conn.execute(
        text(
            f"UPDATE {_SNAP} SET server_at = now() AT TIME ZONE 'UTC' "
            "WHERE server_at IS NULL AND taken_on = current_date AND taken_at::date = current_date"
        )
    )


def installed(conn: Connection) -> bool:
    """Whether the trigger is there, as `install` makes it now: its check names the table with its
    schema, and its function has pg_catalog alone on its search path (one made by an older evpipe
    had neither)."""
    made = conn.execute(
        text(
            "SELECT pg_get_triggerdef(t.oid), f.proconfig FROM pg_trigger t JOIN pg_proc f ON f.oid = t.tgfoid "
            "WHERE t.tgname = :t AND t.tgrelid = to_regclass('prospect')"
        ),
        {"t": TRIGGER},
    ).first()
    return made is not None and f".{_SNAP}'" in str(made[0]) and _SEARCH_PATH in (made[1] or [])


def server_clock(conn: Connection) -> Any:
    """What a live reading writes as `kpi_snapshot.server_at`: the server's clock in UTC on
    PostgreSQL (an SQL expression), None on SQLite (no trigger reads it there)."""
    if conn.dialect.name != "postgresql":
        return None
    return func.timezone("UTC", func.now())


def writes_history(conn: Connection) -> bool:
    """Whether this connection may write the KPI history (always on SQLite)."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.scalar(text(f"SELECT {writer_check()}")))


__all__ = ["TRIGGER", "install", "installed", "server_clock", "team_now_sql", "writer_check", "writes_history"]
