"""Parsing what people type: money, probabilities, months and dates."""

from datetime import date

import pytest

from evpipe.models.errors import DomainError
from evpipe.models.values import (
    format_money,
    month_add,
    parse_date,
    parse_money,
    parse_month,
    parse_probability,
)

TODAY = date(2026, 11, 27)  # a Friday


@pytest.mark.parametrize(
    "text, cents",
    [
        ("9500", 950000),
        ("9,500", 950000),
        ("9,500.00", 950000),
        ("$9,500", 950000),
        ("NZ$ 9 500.5", 950050),
        ("€1.234", None),
        ("0", 0),
        ("1,234,567.89", 123456789),
        ("12.5", 1250),
        ("9500 NZD", 950000),
        ("NZD 9,500", 950000),
        ("9500 usd", 950000),
        ("9500abc", None),  # letters that are no currency code: not an amount
        ("abc9500", None),
        ("9500 ABC", None),
    ],
)
def test_money(text, cents):
    if cents is None:
        with pytest.raises(DomainError):
            parse_money(text)
    else:
        assert parse_money(text) == cents


@pytest.mark.parametrize(
    "text, reason",
    [
        ("-5", "is negative"),
        ("$-9,500", "is negative"),
        ("NZD -9500", "is negative"),
        ("(9,500)", "is negative"),
        ("9500-", "is negative"),
        ("\u22129500", "is negative"),
        ("5000-8000", "is not an amount"),  # a range: no sign, and no one amount either
        ("12,345.6S-Tab", "is not an amount"),
        ("2026-12-01", "is not an amount"),
    ],
)
def test_money_refused_says_why(text, reason):
    """A minus or a bracket around the digits is a negative amount; a dash between digits is not
    a sign (the message said "is negative" for a range such as 5000-8000)."""
    with pytest.raises(DomainError, match=reason):
        parse_money(text)


def test_money_formatting_is_exact():
    assert format_money(123456789) == "1,234,567.89"
    assert format_money(150_000_000 * 10, micros=True, signed=True, decimals=False) == "+1,500"
    assert format_money(-5, micros=True) == "0.00"


@pytest.mark.parametrize("text, bp", [("25", 2500), ("25%", 2500), ("12.5", 1250), ("0", 0), ("100", 10000)])
def test_probability(text, bp):
    assert parse_probability(text) == bp


@pytest.mark.parametrize(
    "text, said", [("101%", "101% is"), ("101", "101% is"), ("-5 %", "-5% is"), ("150%%", "150% is")]
)
def test_probability_out_of_range_says_its_percent_sign_once(text, said):
    """Typed with its % sign, an amount over 100 read '101%% is outside 0-100'."""
    with pytest.raises(DomainError) as caught:
        parse_probability(text)
    assert f"probability: {said} outside 0-100" in str(caught.value)


@pytest.mark.parametrize(
    "text, month",
    [
        ("2027-01", "2027-01"),
        ("2027/1", "2027-01"),
        ("01/2027", "2027-01"),
        ("jan 2027", "2027-01"),
        ("January 2027", "2027-01"),
        ("jan", "2027-01"),
        ("nov", "2026-11"),
        ("dec", "2026-12"),
        ("Sept 27", "2027-09"),
    ],
)
def test_month(text, month):
    assert parse_month(text, today=TODAY) == month


@pytest.mark.parametrize("text", ["2027-13", "2027-00", "13/2027", "smarch", "", "2027"])
def test_bad_month(text):
    with pytest.raises(DomainError):
        parse_month(text, today=TODAY)


@pytest.mark.parametrize(
    "text, day",
    [
        ("2027-01-15", date(2027, 1, 15)),
        ("15/01/2027", date(2027, 1, 15)),
        ("15/1/27", date(2027, 1, 15)),
        ("15 jan", date(2027, 1, 15)),
        ("jan 15 2027", date(2027, 1, 15)),
        ("today", TODAY),
        ("tomorrow", date(2026, 11, 28)),
        ("+3d", date(2026, 11, 30)),
        ("2w", date(2026, 12, 11)),
        ("fri", date(2026, 12, 4)),
        ("mon", date(2026, 11, 30)),
        ("29 feb 2028", date(2028, 2, 29)),
        ("31/12", date(2026, 12, 31)),
        ("15/01", date(2027, 1, 15)),
        ("27/11", TODAY),
        ("5 jan 27", date(2027, 1, 5)),
        ("jan 5, 27", date(2027, 1, 5)),
        ("5 jan 99", date(1999, 1, 5)),
    ],
)
def test_date(text, day):
    assert parse_date(text, today=TODAY) == day


