"""A rep's journal on a server is the change she made, now (PostgreSQL only; a SQLite file has no
users).

The month starts and the KPI history rebuilt from the journal (models/replay.py, models/history.py)
take its rows as what happened: a prospect's deltas before a moment, its stage changes (stage,
value) and the `before` of its edits. Row-level security keeps a rep's rows to her own prospects
and her own name (models/grants.py), and she may not change them once written (only their marks,
`grants.JOURNAL_MARKS`); but from psql she could still add a row of any content dated any moment,
a move into last month before its month start, and the owner's figures rebuilt from it would tell
her story. So a trigger (`TRIGGER`, on `change_event` and `stage_change`, for each row a session whose login
role may not write the KPI history inserts, as history_guard's: a rep) refuses a row at commit
(deferred: evpipe's ORM may write an entry before the prospect's row in one flush) unless it is what
evpipe itself writes for a change:

- its moment is the team's clock now, within `SLACK`: the clock history_guard reads (the latest
  live reading's moment plus the time the server has seen pass since, `history_guard.team_now_sql`),
  or, where no owner's or manager's evpipe has recorded a live reading since, the moment the
  owner's evpipe installed this trigger (`members grants`) told it, likewise. The slack takes in a
  computer's clock a little off the owner's, and a change to or from summer time since that
  moment (an hour); a row can be dated no further from when it was written;
- the prospect it is about was written by the same transaction: a second trigger (`NOTE`, on
  prospect, for the same sessions) keeps each prospect as it was before the transaction first
  wrote it, in a temporary table of the session's owned by the role that owns the tables (no rep
  writes it; one of hers of that name in the way refuses her every entry), emptied at commit.
  evpipe's every change of a prospect writes it (a version, a touch). Two entries change nothing of
  their prospect: the skip of an undo and the undo of a contact point that was not its last touch;
  they are taken without it when they undo an entry of hers about the same prospect (marked undone
  by them) and carry nothing the history reads (no deltas, no `before` or `after`);
- what the transaction's first entry of a prospect says it did to the figures (its deltas) is what
  the prospect now adds less what it added before (models/store_base.py `part`, in the ladder's
  SQL: nothing once deleted); any further entry of it in the transaction says nothing;
- an edit names the month before and after as it was and is (the `before` the history reads), and
  never an owner (a rep hands no prospect);
- a rep writes only the actions evpipe writes for her (`ACTIONS`); an add or a move is to the stage
  the prospect is on now, and its stage change (`stage_change`) too, from the stage it was on, at
  the value it has now, and belongs to an add or a move of the same prospect written in the same
  transaction.

The mark of an undo on an entry (`change_event.undone_by_id`, which the history reads: an undone move
and its undo are no stay, models/journal.py `undone_move`) is hers to write once, and only as the
undo of that entry written in the same transaction (`MARKS`, at commit too). The other mark, a stage
change's stay (`stay_seconds`), is not checked.

A rep's transaction that writes her prospect and journals nothing is not refused (the history's
readings of today take her changes from the prospect rows themselves: history_guard); the journal
then misses it, as it misses a change made by something other than evpipe.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from . import clock, history_guard
from .ladder import count_sql, ev_sql, tv_sql
from .tables import ChangeEvent, Prospect, StageChange, table_of

#: the trigger on the journal's tables, and its function
TRIGGER = "evpipe_keep_journal"
#: how far a rep's entry may be dated from the team's clock now (see the module's docstring)
SLACK = timedelta(minutes=90)
#: what a rep's entry may be: what evpipe writes for a change of one of her prospects
ACTIONS = ("create", "edit", "delete", "move", "activity", "follow_up", "undo", "skip")
JOURNAL = (table_of(ChangeEvent).name, table_of(StageChange).name)
_PROSPECT = table_of(Prospect).name
#: the words every refusal starts with (models/errors.py says them as the server's refusal)
REFUSAL = "evpipe journal:"


#: the trigger that keeps a rep's marks of undo (`change_event.undone_by_id`) to the undo that made them
MARKS = "evpipe_keep_journal_marks"
#: the trigger on prospect that notes a prospect as it was before a rep's transaction first wrote it,
#: and its function; and where: a temporary table of the session's, owned by the role that owns
#: the tables (so no rep writes it), emptied at each commit
NOTE = "evpipe_note_prospect"
_BEFORE = "pg_temp.evpipe_before"
_TABLE_OF_THE_OWNER = f"""
  IF to_regclass('{_BEFORE}') IS NULL THEN
    CREATE TEMPORARY TABLE evpipe_before (id bigint PRIMARY KEY, existed boolean NOT NULL, stage_id bigint,
      value_cents bigint, expected_month text, deleted boolean, used boolean NOT NULL DEFAULT false)
      ON COMMIT DELETE ROWS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
      WHERE c.oid = to_regclass('{_BEFORE}') AND r.rolname = current_user) THEN
    RAISE EXCEPTION '{{refusal}} a temporary table evpipe_before of this session''s is in the way'
      USING ERRCODE = 'insufficient_privilege';
  END IF;"""


def _note_sql() -> str:
    return f"""
