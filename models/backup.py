"""Backups: a copy of the SQLite file made with SQLite's online backup API (safe while evpipe or
anyone else has the database open and is writing), and a JSON dump of a whole database that
`restore` turns back into exactly the same database (ids, history, journal, snapshots, ladder,
settings, deleted prospects included).

The dump lists every table in dependency order, each as {"columns": [...], "rows": [[...], ...]}
ordered by primary key; dates and times are ISO text, money integer cents, probabilities integer
basis points, EV integer micros: nothing goes through a float, so dump -> restore -> dump gives
the same JSON.
"""

from __future__ import annotations

import errno
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, Engine, String, Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from . import rawdb
from . import tables as _registers_the_tables  # noqa: F401
from .db import HEAD, current_revision, writer
from .dialect import reset_sequences
from .errors import DomainError, database_failure
from .kpi import NO_MONTH
from .locations import database_file, sqlite_path
from .outfile import check_destination, private_output
from .roles import acting_user, require
from .snapshot_deltas import stray_months_of
from .values import FULL_BP, MAX_NAME_LEN, MAX_VALUE_CENTS, clean_text, parse_month

DUMP_FORMAT = "evpipe-dump"
DUMP_VERSION = 1


def _tables() -> list[Table]:
    return list(SQLModel.metadata.sorted_tables)


# ---------------------------------------------------------------- backup


