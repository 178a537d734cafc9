"""The server's side of the roles (issue 12): on PostgreSQL, the privileges that make a member's
role binding, whatever program they connect with. All of evpipe's GRANT, REVOKE and policy SQL is
here; on SQLite nothing of it runs (a file has no users: roles there protect against mistakes).

Three group roles per database, made once and never able to log in: `evpipe_<db>_owner`,
`_manager` and `_rep` (`group_names`). Each member's login role (on a server, who you are is the
connection's role: models/identity.py) is a member of exactly the group of their evpipe role.

- owner: every privilege on every evpipe table and its id sequence.
- manager: reads everything; adds, changes and deletes prospects, activities and the rows a change
  journals (change_event, stage_change) and the KPI history (kpi_snapshot, kpi_snapshot_month).
  Only reads the ladder (stage), the settings, the members and alembic_version.
- rep: a manager's privileges on the prospects and what belongs to them, narrowed by row-level
  security: a rep adds, changes and deletes only the prospects whose owner is their login role
  (`session_user`), the activities and stage changes of those prospects, and journal rows that name
  them as `who`; and the server takes a rep's journal row only as the change her transaction made,
  now (models/journal_guard.py). A rep only reads the KPI history: the server adds their changes to today's reading
  itself (models/history_guard.py), so no rep writes a figure of the history. When the owner lets
  reps see only their own prospects (`evpipe members reps-see own`), a rep also reads only those
  (and their activities, stage changes and journal rows) and only their own KPI history.

The role that owns the tables (the one that ran `evpipe init`, whose migrations made them) bypasses
row-level security, as PostgreSQL's table owners do; so do superusers. `apply` needs that role (or a
superuser), with CREATEROLE to make the groups and change who is in them.

The KPI history is derived from the prospects: owners and managers record it (models/history.py
`records_history`), and a trigger keeps today's reading up to date with a rep's changes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from . import history_guard, journal_guard
from .errors import DomainError
from .roles import MANAGER, OWNER, REP, ROLES, Conn
from .tables import (
    Activity,
    ChangeEvent,
    KpiSnapshot,
    KpiSnapshotMonth,
    Member,
    Prospect,
    Setting,
    Stage,
    StageChange,
    table_of,
)

_MEMBER = table_of(Member)

#: The tables every member reads and only an owner writes.
OWNER_WRITES = (table_of(Stage).name, table_of(Setting).name, _MEMBER.name, "alembic_version")
#: The tables a manager or a rep writes (a rep only their own rows).
TEAM_WRITES = (
    table_of(Prospect).name,
    table_of(Activity).name,
    table_of(StageChange).name,
    table_of(ChangeEvent).name,
)
#: What of a journal row evpipe changes after writing it, for a rep: the undo that reversed a change,
#: and the stay a stage change ended (recomputed when an undone move leaves the way through the
#: ladder). A rep changes nothing else of her journal rows and deletes none: the month starts rebuilt
#: from the journal (models/replay.py) would take an edited or missing entry as what happened.
JOURNAL_MARKS = {table_of(ChangeEvent).name: ("undone_by_id",), table_of(StageChange).name: ("stay_seconds",)}
#: The KPI history: owners and managers write it, reps only read it (models/history_guard.py).
HISTORY = (table_of(KpiSnapshot).name, table_of(KpiSnapshotMonth).name)
ALL_TABLES = (*OWNER_WRITES, *TEAM_WRITES, *HISTORY)
#: The tables with row-level security, and what makes a row a rep's own: their login role's, which
#: SET ROLE does not change (current_user would be the rep group's name after SET ROLE to it, which
#: every rep may: a prospect of the group's would be every rep's, and a member's in the figures).
_MINE = "owner = SESSION_USER::text"
_OF_MINE = "prospect_id IN (SELECT id FROM prospect WHERE owner = SESSION_USER::text)"
ROW_RULES = {
    "prospect": (_MINE, _MINE),
    "activity": (_OF_MINE, _OF_MINE),
    "stage_change": (_OF_MINE, _OF_MINE),
    # (what a rep may read when they see only their own; what they may write)
    # (her journal rows are of her own prospects, never of none: the month starts are replayed from
    # their deltas, and from rows of no prospect the ladder's probabilities then)
    "change_event": (f"prospect_id IS NULL OR {_OF_MINE}", f"who = SESSION_USER::text AND {_OF_MINE}"),
}
#: What of the KPI history a rep reads while reps see only their own: their own scope's readings
#: ('owner:<name>', and any narrower scope of theirs), and the month rows those readings hold
#: (a reading's months may be held by another: its months_of).
_MY_SCOPE = "(scope = 'owner:' || SESSION_USER OR starts_with(scope, 'owner:' || SESSION_USER || ';'))"
HISTORY_READS = {
    HISTORY[0]: _MY_SCOPE,
    HISTORY[1]: f"snapshot_id IN (SELECT coalesce(months_of, id) FROM {HISTORY[0]})",
}
#: The policy that narrows a rep's reads of prospects: there only while reps see only their own.
OWN_READS = "evpipe_rep_read"


def is_server(source: Engine | Conn) -> bool:
    bind: Any = source.get_bind() if hasattr(source, "get_bind") else source
    return str(bind.dialect.name) == "postgresql"


def group_names(database: str) -> dict[str, str]:
    """The group role of each evpipe role on the database named `database`: `evpipe_<db>_<role>`,
    the name made safe (lower case letters, digits and _), and shortened with a hash of the whole
    name when it would not fit PostgreSQL's 63 characters."""
    safe = re.sub(r"[^a-z0-9_]", "_", database.lower())
    room = 63 - len("evpipe__manager")
    if safe != database.lower() or len(safe) > room:
        digest = hashlib.sha1(database.encode()).hexdigest()[:8]
        safe = f"{safe[: room - 9]}_{digest}"
    return {role: f"evpipe_{safe}_{role}" for role in ROLES}


