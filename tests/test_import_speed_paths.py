"""The short cuts that make a big import fast give exactly what the long way gives: text cleaning,
amounts in summaries, the driver's rows of a bulk insert, and the cycle collector after a step."""

from __future__ import annotations

import gc
import random
import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy.dialects import sqlite

from evpipe.models import collector
from evpipe.models.db import driver_rows
from evpipe.models.errors import DomainError
from evpipe.models.import_types import gc_paused
from evpipe.models.tables import Prospect, table_of
from evpipe.models.values import UNITS, MoneyStyle, clean_text, to_cents


def _clean_the_long_way(text: str, max_len: int) -> str:
    text = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", text)
    text = re.sub(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)", "", text)
    text = re.sub(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]", "", text)
    text = re.sub(r"[\u2028\u2029\u0085]", " ", text)
    keep_newlines = max_len > 500
    if not keep_newlines:  # a line break in a one-line field parts the words around it
        text = re.sub(r"[\r\n]+", " ", text)
    text = "".join(
        ch
        for ch in text
        if ch == "\n" and keep_newlines or ch == "\t" or (ch >= " " and ch != "\x7f") and not (0x80 <= ord(ch) < 0xA0)
    )
    return text.replace("\t", " ").strip()


def test_clean_text_gives_what_the_full_cleaning_gives_for_every_character():
    samples = [chr(cp) for cp in range(0x3000)] + ["\u202e", "\u2066", "\u061c", "\U0001f600", "\ufeff"]
    for ch in samples:
        for text in (ch, f"a{ch}b", f" {ch} "):
            for max_len in (200, 20_000):
                assert clean_text(text, field="f", max_len=max_len) == _clean_the_long_way(text, max_len), repr(text)


def test_clean_text_on_mixed_hostile_text():
    rng = random.Random(13)
    alphabet = "ab \t\n\x1b[31m\x1b]0;x\x07\u202e\u2028\x85\x7f\x90é漢\u3000\xa0;?"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        for max_len in (200, 20_000):
            assert clean_text(text, field="f", max_len=max_len) == _clean_the_long_way(text, max_len), repr(text)


def test_clean_text_still_checks_printable_text():
    with pytest.raises(DomainError, match="cannot be empty"):
        clean_text("   ", field="name", max_len=10, required=True)
    with pytest.raises(DomainError, match="11 characters long"):
        clean_text(" hello world ", field="name", max_len=10)
    assert clean_text("  Café  ", field="name", max_len=10) == "Café"


def _money_the_long_way(style: MoneyStyle, amount: int, micros: bool, signed: bool) -> str:
    cents = to_cents(amount, micros=micros)
    decimals = style.decimals if style.decimals is not None else (2 if cents % 100 else 0)
    value = (Decimal(abs(cents)).scaleb(-2 - 3 * style.unit)).quantize(
        Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP
    )
    text = f"{value:,.{decimals}f}{UNITS[style.unit]}"
    if cents < 0:
        return "-" + text
    return ("+" + text) if signed else text


def test_amounts_are_written_as_the_decimal_rule_writes_them():
    rng = random.Random(7)
    amounts = [*range(-300, 300), *(rng.randrange(-(10**15), 10**15) for _ in range(3000)), 49, 50, 150, -50, -149]
    styles = [MoneyStyle(unit, decimals) for unit in range(4) for decimals in (None, 0, 1, 2)]
    for amount in amounts:
        for style in styles:
            for micros in (False, True):
                for signed in (False, True):
                    assert style(amount, micros=micros, signed=signed) == _money_the_long_way(
                        style, amount, micros, signed
                    ), (amount, style, micros, signed)


def test_driver_rows_convert_every_cell_as_sqlalchemy_would():
    dialect = sqlite.dialect(paramstyle="qmark")
    table = table_of(Prospect)
    names = list(table.c.keys())
    rows = []
    for i in range(300):
        row: dict[str, object] = {n: None for n in names}
        row.update(
            id=i,
            name=f"n{i}",
            created_at=datetime(2025, 1, 1 + i % 28, i % 24),
            updated_at=datetime(2026, 1, 1),
            last_touch_at=datetime(2025, 2, 1 + i % 5),
            # a date and the datetime at its midnight are equal neither in Python nor as stored
            closed_on=date(2025, 3, 1 + i % 3) if i % 2 else datetime(2025, 3, 1 + i % 3),
            needs_review=(i % 3 == 0) if i % 4 else i % 2,  # bools and ints in one column
            version=1,
        )
        rows.append(row)
    ready = driver_rows(table, rows, dialect)
    assert ready is not None
    sql, order, values = ready
    convert = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in order]
    expected = [tuple(f(r[n]) if f else r[n] for n, f in zip(order, convert)) for r in rows]
    assert values == expected
    assert [[type(v) for v in row] for row in values] == [[type(v) for v in row] for row in expected]
    assert sql.startswith("INSERT INTO prospect")


def test_the_collector_is_paused_during_an_import_step_and_back_after_it():
    seen = []

    @gc_paused
    def step(fail: bool) -> None:
        seen.append(gc.isenabled())
        inner()
        seen.append(gc.isenabled())
        if fail:
            raise DomainError("bad")

    @gc_paused
    def inner() -> None:
        seen.append(gc.isenabled())

    assert gc.isenabled()
    step(False)
    assert seen == [False, False, False] and gc.isenabled()
    with pytest.raises(DomainError):
        step(True)
    assert gc.isenabled()
    gc.disable()
    try:
        step(False)
        assert not gc.isenabled()  # off before: left off
    finally:
        gc.enable()


@pytest.fixture
def one_shot(monkeypatch):
    """This process as a one-shot command (models/collector.py), and as it was again after."""
    monkeypatch.setattr(collector, "_one_shot", True)
    monkeypatch.setattr(collector, "_kept", [])
    yield collector._kept
    gc.unfreeze()


def test_a_one_shot_command_keeps_and_freezes_what_a_step_made(one_shot):
    """`evpipe import` ends with os._exit: its rows are held to the end rather than freed one by
    one, and frozen as the step ends, so that the collector, on again, makes no pass over them."""
    made: list[list[int]] = []

    @gc_paused
    def step() -> None:
        made.extend([i] for i in range(50_000))
        collector.keep(made)

    frozen = gc.get_freeze_count()
    step()
    assert gc.isenabled()
    assert one_shot == [made]  # held, not freed when the caller lets go of it
    assert gc.get_freeze_count() >= frozen + len(made)  # out of the collector's passes
    assert gc.get_count()[0] < 1_000  # nothing young left for a first pass to walk


def test_a_step_that_fails_freezes_nothing_and_the_app_keeps_nothing(one_shot):
    @gc_paused
    def failing() -> None:
        raise DomainError("bad")

    frozen = gc.get_freeze_count()
    with pytest.raises(DomainError):
        failing()
    assert gc.get_freeze_count() == frozen and gc.isenabled()

    collector._one_shot = False  # the app, or a test's runner: nothing held, nothing frozen
    kept: list[list[int]] = []

    @gc_paused
    def step() -> None:
        kept.extend([i] for i in range(1_000))
        collector.keep(kept)

    step()
    assert one_shot == [] and gc.get_freeze_count() == frozen