def backup(url: str, dest: str | Path, *, force: bool = False) -> Path:
    """Copy the SQLite database at `url` to `dest` with the online backup API. Refuses to
    overwrite an existing file unless `force`. The copy is written beside `dest` and moved into
    place, so a failed backup never leaves a half file where a good one was."""
    src = sqlite_path(url)
    if src is None and url.startswith("postgresql"):
        return _pg_dump(url, Path(dest).expanduser(), force=force)
    if src is None:
        raise DomainError(
            "backup: only an SQLite database file can be backed up this way; use `evpipe dump`", field="db"
        )
    if not src.exists():
        raise DomainError(f"backup: {src} does not exist", field="db")
    dest = check_destination(dest, "backup", force=force, database=src)
    with private_output(dest, "backup") as tmp:
        _copy(src, tmp)
    return dest


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A PostgreSQL URL as libpq (pg_dump, psql) reads it, without its password, and the
    environment that passes the password instead (never on a command line, where `ps` shows it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _pg_dump(url: str, dest: Path, *, force: bool) -> Path:
    """A PostgreSQL database is backed up by its own tool: pg_dump's custom format, restored with
    pg_restore. Without pg_dump on PATH, says how to run it."""
    import os
    import shutil
    import subprocess

    target, env = libpq_target(url)
    tool = shutil.which("pg_dump")
    if tool is None:
        raise DomainError(
            f"backup: a PostgreSQL database is backed up with pg_dump, which is not installed here: "
            f"pg_dump --format=custom --file {dest} '{target}' (passwords from ~/.pgpass or PGPASSWORD)",
            field="db",
        )
    dest = check_destination(dest, "backup", force=force)
    with private_output(dest, "backup") as tmp:
        done = subprocess.run(
            [tool, "--format=custom", "--no-password", "--file", str(tmp), target],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise DomainError(f"backup: pg_dump failed: {reason}", field="db")
    return dest


def _copy(src: Path, tmp: Path) -> None:
    """SQLite's online backup of `src` into `tmp`, made self-contained and checked."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    try:
        target = sqlite3.connect(tmp)
        try:
            source.backup(target, pages=1024)
            target.execute(rawdb.BACKUP_JOURNAL_MODE)
            ok = target.execute(rawdb.INTEGRITY_CHECK).fetchone()[0]
        finally:
            target.close()
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name == "SQLITE_FULL":
            raise OSError(errno.ENOSPC, str(exc)) from None
        if name.startswith("SQLITE_IOERR"):  # the write itself failed: a full, failing or limited disk
            raise OSError(errno.EIO, "the disk refused the write (is it full or failing?)") from None
        damaged = database_failure(exc, src)
        if damaged is not None and damaged.startswith(f"{src} is damaged"):
            raise DomainError(f"backup: {damaged}", field="db") from None
        raise DomainError(f"backup: SQLite could not copy the database: {exc}", field="db") from None
    finally:
        source.close()
    if ok != "ok":  # pragma: no cover - a copy of a sound database is sound
        raise DomainError(f"backup: the copy failed its integrity check: {ok}", field="db")


# ---------------------------------------------------------------- dump


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def dump(engine: Engine) -> dict[str, Any]:
    """The whole database as plain JSON-ready data, read in one transaction (a consistent view)."""
    tables: dict[str, Any] = {}
    with engine.connect() as conn:
        revision = current_revision(engine)
        for table in _tables():
            cols = [c.name for c in table.columns]
            order = list(table.primary_key.columns)
            rows = [[_encode(v) for v in row] for row in conn.execute(select(table).order_by(*order))]
            tables[table.name] = {"columns": cols, "rows": rows}
    return {"format": DUMP_FORMAT, "version": DUMP_VERSION, "schema": revision, "tables": tables}


def _dump_text(data: dict[str, Any]) -> Iterator[str]:
    """A dump's JSON text, in pieces as they are made: a file and standard output get the same."""
    yield from json.JSONEncoder(ensure_ascii=False, indent=1, sort_keys=True).iterencode(data)
    yield "\n"


def _counts(data: dict[str, Any]) -> dict[str, int]:
    return {name: len(t["rows"]) for name, t in data["tables"].items()}


def dump_to_file(engine: Engine, path: str | Path, *, force: bool = False) -> dict[str, int]:
    path = check_destination(path, "dump", force=force, database=database_file(engine))
    data = dump(engine)
    with private_output(path, "dump") as tmp, tmp.open("w", encoding="utf-8") as fh:
        fh.writelines(_dump_text(data))
    return _counts(data)


def dump_to_stream(engine: Engine, write: Callable[[bytes], object], *, chunk: int = 1 << 16) -> dict[str, int]:
    """The dump `dump_to_file` writes, as UTF-8 bytes handed to `write` about `chunk` bytes at a
    time (`evpipe dump -`: standard output)."""
    data = dump(engine)
    pending: list[str] = []
    size = 0
    for piece in _dump_text(data):
        pending.append(piece)
        size += len(piece)
        if size >= chunk:
            write("".join(pending).encode("utf-8"))
            pending, size = [], 0
    if pending:
        write("".join(pending).encode("utf-8"))
    return _counts(data)


# ---------------------------------------------------------------- restore


def _decode(table: Table, columns: list[str], row: Any, number: int) -> dict[str, Any]:
    """One row of a dump as the table takes it, each value checked against its column: a dump
    edited by hand restored "abc" as an amount (lists and exports then failed) and stopped with a
    traceback on a bad date or a number too large. `number` counts the table's rows from 1."""
    if not isinstance(row, list) or len(row) != len(columns):
        raise DomainError(
            f"restore: {table.name} row {number} has {len(row) if isinstance(row, list) else 'no list of'} "
            f"values for {len(columns)} columns; nothing was restored",
            field="file",
        )
    out = {}
    for name, value in zip(columns, row):
        col = table.columns[name]
        if value is not None:
            try:
                python_type = col.type.python_type
            except NotImplementedError:  # pragma: no cover
                python_type = object
            if python_type is object and isinstance(getattr(col.type, "impl", col.type), String):  # (AutoString)
                python_type = str
            value = _checked(value, python_type, f"restore: {table.name} row {number}, {name}")
            rule = _COLUMN_RULES.get((table.name, name))
            if rule is not None:
                rule(value, f"restore: {table.name} row {number}, {name}")
            elif isinstance(value, str) and _CONTROLS.search(value):
                # no way into evpipe lets these in (clean_text drops them); restored, they reached
                # the CSV export as they were. (A NUL is PostgreSQL's to refuse: `_refuse_nul`.)
                raise DomainError(
                    f"restore: {table.name} row {number}, {name}: {value[:40]!r} holds an escape code or a "
                    "control character, which evpipe never stores; remove it, then try again; nothing was restored",
                    field="file",
                )
        elif not col.nullable and not col.primary_key:
            raise DomainError(
                f"restore: {table.name} row {number}, {name}: is empty, and it may not be; nothing was restored",
                field="file",
            )
        out[name] = value
    return out


def _checked(value: Any, python_type: type, where: str) -> Any:
    """`value` as `python_type` (datetime and date from ISO text); a DomainError naming `where`
    when it is not one."""
    kinds = {datetime: "moment (ISO, 2026-11-27T10:00:00)", date: "date (2026-11-27)", bool: "true or false"}
    try:
        if python_type is datetime and isinstance(value, str):
            return datetime.fromisoformat(value)
        if python_type is date and isinstance(value, str):
            return date.fromisoformat(value)
        if python_type is bool and (isinstance(value, bool) or value in (0, 1)):
            return bool(value)
        if (
            python_type is int
            and isinstance(value, int)
            and not isinstance(value, bool)
            and abs(value) <= rawdb.LARGEST_INTEGER
        ):
            return value
        if python_type is str and isinstance(value, str):
            value.encode("utf-8")  # a lone surrogate ("\\ud800" in the JSON) is no text a database stores
            return value
        if python_type not in (datetime, date, bool, int, str):  # (no other kind of column is dumped)
            return value
    except ValueError:
        pass
    kind = kinds.get(python_type, "whole number (at most 19 digits)" if python_type is int else "text")
    raise DomainError(f"{where}: {str(value)[:40]!r} is not a {kind}; nothing was restored", field="file")


def _in_range(low: int, high: int, unit: str) -> Any:
    """A rule: a whole number from `low` to `high` (what evpipe itself ever writes there)."""

    def check(value: Any, where: str) -> None:
        if not low <= value <= high:
            raise DomainError(f"{where}: {value} is not {unit}; nothing was restored", field="file")

    return check


def _json_object(value: Any, where: str, *, of_text: bool = False) -> None:
    """A rule: JSON text of an object (`of_text`: every key and value text), as evpipe writes
    custom fields and the journal's payloads; the export, `edit`, the journal and undo read them
    back as such, and stopped with a traceback on anything else."""
    try:
        found = json.loads(value or "{}")  # (an empty text reads as no fields, as everywhere)
    except (ValueError, RecursionError):
        found = None
    if not isinstance(found, dict) or (of_text and not all(isinstance(v, str) for v in found.values())):
        shape = "a JSON object of text fields" if of_text else "a JSON object"
        raise DomainError(f"{where}: {value[:40]!r} is not {shape}; nothing was restored", field="file")


#: What a column must hold beyond its type, per (table, column): a hand-edited dump restored a
#: negative amount, a probability of 9,999.99 % or custom fields that were no JSON object.
#: What no text evpipe stores holds: escape (ESC) and the other control characters but the line
#: break, the tab and the carriage return (C0 and C1), and DEL.
_CONTROLS = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _month(*, none: str | None = None) -> Any:
    """A rule: a month as evpipe stores it, 'YYYY-MM' (or `none`, the word for no month): a dump
    edited by hand restored '2027-13', which no screen or forecast reads."""

    def check(value: Any, where: str) -> None:
        if value == none:
            return
        try:  # (the one month rule: a month as evpipe stores it reads back as itself)
            good = parse_month(value) == value
        except DomainError:
            good = False
        if not good:
            raise DomainError(f"{where}: {value[:40]!r} is not a month (2027-03); nothing was restored", field="file")

    return check


def _name(value: Any, where: str) -> None:
    """A rule: a prospect's name as `add` and `edit` take it (models/values.py clean_text): a dump
    edited by hand restored one that was empty, which no screen can name."""
    if _CONTROLS.search(value):
        raise DomainError(
            f"{where}: {value[:40]!r} holds an escape code or a control character; nothing was restored", field="file"
        )
    try:
        clean_text(value, field="name", max_len=MAX_NAME_LEN, required=True)
    except DomainError as exc:
        raise DomainError(f"{where}: {str(exc).removeprefix('name: ')}; nothing was restored", field="file") from None


_COLUMN_RULES: dict[tuple[str, str], Any] = {
    ("prospect", "name"): _name,
    ("prospect", "value_cents"): _in_range(0, MAX_VALUE_CENTS, "an amount evpipe takes (0 to 9,999,999,999.99)"),
    ("prospect", "expected_month"): _month(),
    ("kpi_snapshot_month", "month"): _month(none=NO_MONTH),
    ("stage", "probability_bp"): _in_range(0, FULL_BP, "a probability (0 to 10000 basis points)"),
    ("prospect", "custom_json"): lambda value, where: _json_object(value, where, of_text=True),
    ("change_event", "payload"): _json_object,
}


def user_rows(conn) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in ("prospect", "change_event", "activity", "stage_change", "kpi_snapshot"):
        counts[name] = conn.execute(select(func.count()).select_from(SQLModel.metadata.tables[name])).scalar_one()
    return counts


def read_dump(path: str | Path) -> dict[str, Any]:
    path = Path(path).expanduser()
    if not path.exists():
        raise DomainError(f"restore: {path} does not exist", field="file")
    return _parse_dump(lambda: path.read_text(encoding="utf-8"), path.name)


def read_dump_from(stream: BinaryIO, name: str = "standard input") -> dict[str, Any]:
    """A dump read from `stream` (`evpipe restore -`: standard input), checked as `read_dump`
    checks a file's; `name` stands for the file's name in what is said."""
    return _parse_dump(lambda: stream.read().decode("utf-8"), name)


def _parse_dump(read: Callable[[], str], name: str) -> dict[str, Any]:
    try:
        text = read()
        if not text.strip():
            raise DomainError(f"restore: {name} is empty; a dump is a file written by `evpipe dump`", field="file")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise DomainError(
            f"restore: {name} is not a text file; a dump is JSON from `evpipe dump`", field="file"
        ) from None
    except json.JSONDecodeError as exc:
        raise DomainError(
            f"restore: {name} is not valid JSON (line {exc.lineno}: {exc.msg}); "
            "a dump is a file written by `evpipe dump`",
            field="file",
        ) from None
    except RecursionError:  # arrays or objects nested thousands deep: no dump is
        raise DomainError(
            f"restore: {name} nests its JSON deeper than any dump does; a dump is a file written by `evpipe dump`",
            field="file",
        ) from None
    if not isinstance(data, dict) or data.get("format") != DUMP_FORMAT:
        raise DomainError(f"restore: {name} is not an evpipe dump", field="file")
    return data


def _refuse_nul(table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's text cannot hold a NUL character, which SQLite's can (a file written by another
    program, a dump edited by hand): such a value is named before anything is written; migrating
    one stopped with the driver's words, naming the source database as the one that failed."""
    for number, row in enumerate(rows, 1):
        for name, value in row.items():
            if isinstance(value, str) and "\x00" in value:
                raise DomainError(
                    f"restore: {table.name} row {number}, {name}: {value.replace(chr(0), '')[:40]!r} holds a NUL "
                    "character, which PostgreSQL does not store; remove it in the source, then try again; "
                    "nothing was restored",
                    field="file",
                )


def _load_tables(conn: Connection, tables: dict[str, Any]) -> dict[str, int]:
    """Insert every table of a dump, parents first. Links within one table (an undo and the change
    it undoes) go in as NULL and are set once all its rows are in, so that a database that checks
    each row's foreign keys at once (PostgreSQL) accepts them; then the id sequences continue
    after the restored ids."""
    counts: dict[str, int] = {}
    for table in _tables():
        spec = tables.get(table.name, {"columns": [], "rows": []})
        columns = spec["columns"]
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise DomainError(f"restore: table {table.name} has unknown columns {', '.join(missing)}", field="file")
        rows = [_decode(table, columns, r, n) for n, r in enumerate(spec["rows"], 1)]
        if conn.dialect.name == "postgresql":
            _refuse_nul(table, rows)
        own = [c.name for c in table.columns if any(fk.column.table is table for fk in c.foreign_keys)]
        links = [{"key": r["id"], **{c: r[c] for c in own}} for r in rows if any(r.get(c) is not None for c in own)]
        for r in rows if own else ():
            r.update(dict.fromkeys(own, None))
        for i in range(0, len(rows), 5000):
            conn.execute(insert(table), rows[i : i + 5000])
        if links:
            set_links = update(table).where(table.c.id == bindparam("key")).values({c: bindparam(c) for c in own})
            conn.execute(set_links, links)
        counts[table.name] = len(rows)
    reset_sequences(conn, _tables())
    return counts


def restore(engine: Engine, data: dict[str, Any], *, force: bool = False, who: str | None = None) -> dict[str, int]:
    """Load a dump into `engine`'s database, which must hold no prospects, history or journal
    (a new database; its default ladder is replaced). With `force`, whatever it holds is replaced.
    One transaction: the database is either the dump's or as it was."""
    if data.get("version") != DUMP_VERSION:
        raise DomainError(
            f"restore: dump format {data.get('version')!r} is not one this evpipe reads (it reads {DUMP_VERSION})",
            field="file",
        )
    if data.get("schema") != HEAD:
        raise DomainError(
            f"restore: the dump is of schema {data.get('schema')!r} and this evpipe has {HEAD!r}; "
            "restore it with the evpipe that wrote it, then dump again",
            field="file",
        )
    known = {t.name: t for t in _tables()}
    tables = data.get("tables") or {}
    unknown = set(tables) - set(known)
    if unknown:
        raise DomainError(
            f"restore: the dump has tables this evpipe does not know: {', '.join(sorted(unknown))}", field="file"
        )
    with writer(engine).begin() as conn:
        require(conn, who or acting_user(conn).name, "restore")
        return restore_on(conn, tables, force=force)


def restore_on(conn: Connection, tables: dict[str, Any], *, force: bool = False) -> dict[str, int]:
    """`restore`'s writing, in the caller's transaction `conn` (restore, migrate): the dump's
    tables (checked against this evpipe's first) replace the database's."""
    existing = user_rows(conn)
    if any(existing.values()) and not force:
        busy = ", ".join(f"{n} {name.replace('_', ' ')} rows" for name, n in existing.items() if n)
        raise DomainError(
            f"restore: this database is not empty ({busy}); restore into a new database "
            "(--db NEW.db), or add --force to replace everything in it",
            field="db",
        )
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(rawdb.DEFER_FOREIGN_KEYS)
    for table in reversed(_tables()):
        conn.execute(table.delete())
    try:
        counts = _load_tables(conn, tables)
    except IntegrityError as exc:  # PostgreSQL checks each row as it goes in
        said = str(exc.orig).splitlines()[0]
        if "not null" in said.lower():
            why = f"a row leaves out a value it must have: {said}"
        elif "unique" in said.lower() or "duplicate" in said.lower():
            why = f"rows repeat what must be unique: {said}"
        else:
            why = f"rows point at rows that do not exist: {said}"
        raise DomainError(f"restore: the dump is inconsistent ({why}); nothing was restored", field="file") from None
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql(rawdb.FOREIGN_KEY_CHECK).fetchall()
        if broken:
            raise DomainError(
                f"restore: the dump is inconsistent ({len(broken)} rows point at rows that do "
                f"not exist, e.g. in {broken[0][0]}); nothing was restored",
                field="file",
            )
    stray = stray_months_of(conn)
    if stray is not None:
        raise DomainError(
            f"restore: the dump is inconsistent (KPI snapshot {stray} has the months of a snapshot that does not "
            "hold its own); nothing was restored",
            field="file",
        )
    if counts.get("stage", 0) == 0:
        raise DomainError("restore: the dump has no stage ladder; nothing was restored", field="file")
    return counts
