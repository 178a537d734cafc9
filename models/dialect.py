"""Every SQL expression that differs between SQLite and PostgreSQL, one function per need.

Each need is an SQLAlchemy expression (a `FunctionElement` compiled per dialect), so the queries
of models/ are written once and run on both databases with the same figures:

| need | SQLite (text in models/rawdb.py) | PostgreSQL |
|---|---|---|
| `day_of(ts)`: 'YYYY-MM-DD' of a date or timestamp | substr(ts, 1, 10) | to_char(ts, 'YYYY-MM-DD') |
| `month_of(day)`: 'YYYY-MM' | strftime('%Y-%m', day) | to_char(day, 'YYYY-MM') |
| `epoch_of(ts)`: whole seconds since 1970, read as UTC | strftime('%s', ts) | floor(extract(epoch from ts)) |
| `days_between(day, ts)`: whole days from the day of ts to day | julianday() difference | date - date |
| `json_has(doc, keys)`: the key path is in the JSON text (even as null) | json_type(...) IS NOT NULL | (doc::jsonb #> path) IS NOT NULL |
| `json_text(doc, keys)`: the value there as text (NULL for JSON null) | json_extract | doc::jsonb #>> path |
| `no_index(expr)`: keep the planner from an index on expr | +expr | expr |
| `text_list(expr)`: an aggregate, the group's values but NULL as one comma-separated text | group_concat | string_agg(CAST(... AS TEXT), ',') |
| `before_moment(ts, seconds)`: ts before the moment `seconds` after 1970 (UTC) | ts < its text | ts < TIMESTAMP |

The app's first paint reads SQLite with the standard library only, so the SQLite text of each
need is built by models/rawdb.py (marked `# SQLite-only:`); its functions take a dialect name and
come here for any other database. `render` gives a need as SQL text for the text queries of
models/ (`render(day_of(literal_column("at")), "postgresql")`). `upsert` and `reset_sequences`
are the writes that differ: an insert that updates on a unique-key conflict, and sequences set past
rows written with explicit ids (import, restore, migrate).
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, String, Table, literal_column, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from . import rawdb


class _Need(FunctionElement[Any]):
    inherit_cache = True


class day_of(_Need):
    """'YYYY-MM-DD' of a date or timestamp column."""

    type = String()
    name = "day_of"
    inherit_cache = True


class month_of(_Need):
    """'YYYY-MM' of a date or timestamp column."""

    type = String()
    name = "month_of"
    inherit_cache = True


class epoch_of(_Need):
    """A timestamp as whole seconds since 1970 (read as UTC)."""

    type = BigInteger()
    name = "epoch_of"
    inherit_cache = True


class no_index(_Need):
    """The expression as it is, kept from an index where the database would otherwise use one."""

    type = Integer()
    name = "no_index"
    inherit_cache = True


class days_between(_Need):
    """Whole days from the day of a timestamp (second argument) to a date (first, a literal)."""

    type = Integer()
    name = "days_between"
    inherit_cache = True

    def __init__(self, day: date, timestamp: Any) -> None:
        super().__init__(literal_column(f"'{day.isoformat()}'"), timestamp)


class before_moment(_Need):
    """A timestamp (first argument) before the moment whole `seconds` after 1970 (UTC), as
    `epoch_of(ts) < seconds` is, with the stored value compared as it is."""

    type = Boolean()
    name = "before_moment"
    inherit_cache = True

    def __init__(self, timestamp: Any, seconds: int) -> None:
        super().__init__(timestamp, literal_column(str(int(seconds))))


class text_list(_Need):
    """An aggregate: the group's values (but NULL) as one text, a comma between each two."""

    type = String()
    name = "text_list"
    inherit_cache = True


class json_has(_Need):
    """True when the key path is in a JSON text column (with any value, null included)."""

    type = Boolean()
    name = "json_has"
    inherit_cache = False  # the key path is not in the cache key; used as text (render)

    def __init__(self, document: Any, keys: tuple[str, ...]) -> None:
        super().__init__(document)
        self.keys = keys


