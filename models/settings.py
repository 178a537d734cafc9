"""The `setting` table: small named values kept with the data (e.g. `demo`, set on a demo database;
`kpi_period`, the KPI period of models/period.py).

Read and written through SQLAlchemy Core on the table models/tables.py describes, so the SQL is the
same on every database the store supports.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, insert, select, update

from . import clock
from .db import writer
from .period import SETTING_KEY, Period, current_period, parse_setting, period_of
from .roles import acting_user, require
from .tables import Setting, table_of

_SETTING = table_of(Setting)


def get_setting(engine: Engine, key: str) -> str | None:
    """The value stored under `key`, or None when there is none."""
    with engine.connect() as conn:
        return conn.execute(select(_SETTING.c.value).where(_SETTING.c.key == key)).scalar()


def set_setting(engine: Engine, key: str, value: str) -> None:
    """Store `value` under `key`, replacing any value it had."""
    with writer(engine).begin() as conn:
        put_setting(conn, key, value)


def put_setting(conn: Connection, key: str, value: str) -> None:
    """`set_setting` inside the caller's write transaction."""
    found = conn.execute(select(_SETTING.c.key).where(_SETTING.c.key == key)).first()
    if found is None:
        conn.execute(insert(_SETTING).values(key=key, value=value))
    else:
        conn.execute(update(_SETTING).where(_SETTING.c.key == key).values(value=value))


def kpi_period(engine: Engine) -> Period:
    """The database's KPI period today (models/period.py)."""
    return current_period(engine)


def set_kpi_period(engine: Engine, text: object, *, who: str | None = None) -> Period:
    """Set the database's KPI period from what a user typed ('12m', '2026-01', 'all'; see
    `period.parse_setting`) and return it as it stands today. Raises DomainError on bad input, and
    NotAllowed unless `who` (else whoever this process acts as) may change settings."""
    value = parse_setting(text)
    with engine.connect() as conn:
        require(conn, who or acting_user(conn).name, "settings")
    set_setting(engine, SETTING_KEY, value)
    return period_of(value, clock.today())
