"""The command line and the app accept exactly the same inputs (issue 8).

One table of what a rep might type, valid and not: money, months, when a contact point happened,
follow-ups. Each input goes to the `evpipe` commands (add --value/--month, log --when, follow) and
to the app's real screens driven by keys (the add form's value and month fields, the contact-point
dialog `n` and the follow-up prompt `f` on the pipeline); both must store the same value, or both
refuse. Both read through models/values.py; this test is what keeps a screen from growing its own
reading. The clock is fixed on Friday 27 Nov 2026 (tests/conftest.py).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from apphelpers import RecordingApp, settle
from click.testing import CliRunner
from textual.widgets import Input

from evpipe.models import open_db
from evpipe.models.store import Store
from evpipe.tui.cli import main
from evpipe.tui.widgets.prospect_table import ProspectTable

REFUSED = "refused"

#: (typed, cents stored) for a prospect's value.
MONEY = [
    ("9500", 9500_00),
    ("9,500.00", 9500_00),
    ("$9 500", 9500_00),
    ("0", 0),
    ("abc", REFUSED),
    ("-5", REFUSED),
    ("1e3", REFUSED),
    ("9500abc", REFUSED),  # not read as 9,500 with a currency
    ("9500 NZD", 9500_00),
]

#: (typed, month stored) for a prospect's expected month.
MONTHS = [
    ("2027-01", "2027-01"),
    ("jan 2027", "2027-01"),
    ("jan", "2027-01"),
    ("01/2027", "2027-01"),
    ("13/2027", REFUSED),
    ("smarch", REFUSED),
    ("2101-01", REFUSED),  # outside 1990-2100
]

#: (typed, day stored) for when a contact point happened: the past only.
CONTACT_DATES = [
    ("3 days ago", date(2026, 11, 24)),
    ("yesterday", date(2026, 11, 26)),
    ("fri", date(2026, 11, 27)),
    ("-2w", date(2026, 11, 13)),
    ("tomorrow", REFUSED),
    ("2027-03-01", REFUSED),
    ("0001-01-01", REFUSED),  # outside 1990-2100
]

#: (typed, follow-up stored) in this order on one prospect (each accepted one changes it).
FOLLOW_UPS = [
    ("+3d", date(2026, 11, 30)),
    ("clear", None),
    ("fri", date(2026, 12, 4)),
    ("none", None),
    ("2027-02-30", REFUSED),
    ("tomorrow", date(2026, 11, 28)),
    ("-", None),
    ("15/01/2027", date(2027, 1, 15)),
    ("someday", REFUSED),
    ("9999-12-31", REFUSED),  # outside 1990-2100
]

TARGET = "Target"


def _database(path: Path):
    engine = open_db(f"sqlite:///{path}")
    Store(engine, who="tester").add(TARGET, "1000", None, month="2027-01")
    return engine


def _stored(engine, name: str, field: str):
    try:
        p = Store(engine, who="tester").get(name)
    except Exception:  # not there: the input was refused
        return REFUSED
    return getattr(p, field)


def _last_contact(engine):
    store = Store(engine, who="tester")
    acts = store.activities(store.get(TARGET).id)
    return max(acts, key=lambda a: a.id).occurred_at.date() if acts else None


def _through_the_cli(tmp_path: Path) -> dict[str, list]:
    """Every input through `evpipe` commands, in process: what each stored (or REFUSED)."""
    engine = _database(tmp_path / "cli.db")
    runner = CliRunner()

    def run(*args: str) -> bool:
        result = runner.invoke(main, ["--db", str(tmp_path / "cli.db"), *args])
        assert result.exit_code in (0, 1), result.output
        return result.exit_code == 0

    out: dict[str, list] = {"money": [], "months": [], "contacts": [], "follow_ups": []}
    for i, (typed, _) in enumerate(MONEY):
        run("add", f"money {i}", "--value", typed)
        out["money"].append(_stored(engine, f"money {i}", "value_cents"))
    for i, (typed, _) in enumerate(MONTHS):
        run("add", f"month {i}", "--value", "1", "--month", typed)
        out["months"].append(_stored(engine, f"month {i}", "expected_month"))
    for typed, _ in CONTACT_DATES:
        before = _last_contact(engine)
        ok = run("log", TARGET, "call", "x", "--when", typed)
        out["contacts"].append(_last_contact(engine) if ok else REFUSED)
        assert ok or _last_contact(engine) == before
    for typed, _ in FOLLOW_UPS:
        ok = run("follow", TARGET, typed)
        out["follow_ups"].append(_stored(engine, TARGET, "next_follow_up") if ok else REFUSED)
    engine.dispose()
    return out


async def _through_the_app(tmp_path: Path) -> dict[str, list]:
    """Every input typed into the app's screens, in one session: what each stored (or REFUSED)."""
    engine = _database(tmp_path / "app.db")
    out: dict[str, list] = {"money": [], "months": [], "contacts": [], "follow_ups": []}
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        target = app.pipeline.query_one(ProspectTable).current_row.id

        async def in_dialog(screen: str, key: str, fields: dict[str, str], submit: str) -> bool:
            """Open `screen` with `key` unless a refusal left it open, fill it, submit: accepted?"""
            if type(app.screen).__name__ != screen:
                await pilot.press(key)
                await settle(app, pilot)
            assert type(app.screen).__name__ == screen
            for field, value in fields.items():
                app.screen.query_one(f"#{field}", Input).value = value
            await pilot.press(submit)
            await settle(app, pilot)
            if type(app.screen).__name__ == "FollowUpDialog" and screen == "ActivityDialog":
                await pilot.press("escape")  # a call logged asks for the next step: skipped here
                await settle(app, pilot)
                return True
            return type(app.screen).__name__ != screen

        for i, (typed, _) in enumerate(MONEY):
            ok = await in_dialog("ProspectForm", "a", {"name": f"money {i}", "value": typed, "month": ""}, "ctrl+s")
            out["money"].append(_stored(engine, f"money {i}", "value_cents") if ok else REFUSED)
        for i, (typed, _) in enumerate(MONTHS):
            ok = await in_dialog("ProspectForm", "a", {"name": f"month {i}", "value": "1", "month": typed}, "ctrl+s")
            out["months"].append(_stored(engine, f"month {i}", "expected_month") if ok else REFUSED)
        if type(app.screen).__name__ == "ProspectForm":  # the last input was refused: leave the form
            await pilot.press("escape")
            await settle(app, pilot)
            await pilot.press("y")
            await settle(app, pilot)
        assert app.pipeline.query_one(ProspectTable).go_to(target)
        await settle(app, pilot)
        for typed, _ in CONTACT_DATES:
            ok = await in_dialog("ActivityDialog", "n", {"text": "x", "when": typed}, "ctrl+s")
            out["contacts"].append(_last_contact(engine) if ok else REFUSED)
        if type(app.screen).__name__ == "ActivityDialog":  # the last input was refused: leave it
            await pilot.press("escape")
            await settle(app, pilot)
            await pilot.press("y")  # (what was typed is asked about first)
            await settle(app, pilot)
        for typed, _ in FOLLOW_UPS:
            ok = await in_dialog("TextPrompt", "f", {"text": typed}, "enter")
            out["follow_ups"].append(_stored(engine, TARGET, "next_follow_up") if ok else REFUSED)
    engine.dispose()
    return out


async def test_the_cli_and_the_app_accept_the_same_inputs(tmp_path):
    expected = {
        "money": [stored for _, stored in MONEY],
        "months": [stored for _, stored in MONTHS],
        "contacts": [stored for _, stored in CONTACT_DATES],
        "follow_ups": [stored for _, stored in FOLLOW_UPS],
    }
    cli = _through_the_cli(tmp_path)
    app = await _through_the_app(tmp_path)
    for kind, want in expected.items():
        typed = [
            t for t, _ in {"money": MONEY, "months": MONTHS, "contacts": CONTACT_DATES, "follow_ups": FOLLOW_UPS}[kind]
        ]
        assert list(zip(typed, cli[kind])) == list(zip(typed, want)), f"the CLI, {kind}"
        assert list(zip(typed, app[kind])) == list(zip(typed, want)), f"the app, {kind}"


@pytest.mark.parametrize("typed, stored", MONEY)
def test_the_money_table_is_what_models_reads(typed, stored):
    """The table itself is models/values.py's reading (so a change there shows up here first)."""
    from evpipe.models.errors import DomainError
    from evpipe.models.values import parse_money

    if stored is REFUSED:
        with pytest.raises(DomainError):
            parse_money(typed)
    else:
        assert parse_money(typed) == stored