def _q(conn: Connection, name: str) -> str:
    """A role or table name as an SQL identifier, always quoted."""
    return str(conn.dialect.identifier_preparer.quote_identifier(name))


def _one(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(text(sql), params).scalar()


def _groups(conn: Connection) -> dict[str, str]:
    return group_names(str(_one(conn, "SELECT current_database()")))


def has_login(conn: Connection, name: str) -> bool:
    return bool(_one(conn, "SELECT rolcanlogin FROM pg_roles WHERE rolname = :n", n=name))


def no_login_line(name: str) -> str:
    """What to do about a member name that is no login role on the server: the command a superuser
    runs (the password is set at psql's prompt, never on a command line)."""
    return (
        f"members: {name} has no login role on this server; a superuser creates it in psql with "
        f'CREATE ROLE "{name}" LOGIN; and sets its password there with \\password {name}, then: '
        f"evpipe members add {name} --role ROLE"
    )


def check_can_apply(conn: Connection) -> None:
    """Refuse (DomainError, one line) unless this connection's role may set the privileges up: it
    owns evpipe's tables (or is a superuser) and may create roles and change who is in them."""
    who = str(_one(conn, "SELECT current_user"))
    row = conn.execute(
        text(
            "SELECT r.rolsuper, r.rolcreaterole, t.tableowner, pg_has_role(current_user, t.tableowner, 'USAGE') "
            "FROM pg_roles r, pg_tables t WHERE r.rolname = current_user "
            "AND t.schemaname = current_schema() AND t.tablename = 'prospect'"
        )
    ).one()
    superuser, createrole, table_owner, owns = bool(row[0]), bool(row[1]), str(row[2]), bool(row[3])
    if superuser:
        return
    if not owns:
        raise DomainError(
            f"members: the server refused: your role {who} may not grant privileges on evpipe's tables; "
            f"run this as {table_owner}, the role that owns them (or as a superuser)",
            field="role",
        )
    if not createrole:
        raise DomainError(
            f"members: the server refused: your role {who} may not create roles or change who is in them; "
            f"a superuser allows it with: ALTER ROLE {_q(conn, who)} CREATEROLE",
            field="role",
        )


def _ensure_groups(conn: Connection, groups: dict[str, str]) -> None:
    for name in groups.values():
        if _one(conn, "SELECT 1 FROM pg_roles WHERE rolname = :n", n=name) is None:
            conn.execute(text(f"CREATE ROLE {_q(conn, name)} NOLOGIN"))


def _sequences(conn: Connection) -> list[str]:
    found = []
    for model in (Stage, Prospect, Activity, ChangeEvent, StageChange, KpiSnapshot):
        seq = _one(conn, "SELECT pg_get_serial_sequence(:t, 'id')", t=table_of(model).name)
        if seq:
            found.append(str(seq))
    return found


def _table_privileges(conn: Connection, groups: dict[str, str]) -> None:
    owner, manager, rep = (_q(conn, groups[r]) for r in (OWNER, MANAGER, REP))
    everyone = f"{owner}, {manager}, {rep}"
    # no member but an owner makes objects in evpipe's schema: an operator or a function made there
    # can be a closer match for one in another role's statement than pg_catalog's, and run as that
    # role (PostgreSQL before 15 let every role create in public). Only the schema's owner (or a
    # superuser) can revoke it: otherwise a warning, and `state` names it.
    schema = _q(conn, str(_one(conn, "SELECT current_schema()")))
    conn.execute(text(f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC, {manager}, {rep}"))
    present = {t for (t,) in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))}
    for table in ALL_TABLES:
        if table not in present:  # pragma: no cover - a schema older than the members (migrate first)
            continue
        name = _q(conn, table)
        conn.execute(text(f"REVOKE ALL ON {name} FROM {everyone}"))
        conn.execute(text(f"GRANT ALL ON {name} TO {owner}"))
        conn.execute(text(f"GRANT SELECT ON {name} TO {manager}, {rep}"))
        if table in TEAM_WRITES:
            conn.execute(text(f"GRANT INSERT, UPDATE, DELETE ON {name} TO {manager}"))
            # a rep writes every column but the id, which the sequence gives: an id of her choosing
            # (the one it gives next, or a thousand of them) made the team's next writes fail on it
            columns = ", ".join(
                _q(conn, c)
                for (c,) in conn.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                        "AND table_name = :t AND column_name <> 'id' ORDER BY ordinal_position"
                    ),
                    {"t": table},
                )
            )
            marks = JOURNAL_MARKS.get(table)
            if marks is None:
                conn.execute(text(f"GRANT INSERT ({columns}), UPDATE ({columns}), DELETE ON {name} TO {rep}"))
            else:  # the journal: written once, then only its marks
                marked = ", ".join(_q(conn, c) for c in marks)
                conn.execute(text(f"GRANT INSERT ({columns}), UPDATE ({marked}) ON {name} TO {rep}"))
        elif table in HISTORY:
            conn.execute(text(f"GRANT INSERT, UPDATE, DELETE ON {name} TO {manager}"))
    history_seq = _one(conn, "SELECT pg_get_serial_sequence(:t, 'id')", t=HISTORY[0])
    for seq in _sequences(conn):  # the ids of new rows; the KPI history sets its own (setval)
        conn.execute(text(f"REVOKE ALL ON SEQUENCE {seq} FROM {everyone}"))
        conn.execute(text(f"GRANT USAGE, SELECT, UPDATE ON SEQUENCE {seq} TO {owner}, {manager}"))
        if seq != history_seq:  # (a rep writes no history) nextval only: setval would move the team's ids
            conn.execute(text(f"GRANT USAGE ON SEQUENCE {seq} TO {rep}"))