class json_text(_Need):
    """The value at the key path of a JSON text column, as text; NULL when absent or null."""

    type = String()
    name = "json_text"
    inherit_cache = False  # the key path is not in the cache key; used as text (render)

    def __init__(self, document: Any, keys: tuple[str, ...]) -> None:
        super().__init__(document)
        self.keys = keys


def _args(element: _Need, compiler: Any, **kw: Any) -> list[str]:
    return [compiler.process(c, **kw) for c in element.clauses]


def _pg_path(keys: tuple[str, ...]) -> str:
    for k in keys:  # trusted names from models/, never user text; checked anyway
        if not k.replace("_", "").isalnum():
            raise ValueError(f"a JSON key path of names only: {keys!r}")
    return "'{" + ",".join(keys) + "}'"


# ---------------------------------------------------------------- SQLite: the text rawdb builds


@compiles(day_of, "sqlite")
def _day_sqlite(element, compiler, **kw):
    return rawdb.day_of(*_args(element, compiler, **kw))


@compiles(month_of, "sqlite")
def _month_sqlite(element, compiler, **kw):
    return rawdb.month_of(*_args(element, compiler, **kw))


@compiles(epoch_of, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    return rawdb.epoch_of(*_args(element, compiler, **kw))


@compiles(no_index, "sqlite")
def _no_index_sqlite(element, compiler, **kw):
    return rawdb.no_index(*_args(element, compiler, **kw))


@compiles(days_between, "sqlite")
def _days_sqlite(element, compiler, **kw):
    day, timestamp = _args(element, compiler, **kw)
    return rawdb.days_since(date.fromisoformat(day.strip("'")), timestamp)


@compiles(before_moment, "sqlite")
def _before_sqlite(element, compiler, **kw):
    timestamp, seconds = _args(element, compiler, **kw)
    return rawdb.before_moment(timestamp, int(seconds))


@compiles(text_list, "sqlite")
def _text_list_sqlite(element, compiler, **kw):
    return rawdb.text_list(*_args(element, compiler, **kw))


@compiles(json_has, "sqlite")
def _json_has_sqlite(element, compiler, **kw):
    (doc,) = _args(element, compiler, **kw)
    return rawdb.json_has(doc, element.keys)


@compiles(json_text, "sqlite")
def _json_text_sqlite(element, compiler, **kw):
    (doc,) = _args(element, compiler, **kw)
    return rawdb.json_text(doc, element.keys)


# ---------------------------------------------------------------- PostgreSQL


@compiles(day_of, "postgresql")
def _day_pg(element, compiler, **kw):
    (ts,) = _args(element, compiler, **kw)
    return f"to_char({ts}, 'YYYY-MM-DD')"


@compiles(month_of, "postgresql")
def _month_pg(element, compiler, **kw):
    (day,) = _args(element, compiler, **kw)
    return f"to_char({day}, 'YYYY-MM')"


@compiles(epoch_of, "postgresql")
def _epoch_pg(element, compiler, **kw):
    (ts,) = _args(element, compiler, **kw)
    return f"CAST(floor(extract(epoch FROM {ts})) AS BIGINT)"


@compiles(no_index, "postgresql")
def _no_index_pg(element, compiler, **kw):
    (expr,) = _args(element, compiler, **kw)
    return expr


@compiles(days_between, "postgresql")
def _days_pg(element, compiler, **kw):
    day, ts = _args(element, compiler, **kw)
    return f"(DATE {day} - CAST({ts} AS DATE))"


@compiles(before_moment, "postgresql")
def _before_pg(element, compiler, **kw):
    timestamp, seconds = _args(element, compiler, **kw)
    return f"({timestamp} < TIMESTAMP '{rawdb.moment_text(int(seconds))}')"


@compiles(text_list, "postgresql")
def _text_list_pg(element, compiler, **kw):
    (expr,) = _args(element, compiler, **kw)
    return f"string_agg(CAST({expr} AS TEXT), ',')"


@compiles(json_has, "postgresql")
def _json_has_pg(element, compiler, **kw):
    (doc,) = _args(element, compiler, **kw)
    return f"((CAST({doc} AS jsonb) #> {_pg_path(element.keys)}) IS NOT NULL)"


@compiles(json_text, "postgresql")
def _json_text_pg(element, compiler, **kw):
    (doc,) = _args(element, compiler, **kw)
    return f"(CAST({doc} AS jsonb) #>> {_pg_path(element.keys)})"


# ---------------------------------------------------------------- as text, for text queries


@cache
def _dialect(name: str) -> Dialect:
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.dialect()
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.dialect()
    raise ValueError(f"evpipe runs on SQLite and PostgreSQL, not {name}")


def render(expression: ColumnElement[Any], dialect: str) -> str:
    """A need as SQL text for `dialect` ('sqlite', 'postgresql'), for the text queries."""
    return str(expression.compile(dialect=_dialect(dialect), compile_kwargs={"literal_binds": True}))


def render_need(need: str, dialect: str, *args: Any) -> str:
    """rawdb's text builders for a database other than SQLite: need `need` over column names."""
    columns = [literal_column(a) if isinstance(a, str) else a for a in args]
    made: ColumnElement[Any] = globals()[need](*columns)
    return render(made, dialect)


rawdb.OTHER_DIALECTS["render_need"] = render_need


# ---------------------------------------------------------------- writes that differ


def upsert(conn: Connection, table: Table, values: dict[str, Any], keys: list[str], *, update: bool = True) -> bool:
    """Insert a row, or update the row with the same `keys` (a unique constraint; `update=False`:
    leave it as it is): one statement, safe when two writers race (INSERT ... ON CONFLICT DO
    UPDATE / DO NOTHING on both databases). True when a row was inserted or updated."""
    return bool(conn.execute(_upsert(conn, table, values, keys, update).values(**values)).rowcount)


def upsert_many(
    conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str], same: dict[str, Any] | None = None
) -> None:
    """`upsert` each of `rows` (all with the same columns), in one statement the driver runs for
    each row; `same`: columns whose value is the same for every row, which may be SQL (the
    server's clock)."""
    if rows:
        stmt = _upsert(conn, table, {**rows[0], **(same or {})}, keys, True)
        conn.execute(stmt.values(**same) if same else stmt, rows)


