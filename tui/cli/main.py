"""The `evpipe` group and what every command shares: the context (the database, opened on first
use), domain errors as a message and an exit code, JSON, tables and safe user text.

Commands live beside this module (prospects, ladder, insight, io, demo) and are registered on the
group in tui/cli/__init__.py. Heavy modules (SQLAlchemy, Textual, the store) are imported inside
the commands, so `evpipe --help` and a quick `evpipe add` start fast."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from evpipe.models.errors import DomainError

EXIT_ERROR = 1


class Ctx:
    """What every command needs: the database URL, opened on first use."""

    def __init__(self, db: str | None) -> None:
        self.db_option = db
        self._engine = None

    @property
    def url(self) -> str:
        from evpipe.models.locations import resolve_db

        return resolve_db(self.db_option)

    @property
    def engine(self):
        if self._engine is None:
            from evpipe.models import open_db

            self._engine = open_db(self.url)
        return self._engine

    def store(self):
        from evpipe.models.store import Store

        return Store(self.engine)

    def changed(self) -> None:
        """After a write: keep the KPI history up to date."""
        from evpipe.models.history import record_snapshot

        record_snapshot(self.engine)


pass_ctx = click.make_pass_decorator(Ctx)


def fail(message: str) -> None:
    click.echo(f"evpipe: {message}", err=True)
    sys.exit(EXIT_ERROR)


def domain_errors(fn: Callable) -> Callable:
    """Turn domain errors into a clear message on stderr and a non-zero exit."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            fail(str(exc))
        except BrokenPipeError:  # `evpipe list | head`: the reader has gone; say nothing more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))

    return wrapper


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def safe(text: str | None) -> str:
    """User text for a terminal: no escape sequences or control characters."""
    from evpipe.models.values import clean_text

    return clean_text(text or "", field="text", max_len=10**9)


def table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


# ---------------------------------------------------------------- the group


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="PATH_OR_URL",
    envvar="EVPIPE_DB",
    help="Database file or URL (else $EVPIPE_DB, else your data directory).",
)
@click.version_option(package_name="evpipe")
@click.pass_context
def main(click_ctx: click.Context, db: str | None) -> None:
    """evpipe: your sales pipeline as Expected Value.

    Run without a command to open the app."""
    click_ctx.obj = Ctx(db)
    if click_ctx.invoked_subcommand is None:
        from evpipe.models.rawdb import schema_ready

        url = click_ctx.obj.url
        if not schema_ready(url):  # new, older or not SQLite: create or upgrade it now
            try:
                _ = click_ctx.obj.engine
            except DomainError as exc:
                fail(str(exc))
        run_app(url)


def run_app(url: str) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail(
            "the app needs a terminal; from scripts and cron use the commands "
            "(`evpipe kpi`, `evpipe list`, `evpipe review` ...; `evpipe --help` lists them)"
        )
    from ..app import run

    run(url)
