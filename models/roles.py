"""Who may do what: the one place that refuses a change a role does not allow.

Every write path calls `require` inside its own transaction, before it changes anything: the
store's prospect, ladder and undo writes, the importer, restore, the settings and the members
themselves. So no screen or command can go around it.

- A database with no members: everyone may do everything (as before roles).
- `owner`: everything. `manager`: edits every prospect. `rep`: edits only the prospects they own
  (`prospect.owner` is their name), and adds prospects only for themselves.
- Only an owner changes the ladder, the settings, the members and their roles, imports, and
  restores a dump over the database (which deletes everything in it).
- Someone who is not a member of a database that has members may change nothing.

What this protects against on a shared SQLite file: mistakes (a rep changing the ladder, a
colleague's deal, an import into the wrong file), not a determined user, who can write the file
with any SQLite tool. On PostgreSQL the server makes them binding: models/grants.py gives each
member's login role the privileges of their role (row-level security for a rep's own prospects).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from .errors import DomainError
from .tables import Member, table_of

OWNER, MANAGER, REP = "owner", "manager", "rep"
ROLES = (OWNER, MANAGER, REP)

#: The actions only an owner may take, and how a refusal names them.
OWNER_ONLY = {
    "ladder": "change the ladder",
    "settings": "change the settings",
    "roles": "change members and roles",
    "import": "import",
    "restore": "restore a dump over the database",
}
#: The actions on one prospect: a rep only on their own, managers and owners on all.
PROSPECT_ACTIONS = {"edit": "change", "add": "add prospects for", "hand": "hand prospects to"}

_MEMBER = table_of(Member)


class Conn(Protocol):
    """A Session or a Connection: anything that executes a select."""

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any: ...


class NotAllowed(DomainError):
    """A change the user's role does not allow. Nothing was written."""


def role_of(conn: Conn, name: str) -> str | None:
    return conn.execute(select(_MEMBER.c.role).where(_MEMBER.c.name == name)).scalar()


def members_exist(conn: Conn) -> bool:
    return conn.execute(select(_MEMBER.c.name).limit(1)).first() is not None


def _article(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def require(conn: Conn, who: str, action: str, *, owner: str | None = None, name: str = "") -> None:
    """Refuse (NotAllowed) unless `who` may take `action` on the database `conn` is in.

    `action` is one of OWNER_ONLY, or "edit"/"add" for one prospect, whose `owner` (and `name`,
    for the message) are given."""
    # one query: `who`'s row first if there is one, else any member's, else none (no members)
    first = conn.execute(
        select(_MEMBER.c.name, _MEMBER.c.role).order_by((_MEMBER.c.name == who).desc()).limit(1)
    ).first()
    if first is None:
        return  # no members: as before roles
    role = first[1] if first[0] == who else None
    if role is None:
        raise NotAllowed(
            f"{who} is not a member of this database; ask its owner to add you (evpipe members add {who} --role rep)",
            field="who",
        )
    if action in OWNER_ONLY:
        if role != OWNER:
            raise NotAllowed(f"only an owner can {OWNER_ONLY[action]}; you are {_article(role)}", field="role")
        return
    if action not in PROSPECT_ACTIONS:  # pragma: no cover - a programming mistake
        raise ValueError(f"roles: unknown action {action!r}")
    if role == REP and (owner or "") != who:
        if action == "hand":
            raise NotAllowed(
                f"a rep may not hand a prospect to {owner or 'nobody'} (a manager or an owner may); you are a rep",
                field="owner",
            )
        if action == "add":
            raise NotAllowed(
                f"a rep may add prospects only for themselves, not for {owner or 'nobody'} (a manager or an owner "
                "may add them for anyone); you are a rep",
                field="owner",
            )
        whose = f"{owner}'s" if owner else "nobody's"
        what = f"{name} is {whose}" if name else f"that prospect is {whose}"
        raise NotAllowed(
            f"{what}: a rep may change only their own prospects (a manager or an owner may change anyone's); "
            "you are a rep",
            field="owner",
        )


def login_name() -> str:
    """The name of the account this process runs as (its effective user id), never an
    environment variable."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, AttributeError):  # pragma: no cover - no passwd entry (some containers)
        try:
            return getpass.getuser()
        except Exception:
            return "unknown"


@dataclass(frozen=True)
class Acting:
    """Who a session acts as, and why: `note` says when EVPIPE_USER was not honoured."""

    name: str
    role: str | None
    note: str = ""


def _dialect(conn: Conn) -> str:
    bind: Any = conn.get_bind() if hasattr(conn, "get_bind") else conn  # an Engine or Connection
    return str(bind.dialect.name)


def acting_user(conn: Conn, claimed: str | None = None) -> Acting:
    """Who this process acts as on the database `conn` reads: `claimed` (else EVPIPE_USER) while
    the database has no members or when the login name is an owner's; else the login name."""
    login = login_name()
    if _dialect(conn) != "sqlite":  # a server says who the connection is; no variable changes it
        from .identity import current_user

        server_role = current_user(conn)
        return Acting(server_role, role_of(conn, server_role))
    claimed = (os.environ.get("EVPIPE_USER") if claimed is None else claimed) or ""
    claimed = claimed.strip()
    if not claimed or claimed == login:
        return Acting(login, role_of(conn, login))
    if not members_exist(conn):
        return Acting(claimed, None)
    login_role = role_of(conn, login)
    if login_role == OWNER:
        return Acting(claimed, role_of(conn, claimed))
    return Acting(
        login,
        login_role,
        note=f"EVPIPE_USER={claimed} is ignored: only an owner may act as someone else; you are {login}",
    )


__all__ = [
    "Acting",
    "acting_user",
    "login_name",
    "MANAGER",
    "OWNER",
    "OWNER_ONLY",
    "REP",
    "ROLES",
    "Conn",
    "NotAllowed",
    "members_exist",
    "require",
    "role_of",
]