def _policies(conn: Connection, groups: dict[str, str], *, reps_own_only: bool) -> None:
    """Row-level security on the prospects and the tables kept per prospect: owners and managers
    every row, a rep their own (see the module's docstring)."""
    staff = f"{_q(conn, groups[OWNER])}, {_q(conn, groups[MANAGER])}"
    rep = _q(conn, groups[REP])
    rules: dict[str, tuple[str, str | None]] = {**ROW_RULES, **{t: (r, None) for t, r in HISTORY_READS.items()}}
    for table, (own_read, own_write) in rules.items():
        name = _q(conn, table)
        conn.execute(text(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY"))
        existing = {
            p for (p,) in conn.execute(text("SELECT policyname FROM pg_policies WHERE tablename = :t"), {"t": table})
        }
        for policy in existing:
            if policy.startswith("evpipe_"):
                conn.execute(text(f"DROP POLICY {_q(conn, policy)} ON {name}"))
        read = own_read if reps_own_only else "true"
        conn.execute(text(f"CREATE POLICY evpipe_staff ON {name} FOR ALL TO {staff} USING (true) WITH CHECK (true)"))
        conn.execute(text(f"CREATE POLICY {OWN_READS} ON {name} FOR SELECT TO {rep} USING ({read})"))
        if own_write is None:  # the KPI history: a rep has no privilege to write it
            continue
        for sql in (
            f"CREATE POLICY evpipe_rep_add ON {name} FOR INSERT TO {rep} WITH CHECK ({own_write})",
            f"CREATE POLICY evpipe_rep_change ON {name} FOR UPDATE TO {rep} USING ({own_write}) WITH CHECK ({own_write})",
            f"CREATE POLICY evpipe_rep_delete ON {name} FOR DELETE TO {rep} USING ({own_write})",
        ):
            conn.execute(text(sql))


def _memberships(conn: Connection, groups: dict[str, str]) -> list[str]:
    """Each member's login role in exactly their group, anyone else in none of them. Returns the
    members who have no login role on the server (their names only)."""
    people: dict[str, str] = {n: r for n, r in conn.execute(select(_MEMBER.c.name, _MEMBER.c.role))}
    missing = []
    for name, role in sorted(people.items()):
        if not has_login(conn, name):
            missing.append(name)
            continue
        for each, group in groups.items():
            if each == role:
                conn.execute(text(f"GRANT {_q(conn, group)} TO {_q(conn, name)}"))
    for each, group in groups.items():
        inside = conn.execute(
            text(
                "SELECT m.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
                "JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = :g"
            ),
            {"g": group},
        ).scalars()
        for name in list(inside):
            if people.get(name) != each:
                conn.execute(text(f"REVOKE {_q(conn, group)} FROM {_q(conn, name)}"))
    return missing


def apply(conn: Connection, *, reps_own_only: bool) -> list[str]:
    """Set the server's privileges to match the members table, in the transaction of `conn` (so a
    member change and its privileges are saved together, or neither): the groups (made when
    missing), what each may do on each table, the row-level security, and who is in each group.
    Nothing on SQLite. Returns the members with no login role on the server."""
    if not is_server(conn):
        return []
    check_can_apply(conn)
    groups = _groups(conn)
    _ensure_groups(conn, groups)
    _table_privileges(conn, groups)
    _policies(conn, groups, reps_own_only=reps_own_only)
    history_guard.install(conn)
    journal_guard.install(conn)
    return _memberships(conn, groups)


@dataclass(frozen=True)
class ServerRole:
    """What the server says about one member: whether their login role exists, and the evpipe
    groups it is in (exactly their role's, when the privileges are in place)."""

    name: str
    role: str
    login: bool
    groups: tuple[str, ...]

    @property
    def in_place(self) -> bool:
        return self.login and self.groups == (self.role,)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "login": self.login, "groups": list(self.groups)}


@dataclass(frozen=True)
class GrantsState:
    groups: dict[str, str]
    #: whether the groups exist and row-level security is on for the prospects
    enforced: bool
    reps_own_only: bool
    members: list[ServerRole]
    #: whether reps only read the KPI history and the server keeps their changes in it
    history_guarded: bool = True
    #: evpipe's schema, when members who are no owners may create objects in it
    open_schema: str | None = None
    #: whether a rep's journal rows must be the change her transaction made, now
    #: (models/journal_guard.py)
    journal_guarded: bool = True

    @property
    def problems(self) -> list[str]:
        out = [] if self.enforced else ["the server's privileges are not set up yet"]
        if self.enforced and not self.history_guarded:
            out.append("reps may still write the KPI history")
        if self.enforced and not self.journal_guarded:
            out.append("reps may still write journal entries of changes they did not make")
        if self.enforced and self.open_schema is not None:
            out.append(
                f"reps and managers may create objects in the schema {self.open_schema}, where evpipe's tables are; its "
                f"owner or a superuser runs REVOKE CREATE ON SCHEMA {self.open_schema} FROM PUBLIC"
            )
        for m in self.members:
            if not m.login:
                out.append(no_login_line(m.name).removeprefix("members: "))
            elif not m.in_place:
                now = ", ".join(m.groups) or "no evpipe group"
                out.append(f"{m.name} is {m.role} here but in {now} on the server")
        return out


def state(engine: Engine) -> GrantsState:
    """The server's privileges as they stand (PostgreSQL only)."""
    with engine.connect() as conn:
        groups = _groups(conn)
        exists = {
            r for r, g in groups.items() if _one(conn, "SELECT 1 FROM pg_roles WHERE rolname = :n", n=g) is not None
        }
        secured = bool(_one(conn, "SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass('prospect')"))
        own = bool(
            _one(
                conn,
                "SELECT 1 FROM pg_policies WHERE tablename = 'prospect' AND policyname = :p AND qual <> 'true'",
                p=OWN_READS,
            )
        )
        people = [
            (str(n), str(r)) for n, r in conn.execute(select(_MEMBER.c.name, _MEMBER.c.role).order_by(_MEMBER.c.name))
        ]
        out = []
        for name, role in people:
            login = has_login(conn, name)
            inside = tuple(
                r
                for r in ROLES
                if r in exists
                and login
                and _one(
                    conn,
                    "SELECT 1 FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
                    "JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = :g AND m.rolname = :m",
                    g=groups[r],
                    m=name,
                )
            )
            out.append(ServerRole(name, role, login, inside))
        guarded = history_guard.installed(conn) and bool(
            _one(conn, "SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(:t)", t=HISTORY[0])
        )
        journal = journal_guard.installed(conn)
        schema = str(_one(conn, "SELECT current_schema()"))
        open_schema = any(
            _one(conn, "SELECT has_schema_privilege(:g, current_schema(), 'CREATE')", g=groups[r])
            for r in (MANAGER, REP)
            if r in exists
        )
    return GrantsState(
        groups, len(exists) == len(ROLES) and secured, own, out, guarded, schema if open_schema else None, journal
    )


def sees_everything(source: Engine | Conn) -> bool:
    """Whether this connection reads every prospect: False only for a rep on a server whose owner
    lets reps see only their own (row-level security hides the others from them)."""
    if not is_server(source):
        return True
    sql = (
        "SELECT NOT (row_security_active('prospect') AND EXISTS (SELECT 1 FROM pg_policies p, unnest(p.roles) r "
        "WHERE p.tablename = 'prospect' AND p.policyname = :p AND p.qual <> 'true' "
        "AND pg_has_role(current_user, r::text, 'MEMBER')))"
    )
    if isinstance(source, Engine):
        with source.connect() as conn:
            return bool(conn.execute(text(sql), {"p": OWN_READS}).scalar())
    return bool(source.execute(text(sql), {"p": OWN_READS}).scalar())


__all__ = [
    "ALL_TABLES",
    "GrantsState",
    "HISTORY",
    "OWNER_WRITES",
    "ServerRole",
    "TEAM_WRITES",
    "apply",
    "check_can_apply",
    "group_names",
    "has_login",
    "is_server",
    "no_login_line",
    "sees_everything",
    "state",
]
