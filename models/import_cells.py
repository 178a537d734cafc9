"""Reading one cell of an imported spreadsheet: text, money, dates and months.

Dates: ISO (2027-01-15, 2027/01/15, with or without a time), day-first or month-first
(15/01/2027, 01/15/2027, 15-01-27, 15.01.2027), month names (15 Jan 2027, Jan 15, 2027,
15-Jan-27), Excel serial numbers (46402) and compact 20270115. Two-digit years follow the POSIX
rule: 69-99 are 1969-1999, 00-68 are 2000-2068. Whether 03/04/2027 is 3 April or 4 March is
decided by the file (`detect_date_order`), else by the user (--dayfirst / --monthfirst).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from .errors import DomainError
from .values import MAX_VALUE_CENTS, _checked_date, _month_word, check_year, parse_money, parse_month, two_digit_year

#: Characters a spreadsheet would read as the start of a formula (see neutralise()).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EXCEL_EPOCH = date(1899, 12, 30)


def neutralise(text: str) -> str:
    """A cell that a spreadsheet would run as a formula gets a leading apostrophe; so does one that
    already starts with an apostrophe, so that `strip_neutraliser` gives back exactly what was
    written."""
    if text and (text[0] in FORMULA_START or text[0] == "'"):
        return "'" + text
    return text


def strip_neutraliser(text: str) -> str:
    """Undo `neutralise`: drop one leading apostrophe put before a formula character or another
    apostrophe. Any other text (`'hello`) is kept as typed."""
    if len(text) > 1 and text[0] == "'" and (text[1] in FORMULA_START or text[1] == "'"):
        return text[1:]
    return text


def cell_text(value: Any) -> str:
    """Any cell as the text a person typed, trimmed."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
        return strip_neutraliser(text) if text[:1] == "'" else text  # only an apostrophe can start one
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value).strip()


def _shown(text: str) -> str:
    return text if len(text) <= 30 else text[:27] + "..."


# ---------------------------------------------------------------- money

_DECIMAL_COMMA = re.compile(r"^(\d{1,3}(?:[. \u00a0\u202f]\d{3})+|\d+),(\d{1,2})$")


