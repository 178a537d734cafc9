"""The members of a database and who you are (docs/domain.md, "Members and roles").

A member is a login name with a role: `owner`, `manager` or `rep` (models/roles.py says what each
may do). A database with no members behaves as before roles: whoever can write the file may do
anything, as whoever `EVPIPE_USER` names.

Who you are is your login name (the account the process runs as). `EVPIPE_USER` names someone else
only while the database has no members yet (a single user, tests, demos) or when your login name is
an owner's; otherwise it is ignored and `acting_user` says so in its `note`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from . import clock, grants
from .db import writer
from .errors import DomainError, NotFound
from .roles import MANAGER, OWNER, REP, ROLES, Acting, Conn, acting_user, login_name, members_exist, require, role_of
from .settings import get_setting, put_setting
from .tables import Member, Setting, table_of
from .values import clean_text
from .visibility import REPS_SEE, REPS_SEE_KEY, reps_see_value, sees_only

_MEMBER = table_of(Member)
_SETTING = table_of(Setting)


def resolve_user(engine: Engine, claimed: str | None = None) -> Acting:
    with engine.connect() as conn:
        return acting_user(conn, claimed)


@dataclass(frozen=True)
class MemberInfo:
    name: str
    role: str
    added_at: datetime
    added_by: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "added_at": self.added_at.isoformat(), "added_by": self.added_by}


def members(engine: Engine) -> list[MemberInfo]:
    """Every member, owners first, then by name."""
    rank = {OWNER: 0, MANAGER: 1, REP: 2}
    with engine.connect() as conn:
        rows = conn.execute(select(_MEMBER.c.name, _MEMBER.c.role, _MEMBER.c.added_at, _MEMBER.c.added_by)).all()
    out = [MemberInfo(n, r, a, b or "") for n, r, a, b in rows]
    return sorted(out, key=lambda m: (rank.get(m.role, 9), m.name.casefold()))


def check_role(text: object) -> str:
    role = str(text or "").strip().lower()
    if role not in ROLES:
        raise DomainError(f"role: {str(text)[:20]!r} is not a role; use {', '.join(ROLES)}", field="role")
    return role


def check_name(text: object) -> str:
    name = clean_text(text, field="member name", max_len=80, required=True)
    if any(c.isspace() for c in name):
        raise DomainError(f"member name: {name!r} has spaces; use the login name (as `whoami` prints it)", field="name")
    return name


def _owners(conn: Conn) -> int:
    return int(conn.execute(select(func.count()).select_from(_MEMBER).where(_MEMBER.c.role == OWNER)).scalar() or 0)


def first_owner(source: Engine | Conn, who: str, login: str | None) -> str:
    """Who the first member of a database must be: you, as its owner. On SQLite that is your
    `login` when it is given (a session's): once there are members, who you are is your login, and
    EVPIPE_USER names someone else only for an owner's login, so a first owner named by EVPIPE_USER
    locked the login out of the database. On a server, who you are is the server's role (`who`)."""
    return who if login is None or grants.is_server(source) else login


def add_member(engine: Engine, who: str, name: object, role: object, *, login: str | None = None) -> MemberInfo:
    """Add a member. The first member of a database must be you, as its owner (`first_owner`: so
    that nobody locks the owner out by accident); after that only an owner adds members.
    `login`: the account a session runs as (login_name), when `who` may come from EVPIPE_USER."""
    name, role = check_name(name), check_role(role)
    at = clock.now()
    with writer(engine).begin() as conn:
        if not members_exist(conn):
            first = first_owner(conn, who, login)
            if name != first or role != OWNER:
                why = (
                    f" (EVPIPE_USER={who} counts only for an owner's login once there are members)"
                    if first != who
                    else ""
                )
                raise DomainError(
                    f"members: the first member must be you, as owner (evpipe members add {first} --role owner); "
                    f"then add the others{why}",
                    field="name",
                )
        else:
            require(conn, who, "roles")
        if role_of(conn, name) is not None:
            raise DomainError(f"members: {name} is a member already; evpipe members set-role changes the role")
        if grants.is_server(conn) and not grants.has_login(conn, name):
            raise DomainError(grants.no_login_line(name), field="name")
        conn.execute(insert(_MEMBER).values(name=name, role=role, added_at=at, added_by=who))
        _server_privileges(conn)
    return MemberInfo(name, role, at, who)


def set_role(engine: Engine, who: str, name: object, role: object) -> MemberInfo:
    name, role = check_name(name), check_role(role)
    with writer(engine).begin() as conn:
        require(conn, who, "roles")
        before = role_of(conn, name)
        if before is None:
            raise NotFound(f"members: {name} is not a member; add them with: evpipe members add {name} --role {role}")
        if before == OWNER and role != OWNER and _owners(conn) == 1:
            raise DomainError(f"members: {name} is the only owner; make someone else owner first", field="role")
        conn.execute(update(_MEMBER).where(_MEMBER.c.name == name).values(role=role))
        _server_privileges(conn)
        row = conn.execute(select(_MEMBER.c.added_at, _MEMBER.c.added_by).where(_MEMBER.c.name == name)).one()
    return MemberInfo(name, role, row[0], row[1] or "")


def remove_member(engine: Engine, who: str, name: object) -> None:
    """Remove a member. The last owner stays while anyone else is a member; removing the last
    member of all makes the database open to everyone again, as before roles."""
    name = check_name(name)
    with writer(engine).begin() as conn:
        require(conn, who, "roles")
        role = role_of(conn, name)
        if role is None:
            raise NotFound(f"members: {name} is not a member")
        total = int(conn.execute(select(func.count()).select_from(_MEMBER)).scalar() or 0)
        if role == OWNER and _owners(conn) == 1 and total > 1:
            raise DomainError(
                f"members: {name} is the only owner; make someone else owner first (evpipe members set-role NAME owner)",
                field="name",
            )
        conn.execute(delete(_MEMBER).where(_MEMBER.c.name == name))
        _server_privileges(conn)


def _server_privileges(conn: Connection) -> list[str]:
    """On a database server: its privileges made to match the members, in the same transaction as
    the change (models/grants.py). Nothing on SQLite."""
    own = reps_see_value(conn.execute(select(_SETTING.c.value).where(_SETTING.c.key == REPS_SEE_KEY)).scalar()) == "own"
    return grants.apply(conn, reps_own_only=own)


def apply_grants(engine: Engine, who: str) -> list[str]:
    """Set the server's privileges up again from the members (after a migration added a table, or
    someone changed them by hand). Only an owner. Returns the members with no login role there."""
    if not grants.is_server(engine):
        raise DomainError("members grants: only a database server (PostgreSQL) has privileges to set")
    with writer(engine).begin() as conn:
        require(conn, who, "roles")
        return _server_privileges(conn)


def reps_see(engine: Engine) -> str:
    """What reps see: 'all' (everyone's prospects) or 'own' (only their own)."""
    return reps_see_value(get_setting(engine, REPS_SEE_KEY))


def set_reps_see(engine: Engine, who: str, value: object) -> str:
    text = str(value or "").strip().lower()
    if text not in REPS_SEE:
        raise DomainError(f"reps-see: {str(value)[:20]!r}: use all (everyone's prospects) or own", field="reps_see")
    with writer(engine).begin() as conn:
        require(conn, who, "settings")
        put_setting(conn, REPS_SEE_KEY, text)
        if grants.is_server(conn) and members_exist(conn):  # what the server lets reps read follows it
            _server_privileges(conn)
    return text


def visible_owner(engine: Engine, who: str) -> str | None:
    """The one owner whose prospects `who` may see (their own name, for a rep when the owner chose
    'own'), or None: everyone's (the rule: models/visibility.py `sees_only`)."""
    with engine.connect() as conn:
        role = role_of(conn, who)
    return sees_only(who, role, reps_see(engine))


__all__ = [
    "first_owner",
    "Acting",
    "MemberInfo",
    "REPS_SEE",
    "acting_user",
    "add_member",
    "apply_grants",
    "login_name",
    "members",
    "remove_member",
    "reps_see",
    "resolve_user",
    "set_reps_see",
    "set_role",
    "visible_owner",
]