CREATE OR REPLACE FUNCTION {NOTE}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
{_TABLE_OF_THE_OWNER.replace("{refusal}", REFUSAL)}
  IF TG_OP = 'INSERT' THEN
    INSERT INTO {_BEFORE} (id, existed) VALUES (NEW.id, false) ON CONFLICT (id) DO NOTHING;
  ELSE
    INSERT INTO {_BEFORE} (id, existed, stage_id, value_cents, expected_month, deleted)
      VALUES (OLD.id, true, OLD.stage_id, OLD.value_cents, OLD.expected_month, OLD.deleted_at IS NOT NULL)
      ON CONFLICT (id) DO NOTHING;
  END IF;
  RETURN NULL;
END
$fn$"""


def _part_sql(value: str, stage: str, gone: str) -> str:
    """(count, TV, EV) one prospect adds: of value `value` on the stage of id `stage`, none when
    `gone` (deleted, or not there), as models/store_base.py `part` (the ladder's rule)."""
    figures = (count_sql("s.kind"), tv_sql(value, "s.kind"), ev_sql(value, "s.kind", "s.probability_bp"))
    return ", ".join(
        f"coalesce((SELECT ({sql})::bigint FROM {{schema}}.stage s WHERE s.id = {stage} AND NOT {gone}), 0)"
        for sql in figures
    )


def _guard_sql(told_at: datetime, told_server: datetime) -> str:
    events, changes = (f"{{schema}}.{t}" for t in JOURNAL)
    prospects = f"{{schema}}.{_PROSPECT}"
    actions = ", ".join(f"'{a}'" for a in ACTIONS)
    mine = "{x}.xmin::text::bigint = txid_current() % 4294967296"  # written by this transaction
    return f"""
CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  server_now timestamp := now() AT TIME ZONE 'UTC';
  latest_at timestamp := '{told_at.isoformat(sep=" ")}';
  latest_server timestamp := '{told_server.isoformat(sep=" ")}';
  read_at timestamp;
  read_server timestamp;
  team_now timestamp;
  moment timestamp;
  ours boolean;
  p record;
  b record;
  was bigint[];
  now_part bigint[];
BEGIN
  IF TG_OP = 'UPDATE' THEN  -- the mark of an undo (MARKS): the entry of hers this transaction wrote to undo it
    IF OLD.undone_by_id IS NOT NULL OR NOT EXISTS (SELECT 1 FROM {events} u WHERE u.id = NEW.undone_by_id
        AND u.undoes_id = NEW.id AND u.who = session_user AND {mine.format(x="u")}) THEN
      RAISE EXCEPTION '{REFUSAL} entry #% is marked undone only by the undo of it written in the same transaction',
        NEW.id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
  END IF;
  -- the team's clock: the latest live reading's, else the one members grants was given
  SELECT taken_at, server_at INTO read_at, read_server FROM {history_guard.SNAP_Q}
    WHERE scope = '{history_guard.ALL_SCOPE}' AND server_at IS NOT NULL ORDER BY taken_on DESC LIMIT 1;
  IF read_server > latest_server THEN
    latest_at := read_at;
    latest_server := read_server;
  END IF;
  team_now := {history_guard.team_now_sql("latest_at", "latest_server")};
  IF TG_TABLE_NAME = '{JOURNAL[0]}' THEN
    moment := NEW.at;
  ELSE
    moment := NEW.changed_at;
  END IF;
  IF moment IS NULL OR moment NOT BETWEEN team_now - interval '{int(SLACK.total_seconds())} seconds'
      AND team_now + interval '{int(SLACK.total_seconds())} seconds' THEN
    RAISE EXCEPTION '{REFUSAL} an entry of a rep''s is dated %, not now (%, by the server''s clock); '
      'check this computer''s clock', moment, date_trunc('second', team_now)
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT id, stage_id, value_cents, expected_month, deleted_at INTO p FROM {prospects} WHERE id = NEW.prospect_id;
  -- the prospect as it was before this transaction first wrote it (none: it did not write it)
{_TABLE_OF_THE_OWNER.replace("{refusal}", REFUSAL)}
  SELECT * INTO b FROM {_BEFORE} WHERE id = NEW.prospect_id;
  ours := p.id IS NOT NULL AND b.id IS NOT NULL;
  IF TG_TABLE_NAME = '{JOURNAL[0]}' THEN
    IF NEW.action NOT IN ({actions}) THEN
      RAISE EXCEPTION '{REFUSAL} a rep does not write entries of the action %', NEW.action
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT ours AND NOT (
        NEW.undoes_id IS NOT NULL AND NEW.action IN ('undo', 'skip')
        AND NEW.d_count = 0 AND NEW.d_tv_cents = 0 AND NEW.d_ev_micros = 0
        AND NOT (NEW.payload::jsonb ?| array['before', 'after'])
        AND EXISTS (SELECT 1 FROM {events} u WHERE u.id = NEW.undoes_id AND u.who = NEW.who
          AND u.prospect_id = NEW.prospect_id AND u.undone_by_id = NEW.id)) THEN
      RAISE EXCEPTION '{REFUSAL} an entry about prospect #% must come with the change of it, in the same '
        'transaction', NEW.prospect_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.action IN ('create', 'move') AND NEW.stage_id IS DISTINCT FROM p.stage_id THEN
      RAISE EXCEPTION '{REFUSAL} a move of prospect #% goes to the stage it is on', NEW.prospect_id
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- what it did to the figures: the prospect's now less what it was, for the transaction's first
    -- entry of it; nothing for any other (evpipe writes one)
    was := ARRAY[{_part_sql("b.value_cents", "b.stage_id", "(b.deleted OR NOT b.existed)")}];
    now_part := ARRAY[{_part_sql("p.value_cents", "p.stage_id", "(p.deleted_at IS NOT NULL)")}];
    IF b.id IS NULL OR b.used THEN
      was := now_part;
    END IF;
    IF ARRAY[NEW.d_count, NEW.d_tv_cents, NEW.d_ev_micros]::bigint[]
        IS DISTINCT FROM ARRAY[now_part[1] - was[1], now_part[2] - was[2], now_part[3] - was[3]] THEN
      RAISE EXCEPTION '{REFUSAL} an entry about prospect #% says it changed the figures by %, not by what '
        'its change did (%)', NEW.prospect_id, ARRAY[NEW.d_count, NEW.d_tv_cents, NEW.d_ev_micros],
        ARRAY[now_part[1] - was[1], now_part[2] - was[2], now_part[3] - was[3]]
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- what the history reads of an edit: the month and owner before it (a rep hands no prospect)
    IF NEW.payload::jsonb -> 'before' ? 'owner' OR NEW.payload::jsonb -> 'after' ? 'owner'
        OR (NEW.payload::jsonb -> 'before' ? 'expected_month' AND (b.id IS NULL OR b.used
          OR NEW.payload::jsonb -> 'before' -> 'expected_month' IS DISTINCT FROM
            coalesce(to_jsonb(b.expected_month), 'null'::jsonb)
          OR NEW.payload::jsonb -> 'after' -> 'expected_month' IS DISTINCT FROM
            coalesce(to_jsonb(p.expected_month), 'null'::jsonb))) THEN
      RAISE EXCEPTION '{REFUSAL} an edit of prospect #% names its month or owner before and after as they '
        'were not', NEW.prospect_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF b.id IS NOT NULL THEN
      UPDATE {_BEFORE} SET used = true WHERE id = b.id;
    END IF;
  ELSE
    IF NOT ours THEN
      RAISE EXCEPTION '{REFUSAL} a stage change of prospect #% must come with the change of it, in the same '
        'transaction', NEW.prospect_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.to_stage_id IS DISTINCT FROM p.stage_id OR NEW.value_cents IS DISTINCT FROM p.value_cents
        OR NEW.from_stage_id IS DISTINCT FROM (CASE WHEN b.existed THEN b.stage_id END)
        OR NOT EXISTS (SELECT 1 FROM {events} e WHERE e.id = NEW.event_id AND e.prospect_id = NEW.prospect_id
          AND e.action IN ('create', 'move') AND {mine.format(x="e")}) THEN
      RAISE EXCEPTION '{REFUSAL} a stage change of prospect #% is the one its move in the same transaction '
        'made: from the stage it was on to the one it is on, at its value', NEW.prospect_id USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  RETURN NULL;
END
$fn$"""


def install(conn: Connection) -> None:
    """Make (or remake) the trigger on both journal tables and its function, owned by the role that
    owns the tables and callable by no one else; the function keeps this evpipe's clock beside the
    server's, for a database with no live reading yet. `conn` is that role's or a superuser's
    (models/grants.py `check_can_apply`)."""
    prep = conn.dialect.identifier_preparer
    schema = str(prep.quote_identifier(str(conn.scalar(text("SELECT current_schema()")))))
    owner = str(
        conn.scalar(
            text("SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() AND tablename = :t"),
            {"t": _PROSPECT},
        )
    )
    server = conn.scalar(text("SELECT now() AT TIME ZONE 'UTC'"))
    conn.execute(text(_guard_sql(clock.now(), server).replace("{schema}", schema)))
    conn.execute(text(_note_sql()))
    for function in (TRIGGER, NOTE):
        conn.exec_driver_sql(f"ALTER FUNCTION {function}() OWNER TO {prep.quote_identifier(owner)}")
        conn.exec_driver_sql(f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {NOTE} ON {_PROSPECT}")
    conn.exec_driver_sql(
        f"CREATE TRIGGER {NOTE} AFTER INSERT OR UPDATE OR DELETE ON {_PROSPECT} FOR EACH ROW "
        f"WHEN (NOT {history_guard.writer_check(schema)}) EXECUTE FUNCTION {NOTE}()"
    )
    for table in JOURNAL:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {table}")
        conn.exec_driver_sql(
            f"CREATE CONSTRAINT TRIGGER {TRIGGER} AFTER INSERT ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
            f"WHEN (NOT {history_guard.writer_check(schema)}) EXECUTE FUNCTION {TRIGGER}()"
        )
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {MARKS} ON {JOURNAL[0]}")
    conn.exec_driver_sql(
        f"CREATE CONSTRAINT TRIGGER {MARKS} AFTER UPDATE OF undone_by_id ON {JOURNAL[0]} DEFERRABLE INITIALLY "
        f"DEFERRED FOR EACH ROW WHEN (NOT {history_guard.writer_check(schema)} AND "
        f"OLD.undone_by_id IS DISTINCT FROM NEW.undone_by_id) EXECUTE FUNCTION {TRIGGER}()"
    )


def installed(conn: Connection) -> bool:
    """Whether the trigger is on both journal tables, as `install` makes it: its check naming the
    history's table with its schema, its function with pg_catalog alone on its search path and run
    as the tables' owner."""
    return (
        all(_made(conn, table, TRIGGER) for table in JOURNAL)
        and _made(conn, JOURNAL[0], MARKS, TRIGGER)
        and _made(conn, _PROSPECT, NOTE)
    )


def _made(conn: Connection, table: str, trigger: str, function: str | None = None) -> bool:
    made = conn.execute(
        text(
            "SELECT pg_get_triggerdef(t.oid), f.proconfig, f.prosecdef FROM pg_trigger t "
            "JOIN pg_proc f ON f.oid = t.tgfoid WHERE t.tgname = :t AND t.tgrelid = to_regclass(:table) "
            "AND f.proname = :f AND t.tgenabled <> 'D'"
        ),
        {"t": trigger, "table": table, "f": function or trigger},
    ).first()
    return (
        made is not None
        and f".{history_guard.SNAP}'" in str(made[0])
        and history_guard.SEARCH_PATH in (made[1] or [])
        and bool(made[2])
    )


__all__ = ["ACTIONS", "JOURNAL", "MARKS", "NOTE", "REFUSAL", "SLACK", "TRIGGER", "install", "installed"]