def parse_cell_money(value: Any, *, column: str) -> int | None:
    """Cents, or None for an empty cell. Numbers from a workbook are taken exactly (to the cent);
    text is read like typed input, and a decimal comma (12,50 or 1.234,56) is understood."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise DomainError(f"{column}: {value!r} is not an amount", field=column)
    if isinstance(value, (int, float, Decimal)):
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise DomainError(f"{column}: {value!r} is not an amount", field=column)
            exact = Decimal(repr(value))
        else:
            exact = Decimal(value)
        cents = exact * 100
        whole = cents.to_integral_value()
        if abs(cents - whole) > Decimal("0.0001"):
            raise DomainError(
                f"{column}: {cell_text(value)} has more than 2 decimals; amounts are to the cent", field=column
            )
        if whole < 0:
            raise DomainError(f"{column}: {cell_text(value)} is negative; a value must be 0 or more", field=column)
        if whole > MAX_VALUE_CENTS:
            return parse_money(format(exact, "f"), field=column)  # raises the usual "too large"
        return int(whole)
    text = cell_text(value)
    if not text:
        return None
    m = _DECIMAL_COMMA.match(text.lstrip("$€£¥₹ ").rstrip("$€£¥₹ "))
    if m and not re.fullmatch(r"\d{1,3},\d{3}", text):
        text = re.sub(r"[. \u00a0\u202f]", "", m[1]) + "." + m[2]
    return parse_money(text, field=column)


# ---------------------------------------------------------------- dates

_ISO = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_NUMERIC = re.compile(
    r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp][Mm])?)?$"
)
_DAY_MONTH = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?[\s\-/.]*([A-Za-z]+)\.?[\s,\-/.]*(\d{4}|\d{2})?$")
#: The year after the day needs a comma or a separator: 'Jan-2026' and 'Mar 2027' name a month, not
#: the 20th of it (the day '20' and the year '26' ran together).
_MONTH_DAY = re.compile(r"^([A-Za-z]+)\.?[\s\-/.]*(\d{1,2})(?:st|nd|rd|th)?(?:(?:,[\s\-/.]*|[\s\-/.]+)(\d{4}|\d{2}))?$")


def _year(text: str | None, default: int) -> int:
    if not text:
        return default
    return int(text) if len(text) == 4 else two_digit_year(int(text))


def excel_serial(number: float) -> date:
    """An Excel (1900 date system) serial number as a date."""
    return _EXCEL_EPOCH + timedelta(days=int(number))


def parse_cell_date(value: Any, *, column: str, order: str | None, today: date | None = None) -> date | None:
    """A date, or None for an empty cell. `order` is 'dmy', 'mdy' or None (then a numeric date
    whose day and month could be swapped is refused with a question)."""
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        found = value.date() if isinstance(value, datetime) else value
        check_year(found.year, cell_text(value), column)
        return found
    if isinstance(value, bool):
        raise DomainError(f"{column}: {value!r} is not a date", field=column)
    if isinstance(value, (int, float, Decimal)):
        found = _serial(float(value), column, cell_text(value))
        check_year(found.year, cell_text(value), column)
        return found
    text = cell_text(value)
    if not text:
        return None
    shown = _shown(text)
    if m := _ISO.match(text):
        return _checked_date(int(m[1]), int(m[2]), int(m[3]), shown, column)
    if m := _NUMERIC.match(text):
        a, b, year = int(m[1]), int(m[2]), _year(m[3], 0)
        if order is None:
            if a == b or a > 12 or b > 12:
                order = "dmy" if a > 12 else "mdy" if b > 12 else "dmy"
            else:
                raise DomainError(
                    f"{column}: {shown!r} could be {a} {_month_name(b)} or {b} {_month_name(a)}; "
                    "say which with --dayfirst or --monthfirst",
                    field=column,
                )
        day, month = (a, b) if order == "dmy" else (b, a)
        return _checked_date(year, month, day, shown, column)
    if re.fullmatch(r"\d{8}", text):
        return _checked_date(int(text[:4]), int(text[4:6]), int(text[6:]), shown, column)
    if re.fullmatch(r"\d{1,7}(\.\d+)?", text):
        return _serial(float(text), column, shown)
    today = today or date.today()
    for pattern, day_group, month_group in ((_DAY_MONTH, 1, 2), (_MONTH_DAY, 2, 1)):
        if m := pattern.match(text):
            named = _month_word(m[month_group])
            if named is not None:
                return _checked_date(_year(m[3], today.year), named, int(m[day_group]), shown, column)
    raise DomainError(
        f"{column}: {shown!r} is not a date; write it as 2027-01-15, 15/01/2027, 15 Jan 2027 or an Excel date",
        field=column,
    )


def _month_name(month: int) -> str:
    import calendar

    return calendar.month_name[month] if 1 <= month <= 12 else str(month)


def _serial(number: float, column: str, shown: str) -> date:
    if not 1 <= number < 2958466:
        raise DomainError(f"{column}: {shown!r} is not a date (nor an Excel date number)", field=column)
    return excel_serial(number)


def detect_date_order(values: Iterable[Any]) -> tuple[str | None, str]:
    """Decide day-first or month-first from the data: a first number above 12 can only be a day,
    a second one above 12 only a day. Returns (order or None, why). Raises when the file holds
    both kinds."""
    day_first_example = month_first_example = None
    ambiguous = None
    # each distinct text once, in the order first seen (a column's dates repeat; a repeat changes
    # nothing: each example is the first found)
    for value in dict.fromkeys(v for v in values if isinstance(v, str)):
        m = _NUMERIC.match(strip_neutraliser(value.strip()))
        if not m:
            continue
        a, b = int(m[1]), int(m[2])
        if a > 12 and b <= 12:
            day_first_example = day_first_example or value.strip()
        elif b > 12 and a <= 12:
            month_first_example = month_first_example or value.strip()
        elif a != b and a <= 12 and b <= 12:
            ambiguous = ambiguous or value.strip()
    if day_first_example and month_first_example:
        raise DomainError(
            f"dates: the file has both day-first ({day_first_example}) and month-first "
            f"({month_first_example}) dates; correct one of them and import again",
            field="date",
        )
    if day_first_example:
        return "dmy", f"day first (the file has {day_first_example})"
    if month_first_example:
        return "mdy", f"month first (the file has {month_first_example})"
    if ambiguous:
        return None, f"unknown: dates such as {ambiguous} could be either; say --dayfirst or --monthfirst"
    return None, "not needed (no date in the file has day and month that could be swapped)"


def parse_cell_month(value: Any, *, column: str, order: str | None, today: date | None = None) -> str | None:
    """'YYYY-MM' from a month (2027-01, Jan 2027, 01/2027) or any date; None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        day = parse_cell_date(value, column=column, order=order, today=today)
        assert day is not None  # a date cell is never empty
        return f"{day.year:04d}-{day.month:02d}"
    text = cell_text(value)
    if not text:
        return None
    try:
        return parse_month(text, today=today, field=column)
    except DomainError:
        pass
    try:
        found = parse_cell_date(value, column=column, order=order, today=today)
    except DomainError:
        raise DomainError(
            f"{column}: {_shown(text)!r} is not a month; write it as 2027-01, Jan 2027 or a date",
            field=column,
        ) from None
    return f"{found.year:04d}-{found.month:02d}" if found else None


def parse_cell_bool(value: Any, *, column: str) -> bool:
    text = cell_text(value).casefold()
    if text in ("", "0", "no", "n", "false", "f", "-"):
        return False
    if text in ("1", "yes", "y", "true", "t", "x", "✓"):
        return True
    raise DomainError(f"{column}: {_shown(text)!r} is not yes or no", field=column)