def test_month_first_dates_when_asked():
    assert parse_date("01/15/2027", today=TODAY, dayfirst=False) == date(2027, 1, 15)
    assert parse_date("01/15", today=TODAY, dayfirst=False) == date(2027, 1, 15)


def test_a_day_and_month_typed_as_numbers_read_as_typed_with_a_name() -> None:
    """The tester's report: '31/12' and '5 jan 27' were refused while '1/2/27' and 'jan 5' were
    taken. A day and month in numbers are the next such day, as '31 dec' is; a two-digit year
    after a month's name is read as after numbers (a contact point's '20/11': test_forms_dialogs)."""
    assert parse_date("31/12", today=TODAY) == parse_date("31 dec", today=TODAY)
    assert parse_date("5 jan 27", today=TODAY) == parse_date("5/1/27", today=TODAY)
    with pytest.raises(DomainError, match="February 2027 has 28 days"):
        parse_date("29/02", today=date(2026, 12, 5))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("31/02/2027", "February 2027 has 28 days"),
        ("29 feb 2027", "February 2027 has 28 days"),
        ("2027-04-31", "April 2027 has 30 days"),
        ("15/13/2027", "no month 13"),
        ("whenever", "not a date"),
    ],
)
def test_impossible_dates(text, fragment):
    with pytest.raises(DomainError) as err:
        parse_date(text, today=TODAY)
    assert fragment in str(err.value)


def test_a_day_and_month_without_a_year_are_checked_in_the_year_meant():
    """'29 feb' typed between March and the next leap February was refused ("February 2027 has 28
    days") instead of meaning 29 Feb 2028; '31 feb' typed in December named the February gone."""
    assert parse_date("29 feb", today=date(2027, 3, 1)) == date(2028, 2, 29)
    assert parse_date("feb 29", today=date(2027, 3, 1)) == date(2028, 2, 29)
    with pytest.raises(DomainError, match="February 2027 has 28 days"):
        parse_date("31 feb", today=date(2026, 12, 5))
    assert parse_date("5 dec", today=date(2026, 12, 5)) == date(2026, 12, 5)  # today is still this year's
    assert parse_date("4 dec", today=date(2026, 12, 5)) == date(2027, 12, 4)


def test_month_add():
    assert month_add("2026-11", 2) == "2027-01"
    assert month_add("2027-01", -1) == "2026-12"


@pytest.mark.parametrize("typed", ["0001-01-01", "1989-12-31", "2101-01-01", "9999-12-31"])
def test_dates_outside_1990_to_2100_are_refused_and_say_the_range(typed):
    with pytest.raises(DomainError, match="evpipe takes dates from 1990 to 2100"):
        parse_date(typed, today=TODAY)


@pytest.mark.parametrize("typed", ["1989-12", "2101-01", "jan 2101"])
def test_months_outside_1990_to_2100_are_refused(typed):
    with pytest.raises(DomainError, match="from 1990 to 2100"):
        parse_month(typed, today=TODAY)


def test_bidi_overrides_and_line_separators_never_reach_a_name():
    from evpipe.models.values import clean_text

    spoof = "Invoice \u202egnp.exe\u202c Ltd\u2066x\u2069\u200f"
    assert clean_text(spoof, field="name", max_len=200) == "Invoice gnp.exe Ltdx"
    assert clean_text("a\u2028b\u2029c", field="name", max_len=200) == "a b c"


def test_a_two_digit_year_is_read_one_way_everywhere():
    """'99' is 1999 typed as imported (69-99 are 1969-1999, 00-68 are 2000-2068, docs/import.md):
    the app and the command line read '1/2/99' as 2099 while an import read it as 1999."""
    from evpipe.models.import_cells import parse_cell_date, parse_cell_month
    from evpipe.models.values import parse_date, parse_month

    today = date(2026, 12, 5)
    assert parse_date("01/02/99", today=today) == date(1999, 2, 1)
    assert parse_date("1/2/27", today=today) == date(2027, 2, 1)
    assert parse_date("01/02/99", today=today) == parse_cell_date("01/02/99", column="d", order="dmy")
    assert parse_month("jan 99", today=today) == "1999-01" == parse_cell_month("jan 99", column="m", order=None)
    assert parse_month("jan 27", today=today) == "2027-01"
    with pytest.raises(DomainError, match="1970"):
        parse_month("jan 70", today=today)