def _upsert(conn: Connection, table: Table, values: dict[str, Any], keys: list[str], update: bool) -> Any:
    """The INSERT ... ON CONFLICT statement of `upsert`, for rows with the columns of `values`."""
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        ins: Any = sqlite_insert(table)
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        ins = pg_insert(table)
    else:  # pragma: no cover - _dialect says so first
        raise ValueError(f"evpipe runs on SQLite and PostgreSQL, not {name}")
    changed = {k: ins.excluded[k] for k in values if k not in keys}
    if update and changed:
        return ins.on_conflict_do_update(index_elements=keys, set_=changed)
    return ins.on_conflict_do_nothing(index_elements=keys)


def reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """After rows were written with explicit ids: each table's id sequence continues after its
    largest id (PostgreSQL; SQLite's rowids need nothing)."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        if "id" not in table.c:
            continue
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)"
            )
        )


#: A bulk insert of at least this many rows, into a table holding fewer, builds the table's
#: indexes afterwards (`indexes_set_aside`): the CRM sample's 8,800 prospects went in with their
#: six indexes in 140 ms, and in 63 ms without them plus 46 ms to build them.
BULK_ROWS = 5_000


def indexes_set_aside(conn: Connection, table: Table, adding: int, holding: int) -> list[str]:
    """Before inserting `adding` rows into `table`, which holds at most `holding`: when that is a
    bulk load (at least BULK_ROWS, more than the table holds), drop the table's own indexes in the
    transaction and return the statements that make them again, word for word as the schema has
    them (`rebuild_indexes`, before the transaction ends). SQLite builds an index from the rows at
    once, sorted, faster than it inserts each row into it (the 100,000-row import: about 1 s less).

    SQLite only: its DDL is transactional (a failed import rolls the indexes back with the rows),
    and a reader keeps the indexes of the snapshot it reads. Elsewhere nothing is dropped:
    PostgreSQL's DROP INDEX would keep every reader out of the table until the import ends."""
    if conn.dialect.name != "sqlite" or not bulk_load(adding, holding):
        return []
    made = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name",
        (table.name,),
    ).all()
    for name, _ in made:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [sql for _, sql in made]


def rebuild_indexes(conn: Connection, statements: list[str]) -> None:
    """Make the indexes `indexes_set_aside` dropped again."""
    for sql in statements:
        conn.exec_driver_sql(sql)


def bulk_load(adding: int, holding: int) -> bool:
    """Whether inserting `adding` rows into a table that holds at most `holding` is a bulk load
    (`indexes_set_aside`; a write whose references are checked after it, `db.writer`)."""
    return adding >= BULK_ROWS and adding > holding


def references_broken(conn: Connection, tables: list[Table]) -> int:
    """SQLite: how many rows of `tables` refer to a row that is not there (PRAGMA
    foreign_key_check, a pass over each table), for a write that did not check them one by one
    (`db.writer(references_after=True)`). 0 elsewhere: a server checks each row."""
    if conn.dialect.name != "sqlite":
        return 0
    return sum(len(conn.exec_driver_sql(f'{rawdb.FOREIGN_KEY_CHECK}("{t.name}")').all()) for t in tables)


def lock_tables(conn: Connection, tables: list[Table]) -> None:
    """Keep other writers out of these tables until the transaction ends (a bulk write that numbers
    its rows itself). PostgreSQL: LOCK TABLE, waiting at most the lock timeout; SQLite's writer
    holds the whole database already."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text(f"LOCK TABLE {', '.join(t.name for t in tables)} IN SHARE ROW EXCLUSIVE MODE"))


#: The key of the ladder's lock (an advisory lock: PostgreSQL's are per database).
LADDER_LOCK = 0x65767069_6C616464  # "evpiladd"

#: The key of the writers' lock (`lock_writes`).
WRITE_LOCK = 0x65767069_77726974  # "evpiwrit"


def lock_writes(conn: Connection) -> None:
    """PostgreSQL: hold the writers' lock until the transaction ends, taken as every evpipe write
    begins (models/db.py `begin_write`), waiting at most the lock timeout. Writes then commit one
    after another, as on SQLite, and so in the order of their journal ids: the server hands an id
    out as the entry is written, not as it commits, and a live screen that saw entry 11 while entry
    10 was still being written would take 10 as seen and never tell it (models/changes_feed.py), nor
    add it to the header's sums (models/header_sums.py). Taken first, before any row or ladder lock,
    so that it cannot deadlock with them. (A statement typed into psql takes no such lock.)"""
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")


def lock_ladder(conn: Connection, *, exclusive: bool) -> None:
    """Hold the ladder until the transaction ends: shared by prospect writes, exclusive for a
    write that changes a stage's probability or place, so an EV sum never mixes two probabilities
    of one stage. (evpipe's own writes commit one at a time, `lock_writes`; statements typed into
    psql, which take this lock through the prospect table's trigger, may run several at once.)
    PostgreSQL: an advisory lock, which needs no privilege on the stage table (a rep or a manager
    may only read it: models/grants.py), waiting at most the lock timeout; SQLite's writer holds
    the whole database already."""
    if conn.dialect.name != "postgresql":
        return
    how = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute(text(f"SELECT {how}(:key)"), {"key": LADDER_LOCK})
