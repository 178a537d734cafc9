"""Exact money and probabilities, and the parsing of what people type.

Money is stored as integer cents. Probabilities are stored as integer basis points of a percent
(hundredths of a percent: 25% is 2500, 12.5% is 1250), so that value x probability is an exact
integer in *micros* (millionths of the currency unit): ``ev_micros = value_cents * probability_bp``.
Nothing here ever goes through a float.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .clock import FIRST_YEAR, LAST_YEAR
from .errors import DomainError, SumTooLarge, WriteLocked

#: Largest value a prospect can carry: 10 billion less a cent. TV sums stay inside 64 bits up to
#: 9 million such prospects, EV sums (micros) up to an EV of 9.2 trillion (docs/domain.md).
MAX_VALUE_CENTS = 999_999_999_999
#: The custom fields one prospect keeps, at most (a form, an import's extra columns).
MAX_CUSTOM_FIELDS = 50
BP_PER_PERCENT = 100
FULL_BP = 100 * BP_PER_PERCENT  # 100 %
MICROS_PER_CENT = FULL_BP  # value_cents * bp  -> micros
#: The sums are kept in 64-bit integers (SQLite's and PostgreSQL's): EV in micros up to MAX_SUM,
#: an EV of 9,223,372,036,854.77 (MAX_SUM_CENTS, as said to users). A change that would take a
#: KPI reading past it is refused (models/snapshot_deltas.py: `apply` by the change's own delta;
#: `ev_fits`, the live prospects' whole EV, where a recount follows anyway).
MAX_SUM = 2**63 - 1
MAX_SUM_CENTS = MAX_SUM // MICROS_PER_CENT
MICROS_PER_UNIT = 100 * MICROS_PER_CENT
CENT = Decimal("0.01")

_CURRENCY = "$€£¥₹"
#: Currency codes an amount may carry before or after it ('NZD 9,500', '9500 usd'); any other
#: letters make it not an amount ('9500abc' is refused, not read as 9,500).
CURRENCY_CODES = frozenset(
    ["AUD", "BRL", "CAD", "CHF", "CNY", "DKK", "EUR", "FJD", "GBP", "HKD", "INR", "JPY", "MXN", "NOK", "NZD"]
    + ["SEK", "SGD", "USD", "XPF", "ZAR"]
)
_MONEY_PLAIN = re.compile(r"^\d+(\.\d{1,2})?$")
_MONEY_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d{1,2})?$")
_MONEY_SPACED = re.compile(r"^\d{1,3}([ '_\u00a0\u202f]\d{3})+(\.\d{1,2})?$")
#: A sign of a negative amount: a minus or an opening bracket before the digits (after a currency:
#: '-500', 'NZ$ -500', '(500)'), or a minus or a closing bracket after them ('500-'). A dash between
#: digits ('5000-8000', a range) is no sign: such a text is not an amount.
_NEGATIVE = re.compile(r"^[A-Za-z]{0,3}\s*[" + _CURRENCY + r"]?\s*[-(\u2212]|[-)\u2212]\s*$")


def parse_money(text: object, *, field: str = "value") -> int:
    """Parse a money amount as typed ('9500', '9,500.00', '$9 500', 'NZ$12,000') into cents."""
    if isinstance(text, bool):
        raise DomainError(f"{field}: expected an amount such as 9500 or 9,500.00", field=field)
    if isinstance(text, int):
        raw = str(text)
    elif isinstance(text, Decimal):
        raw = format(text, "f")
    else:
        raw = str(text if text is not None else "").strip()
    shown = raw if len(raw) <= 40 else raw[:37] + "..."
    if not raw:
        raise DomainError(f"{field}: an amount is required, such as 9500 or 9,500.00", field=field)
    s = raw
    if _NEGATIVE.search(s):
        raise DomainError(f"{field}: {shown!r} is negative; a value must be 0 or more", field=field)
    if not (_MONEY_PLAIN.match(s) or _MONEY_GROUPED.match(s)):  # digits alone have no currency to drop
        s = _without_currency(s)
    if _MONEY_PLAIN.match(s):
        digits = s
    elif _MONEY_GROUPED.match(s):
        digits = s.replace(",", "")
    elif _MONEY_SPACED.match(s):
        digits = re.sub(r"[ '_\u00a0\u202f]", "", s)
    else:
        raise DomainError(
            f"{field}: {shown!r} is not an amount; type digits with an optional thousands "
            "separator and up to 2 decimals, such as 9500, 9,500.00 or $9 500",
            field=field,
        )
    try:
        cents = int((Decimal(digits) * 100).to_integral_exact())
    except InvalidOperation:  # pragma: no cover - the regexes above admit only digits
        raise DomainError(f"{field}: {shown!r} is not an amount", field=field) from None
    if cents > MAX_VALUE_CENTS:
        raise DomainError(
            f"{field}: {shown!r} is too large; the most evpipe takes is {format_money(MAX_VALUE_CENTS)}",
            field=field,
        )
    return cents


#: `_without_currency`'s patterns, compiled once (an import reads an amount a row).
_SIGN_BEFORE = re.compile(r"^(?:[A-Za-z]{1,3})?\s*[" + _CURRENCY + r"]\s*")
_CODE_BEFORE = re.compile(r"^([A-Za-z]{3})\s*(?=\d)")
_SIGN_AFTER = re.compile(r"\s*[" + _CURRENCY + r"]$")
_CODE_AFTER = re.compile(r"(?<=\d)\s*([A-Za-z]{3})$")


def _without_currency(s: str) -> str:
    """The amount without its currency: a sign with an optional country prefix (NZ$, US$, $, €) or a
    known code (NZD, usd) before it, or a sign or known code after it."""
    before = _SIGN_BEFORE.match(s)
    if before is None and (code := _CODE_BEFORE.match(s)) and code[1].upper() in CURRENCY_CODES:
        before = code
    if before is not None:
        s = s[before.end() :]
    after = _SIGN_AFTER.search(s)
    if after is None and (code := _CODE_AFTER.search(s)) and code[1].upper() in CURRENCY_CODES:
        after = code
    if after is not None:
        s = s[: after.start()]
    return s.strip()


#: Signs that name one currency only, as its code ('$' and '¥' name several, and stay signs).
_SIGN_CODES = {"€": "EUR", "£": "GBP", "₹": "INR"}


def currency_of(text: str) -> str | None:
    """The currency an amount as typed names, as `_without_currency` finds it: a code ('EUR' for
    '€' or 'eur', 'NZD' for 'NZ$'), or a sign that names several ('$', '¥'); None when it names
    none (digits alone, or not an amount)."""
    s = text.strip()
    sign = None
    if before := _SIGN_BEFORE.match(s):
        sign = before[0].replace(" ", "").upper()
    elif (code := _CODE_BEFORE.match(s)) and code[1].upper() in CURRENCY_CODES:
        return code[1].upper()
    elif after := _SIGN_AFTER.search(s):
        sign = after[0].strip()
    elif (code := _CODE_AFTER.search(s)) and code[1].upper() in CURRENCY_CODES:
        return code[1].upper()
    if sign is None:
        return None
    if len(sign) > 1 and sign.endswith("$") and f"{sign[:2]}D" in CURRENCY_CODES:  # NZ$, US$, AU$ ...
        return f"{sign[:2]}D"
    return _SIGN_CODES.get(sign, sign)


def cents_to_decimal(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def micros_to_decimal(micros: int | Decimal) -> Decimal:
    """EV micros to money, rounded half-up to the cent (the only rounding evpipe does)."""
    return (Decimal(micros) / 1_000_000).quantize(CENT, rounding=ROUND_HALF_UP)


def micros_to_cents(micros: int) -> int:
    return int(micros_to_decimal(micros) * 100)


def money_str(amount: int | Decimal, *, micros: bool = False) -> str:
    """Plain decimal string for JSON and files: '9500.00'."""
    if type(amount) is int:  # the same text by integer arithmetic (a listing writes a million of them)
        whole, rest = divmod(abs(to_cents(amount, micros=True) if micros else amount), 100)
        return f"{'-' if amount < 0 else ''}{whole}.{rest:02d}"  # '-0.00' for micros that round to no cent
    value = micros_to_decimal(amount) if micros else cents_to_decimal(int(amount))
    return format(value, "f")


def format_money(amount: int, *, micros: bool = False, signed: bool = False, decimals: bool = True) -> str:
    """Human money: '9,500.00' (or '9,500' without decimals, '+1,500' when signed)."""
    if type(amount) is int:  # the same text by integer arithmetic (tables of many rows)
        cents = to_cents(amount, micros=True) if micros else amount
        if decimals:
            whole, rest = divmod(abs(cents), 100)
            text, negative = f"{whole:,}.{rest:02d}", cents < 0
        else:
            units = (abs(cents) + 50) // 100  # half-up, away from zero
            text, negative = f"{units:,}", cents < 0 and units > 0
        if negative:
            return "-" + text
        return ("+" + text) if signed else text
    value = micros_to_decimal(amount) if micros else cents_to_decimal(amount)
    if not decimals:
        value = value.quantize(Decimal(1), rounding=ROUND_HALF_UP)
        text = f"{abs(value):,.0f}"
    else:
        text = f"{abs(value):,.2f}"
    if value < 0:
        return "-" + text
    return ("+" + text) if signed else text


# ---------------------------------------------------------------- showing money
#
# The one rule for every amount evpipe shows (screens, notices, journal summaries, CLI echoes):
#
# - An amount reads as it is: with its cents when it has cents (12,750.50), in whole units when
#   it has none (13,000). Never rounded to a figure it is not (9,999,999,999.99 stays that).
# - A column too narrow for every one of its amounts in that form shows them all in whole units
#   (rounded half-up), and if that does not fit either, all in a compact form with one unit, k,
#   M or B (thousands, millions, billions), and one number of decimals (2, 1 or 0), the finest
#   that fits every amount of the column ('1.25M', '0.31M'): the column stays comparable and
#   the unit says the scale. An amount that would read with one significant digit or none in
#   that unit ('0.00M' for 1,200 and '0.01M' for 9,500, beside one of 10 billion) is written in
#   the largest smaller unit where it reads with two ('1.20k', '9.50k'; plain below that), when
#   that fits the column.
# - Nothing is ever cut: every amount of a column fits its width.
# - Exact arithmetic (int and Decimal); EV micros round half-up to the cent first, as
#   `micros_to_decimal` does, then to the unit shown.

#: Units of the compact form, by power of 1000.
UNITS = ("", "k", "M", "B")
_DECIMALS = (2, 1, 0)


def to_cents(amount: int, *, micros: bool = False) -> int:
    """An amount in cents; EV micros rounded half-up (away from zero) to the cent."""
    if not micros:
        return int(amount)
    whole, rest = divmod(abs(int(amount)), MICROS_PER_CENT)
    whole += 2 * rest >= MICROS_PER_CENT
    return whole if amount >= 0 else -whole


def balanced_cents(amounts: list[int], *, micros: bool = False) -> list[int]:
    """The amounts in cents, rounded so that they add up to their sum rounded as one amount is
    (`to_cents`): each is its value to the cent below, and the cents that rounding leaves over go
    to those it cut most. The terms of a bridge then add up as printed: two EV terms of 125.125
    each read 125.13 and 125.12 under a total of 250.25 (not 125.13 twice)."""
    unit = MICROS_PER_CENT if micros else 1
    floors = [a // unit for a in amounts]
    left = to_cents(sum(amounts), micros=micros) - sum(floors)
    cut_most = sorted(range(len(amounts)), key=lambda i: (-(amounts[i] - floors[i] * unit), i))
    out = list(floors)
    for i in cut_most[: max(0, min(left, len(out)))]:
        out[i] += 1
    return out


@dataclass(frozen=True)
class MoneyStyle:
    """How a column's amounts are written: `unit` a power of 1000 (0 plain, 1 k, 2 M, 3 B) and
    `decimals` the digits after the point; None (plain amounts only): cents when the amount has
    them, none when it is whole. `width`: the column's cells, which an amount written in a smaller
    unit (one that would read with one significant digit or none in this one) must fit; None: no
    smaller unit."""

    unit: int = 0
    decimals: int | None = None
    width: int | None = field(default=None, compare=False)

    def __call__(self, amount: int, *, micros: bool = False, signed: bool = False) -> str:
        """'12,750.50', '13,000', '+312.50k', '1.25M': `signed` puts '+' before an amount >= 0."""
        cents = to_cents(amount, micros=micros)
        if self.unit and cents and self.width is not None and _too_coarse(cents, self.unit, self.decimals):
            smaller = self._smaller(cents, signed)
            if smaller is not None:
                return smaller
        decimals = self.decimals if self.decimals is not None else (2 if cents % 100 else 0)
        if self.unit == 0 and decimals in (0, 2):  # plain amounts, in whole numbers (an import writes thousands)
            whole, part = divmod(abs(cents), 100)
            text = f"{whole:,}.{part:02d}" if decimals else f"{whole + (part >= 50):,}"  # rounded half up
        else:
            value = (Decimal(abs(cents)).scaleb(-2 - 3 * self.unit)).quantize(
                Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP
            )
            text = f"{value:,.{decimals}f}{UNITS[self.unit]}"
        if cents < 0:
            return "-" + text
        return ("+" + text) if signed else text

    def _smaller(self, cents: int, signed: bool) -> str | None:
        """A non-zero amount that would read with one digit or none here ('0.00M' for 1,200,
        '0.01M' for 9,500) in the largest smaller unit where it reads with two ('1.20k', '9.50k';
        plain below that), if that fits the width."""
        unit = self.unit - 1
        while unit and _too_coarse(cents, unit, self.decimals):
            unit -= 1
        for style in (MoneyStyle(unit, self.decimals),) if unit else (EXACT, WHOLE):
            text = style(cents, signed=signed)
            if len(text) <= (self.width or 0) and not (style is WHOLE and abs(cents) < 50):
                return text
        return None

    @property
    def compact(self) -> bool:
        return self.unit > 0


def _too_coarse(cents: int, unit: int, decimals: int | None) -> bool:
    """Whether an amount in `unit` with `decimals`, rounded half up, has one significant digit or
    none ('0.00M', '0.01M', '5k')."""
    step = 100 * 1000**unit  # one of the unit, in cents
    return (2 * abs(cents) * 10 ** (decimals or 0) + step) // (2 * step) < 10


EXACT = MoneyStyle(0, None)
WHOLE = MoneyStyle(0, 0)
WITH_CENTS = MoneyStyle(0, 2)


def money_style_for(
    low: int, high: int, cents_low: int = 0, cents_high: int = 0, *, width: int | None = None, signed: bool = False
) -> MoneyStyle:
    """The style of a column from its smallest and largest amount (in cents) and the smallest and
    largest of those with cents (0 when none); `width`: the cells the column gives an amount."""
    if width is None:
        return EXACT

    def fits(style: MoneyStyle, *amounts: int) -> bool:
        return all(len(style(a, signed=signed)) <= width for a in amounts)

    if fits(WHOLE, low, high) and fits(WITH_CENTS, *(c for c in (cents_low, cents_high) if c)):
        return EXACT
    candidates = [WHOLE] + [MoneyStyle(unit, d, width) for unit in range(1, len(UNITS)) for d in _DECIMALS]
    for style in candidates:
        if fits(style, low, high):
            return style
    return candidates[-1]


def money_style(
    amounts: Iterable[int], *, micros: bool = False, width: int | None = None, signed: bool = False
) -> MoneyStyle:
    """The one style for a column of these amounts, fitting `width` cells (see the rule above)."""
    low = high = cents_low = cents_high = 0
    for amount in amounts:
        c = to_cents(amount, micros=micros)
        if c < low:
            low = c
        elif c > high:
            high = c
        if c % 100:
            if c < cents_low:
                cents_low = c
            elif c > cents_high:
                cents_high = c
    return money_style_for(low, high, cents_low, cents_high, width=width, signed=signed)


def format_amount(amount: int, *, micros: bool = False, signed: bool = False) -> str:
    """An amount as a sentence says it: '13,000', '12,750.50', '+199.60' (see the rule above)."""
    return EXACT(amount, micros=micros, signed=signed)


def parse_probability(text: object, *, field: str = "probability") -> int:
    """A percentage 0-100 with up to two decimals ('25', '25%', '12.5') -> basis points."""
    raw = str(text if text is not None else "").strip()
    shown = raw if len(raw) <= 20 else raw[:17] + "..."
    s = raw.rstrip("%").strip()
    if not re.match(r"^-?\d+(\.\d{1,2})?$", s):
        raise DomainError(
            f"{field}: {shown!r} is not a percentage; type a number from 0 to 100, such as 25 or 12.5",
            field=field,
        )
    value = Decimal(s)
    if value < 0 or value > 100:
        number = s if len(s) <= 20 else s[:17] + "..."  # (its % once: '101%' read '101%%')
        raise DomainError(
            f"{field}: {number}% is outside 0-100; a probability is a percentage from 0 to 100",
            field=field,
        )
    return int(value * BP_PER_PERCENT)


def bp_to_ratio(bp: int) -> float:
    """Basis points to a 0..1 number, for JSON output only."""
    return bp / FULL_BP


def format_percent(bp: int) -> str:
    value = Decimal(bp) / BP_PER_PERCENT
    if value == value.to_integral():
        return f"{value:.0f}%"
    return f"{value.normalize():f}%"


# ---------------------------------------------------------------- months and dates

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9


def _month_word(word: str) -> int | None:
    return _MONTHS.get(word.lower().rstrip("."))


def parse_expected_month(text: object, *, field: str = "month") -> str | None:
    """A prospect's expected month as typed, or None for no month: blank, 'none', 'clear' or '-',
    the words that clear a follow-up too (`edit --month none` was refused; only "" cleared it)."""
    if text is None or str(text).strip().lower() in FOLLOW_UP_CLEAR:
        return None
    return parse_month(text, field=field)


def parse_month(text: object, *, today: date | None = None, field: str = "month") -> str:
    """Accept '2027-01', '2027/1', '01/2027', 'jan 2027', 'January 2027', 'jan' (the next January,
    or this one if it is January now) and return 'YYYY-MM'."""
    from . import clock

    raw = str(text if text is not None else "").strip()
    shown = raw if len(raw) <= 30 else raw[:27] + "..."
    hint = "type it as 2027-01, jan 2027 or jan"
    if not raw:
        raise DomainError(f"{field}: a month is required; {hint}", field=field)
    today = today or clock.today()
    year: int | None = None
    month: int | None = None
    if m := re.fullmatch(r"(\d{4})[-/.](\d{1,2})", raw):
        year, month = int(m[1]), int(m[2])
    elif m := re.fullmatch(r"(\d{1,2})[-/.](\d{4})", raw):
        month, year = int(m[1]), int(m[2])
    elif m := re.fullmatch(r"([A-Za-z]+\.?)[\s,'-]*(\d{4}|\d{2})?", raw):
        month = _month_word(m[1])
        if month is None:
            raise DomainError(f"{field}: {shown!r} is not a month; {hint}", field=field)
        if m[2]:
            year = two_digit_year(int(m[2])) if len(m[2]) == 2 else int(m[2])
        else:
            year = today.year if month >= today.month else today.year + 1
    else:
        raise DomainError(f"{field}: {shown!r} is not a month; {hint}", field=field)
    if not 1 <= month <= 12:
        raise DomainError(f"{field}: {shown!r} has no month {month}; months run 01-12; {hint}", field=field)
    check_year(year, shown, field)
    return f"{year:04d}-{month:02d}"


def month_add(month: str, delta: int) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + (mon - 1) + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_label(month: str | None) -> str:
    if not month:
        return ""
    return f"{calendar.month_abbr[int(month[5:7])]} {month[:4]}"


_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_WEEKDAYS.update({name.lower(): i for i, name in enumerate(calendar.day_abbr)})


def two_digit_year(yy: int) -> int:
    """A year typed in two digits, everywhere (typed, on the command line, imported): 69-99 are
    1969-1999, 00-68 are 2000-2068 (docs/import.md)."""
    return 1900 + yy if yy >= 69 else 2000 + yy


def check_year(year: int, shown: str, field: str) -> int:
    """A year evpipe takes for a date or month: from FIRST_YEAR to LAST_YEAR."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise DomainError(
            f"{field}: {shown!r} is in the year {year}; evpipe takes dates from {FIRST_YEAR} to {LAST_YEAR}",
            field=field,
        )
    return year


def _checked_date(year: int, month: int, day: int, shown: str, field: str) -> date:
    check_year(year, shown, field)
    if not 1 <= month <= 12:
        raise DomainError(f"{field}: {shown!r} has no month {month}; months run 1-12", field=field)
    last = calendar.monthrange(year, month)[1] if 1 <= year <= 9999 else 31
    if not 1 <= day <= last:
        raise DomainError(
            f"{field}: {shown!r} is not a date: {calendar.month_name[month]} {year} has {last} days",
            field=field,
        )
    return date(year, month, day)


def _year_of(typed: str | None, month: int, day: int, today: date) -> int:
    """The year of a day and month typed with or without one (of two digits: two_digit_year):
    without, the next such day (this year's from today on). Chosen before the day is checked, so
    that '31 feb' typed in December is refused as a February of the coming year, the one meant,
    not of the year ending."""
    if typed:
        return two_digit_year(int(typed)) if len(typed) == 2 else int(typed)
    return today.year + ((month, day) < (today.month, today.day))


def parse_date(text: object, *, today: date | None = None, field: str = "date", dayfirst: bool = True) -> date:
    """Accept '2027-01-15', '15/01/2027' (day first, as in NZ/UK/AU), '15/01', '15 jan 2027',
    '15 jan 27', 'jan 15', 'today', 'tomorrow', '+3d', '2w', 'fri' (the next Friday). A day and
    month without a year are the next such day."""
    from . import clock

    raw = str(text if text is not None else "").strip()
    shown = raw if len(raw) <= 30 else raw[:27] + "..."
    hint = "type 2027-01-15, 15/01/2027, 15 jan, today, tomorrow, +3d, 2w or fri"
    if not raw:
        raise DomainError(f"{field}: a date is required; {hint}", field=field)
    today = today or clock.today()
    low = raw.lower()
    if low == "today":
        return today
    if low in ("tomorrow", "tmrw", "tom"):
        return today + timedelta(days=1)
    if m := re.fullmatch(r"\+?(\d{1,3})\s*([dw])", low):
        n = int(m[1]) * (7 if m[2] == "w" else 1)
        return today + timedelta(days=n)
    if low in _WEEKDAYS:
        ahead = (_WEEKDAYS[low] - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", raw):
        return _checked_date(int(m[1]), int(m[2]), int(m[3]), shown, field)
    if m := re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{4}|\d{2}))?", raw):
        a, b = int(m[1]), int(m[2])
        day, month = (a, b) if dayfirst else (b, a)
        return _checked_date(_year_of(m[3], month, day, today), month, day, shown, field)
    # a day and a month's name, either way round, and a year of four digits or two ('5 jan 27')
    year = r"(?:,?\s*(\d{4})|,?\s+(\d{2}))?"
    for pattern, day_at, month_at in ((r"(\d{1,2})\s*([A-Za-z]+\.?)", 1, 2), (r"([A-Za-z]+\.?)\s*(\d{1,2})", 2, 1)):
        if (m := re.fullmatch(pattern + year, raw)) and (named := _month_word(m[month_at])) is not None:
            day = int(m[day_at])
            return _checked_date(_year_of(m[3] or m[4], named, day, today), named, day, shown, field)
    raise DomainError(f"{field}: {shown!r} is not a date; {hint}", field=field)


_AGO = re.compile(r"^(?:-\s*(\d{1,3})\s*([dw])|(\d{1,3})\s*([dw])\w*\s+ago)$")
_DAY_MONTH = re.compile(r"^(\d{1,2}\s*[a-z]+\.?|[a-z]+\.?\s*\d{1,2}|\d{1,2}[/.-]\d{1,2})$")


def parse_past_date(text: str) -> date:
    """When a contact point happened. Read as the past where typing allows both: 'fri' is last
    Friday, '20 nov' the last 20 November, 'yesterday', '-3d' or '3 days ago' count back. A date
    in the future is refused."""
    from . import clock

    today = clock.today()
    raw = (text or "").strip()
    low = raw.lower()
    if not raw:
        return today
    if low == "yesterday":
        return today - timedelta(days=1)
    if m := _AGO.match(low):
        n, unit = (m[1], m[2]) if m[1] else (m[3], m[4])
        return today - timedelta(days=int(n) * (7 if unit == "w" else 1))
    day = parse_date(raw, field="when")
    if day > today:
        if low in _WEEKDAYS:
            day -= timedelta(days=7)
        elif _DAY_MONTH.match(low):  # '20 nov', 'nov 20' or '20/11' without a year: the last one
            try:
                day = day.replace(year=day.year - 1)
            except ValueError:  # 29 February
                day = day.replace(year=day.year - 1, day=28)
    if day > today:
        raise DomainError(
            f"when: {day:%d %b %Y} is in the future; a contact point is something that happened "
            "(today, yesterday, 3 days ago, fri, 20 nov, 2026-11-20)",
            field="when",
        )
    return day


def parse_past_moment(text: str, now: datetime) -> tuple[datetime, bool]:
    """When a contact point happened, as typed ('yesterday 14:30', 'fri 2pm', '9:30', '20 nov'):
    the moment, and whether a time of day was given (a day alone takes `now`'s time of day, which
    keeps contact points in the order they were logged; blank is now). A moment after `now` (a
    time later today) is refused: the command line and the app's form read it through this one."""
    if not (text or "").strip():
        return now, False
    day_text, hhmm = split_time(text)
    day = parse_past_date(day_text)
    if hhmm is None:
        return datetime.combine(day, now.time()), False
    moment = datetime.combine(day, time(int(hhmm[:2]), int(hhmm[3:])))
    if moment > now:
        raise DomainError(
            f"when: {moment:%d %b %Y %H:%M} is in the future (it is {now:%H:%M} now); a contact point is "
            "something that happened (today, yesterday 14:30, 3 days ago, fri 2pm, 2026-11-20)",
            field="when",
        )
    return moment, True


FOLLOW_UP_CLEAR = ("", "none", "-", "clear")


def parse_follow_up(text: object, *, field: str = "follow-up") -> date | None:
    """A follow-up date as typed, or None for 'none', 'clear', '-' or blank (clears it). The
    command line and every screen read follow-ups through this one function (`field`: what a
    message calls it)."""
    if isinstance(text, date):
        return text
    if text is None or str(text).strip().lower() in FOLLOW_UP_CLEAR:
        return None
    return parse_date(text, field=field)


_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
_TIME_AT_END = re.compile(r"(?:^|\s)(?:at\s+)?(\d{1,2}(?::\d{2})?\s*(?:am|pm)|\d{1,2}:\d{2})$")

#: The follow-up a contact point proposes: this many days after it, on the next working day.
FOLLOW_UP_DAYS = 7
#: The contacts after which the app asks for the next follow-up (a note is no contact with anyone).
ASKS_NEXT_STEP = ("call", "email", "meeting")


def parse_time(text: object, *, field: str = "time") -> str | None:
    """A time of day as typed ('14:30', '9:05', '9am', '2:30 pm'), as 'HH:MM'; None when blank."""
    raw = "" if text is None else str(text).strip().lower()
    if not raw:
        return None
    m = _TIME.match(raw)
    if m is None or (m[2] is None and m[3] is None and len(raw) > 2):
        raise DomainError(f"{field}: {raw!r} is not a time of day; use 14:30, 9:05 or 2pm", field=field)
    hour, minute = int(m[1]), int(m[2] or 0)
    if m[3] is not None:
        if not 1 <= hour <= 12:
            raise DomainError(f"{field}: {raw!r} is not a time of day; with am or pm the hour is 1 to 12", field=field)
        hour = hour % 12 + (12 if m[3] == "pm" else 0)
    if hour > 23 or minute > 59:
        raise DomainError(f"{field}: {raw!r} is not a time of day; use 00:00 to 23:59", field=field)
    return f"{hour:02d}:{minute:02d}"


def split_time(text: object) -> tuple[str, str | None]:
    """A day and a time typed together ('yesterday 14:30', 'fri 2pm', '14:30' alone for today):
    (the day's text, 'HH:MM' or None). A time needs a colon or am/pm, so '20 nov' stays a day."""
    raw = "" if text is None else str(text).strip()
    m = _TIME_AT_END.search(raw.lower())
    if m is None:
        return raw, None
    return raw[: m.start()].strip(), parse_time(m[1])


def default_follow_up(today: date, current: date | None = None, days: int = FOLLOW_UP_DAYS) -> date:
    """The next follow-up a logged contact proposes: the one set, if it is still ahead; else `days`
    after today, moved off a weekend to the Monday after (the next working day)."""
    if current is not None and current > today:
        return current
    out = today + timedelta(days=days)
    while out.weekday() >= 5:
        out += timedelta(days=1)
    return out


#: The longest name evpipe takes for a prospect (and its company, contact, owner, email).
MAX_NAME_LEN = 200


def clean_text(value: object, *, field: str, max_len: int, required: bool = False) -> str:
    """Trim user text, drop control characters and escape sequences, enforce a length."""
    text = "" if value is None else str(value)
    # printable text has nothing to drop or change (escapes, controls, bidirectional marks and
    # separators are all unprintable): only the trimming (an import's many cells go this way)
    text = text.strip() if text.isprintable() else _cleaned(text, keep_newlines=max_len > 500)
    if required and not text:
        raise DomainError(f"{field}: cannot be empty", field=field)
    if len(text) > max_len:
        raise DomainError(f"{field}: is {len(text)} characters long; the most is {max_len}", field=field)
    return text


def clean_email(value: object) -> str:
    """An email address as typed (trimmed, see `clean_text`), or "" for none: one with an @
    between something and something, and no spaces."""
    text = clean_text(value, field="email", max_len=200)
    if text and ("@" not in text or " " in text or text.startswith("@") or text.endswith("@")):
        raise DomainError(f"email: {text!r} is not an email address such as name@example.com", field="email")
    return text


#: Characters no XML document may hold (U+FFFE, U+FFFF, and halves of surrogate pairs left alone):
#: a name with one made `export FILE.xlsx` write a workbook that no spreadsheet (nor evpipe) opens.
NOT_XML = re.compile("[\ufffe\uffff\ud800-\udfff]")


def _cleaned(text: str, *, keep_newlines: bool) -> str:
    """`clean_text`'s dropping of escape sequences and control characters, for text that has any."""
    text = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", text)  # CSI escape sequences
    text = re.sub(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)", "", text)  # OSC sequences
    # bidirectional overrides and isolates, and line/paragraph separators, which can make one name
    # display as another or break a line where the screen does not expect it
    text = re.sub(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]", "", text)
    text = re.sub(r"[\u2028\u2029\u0085]", " ", text)
    text = NOT_XML.sub("", text)
    if not keep_newlines:  # (a line break in a one-line field parts words: "a\nb" is "a b", not "ab")
        text = re.sub(r"[\r\n]+", " ", text)
    text = "".join(
        ch
        for ch in text
        if ch == "\n" and keep_newlines or ch == "\t" or (ch >= " " and ch != "\x7f") and not (0x80 <= ord(ch) < 0xA0)
    )
    return text.replace("\t", " ").strip()


def exact_money(micros: int) -> str:
    """EV micros as an exact decimal string (at least 2 decimals, more only when needed), so that
    the bridge's terms add up exactly in JSON too."""
    d = (Decimal(micros) / 1_000_000).normalize()
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int), "a finite decimal's exponent is an int"
    if d == d.to_integral() or -exponent < 2:
        return format(d.quantize(Decimal("0.01")), "f")
    return format(d, "f")


# ---------------------------------------------------------------- sums past 64 bits


@contextmanager
def sums_fit() -> Iterator[None]:
    """Around a write of sums: a sum past 64 bits (a Python int too large for SQLite, SQLite's
    `integer overflow` in SUM, PostgreSQL's `bigint out of range`) becomes SumTooLarge, said in
    words; the write's transaction is rolled back by what raises out of it."""
    try:
        yield
    except (DomainError, WriteLocked):
        raise
    except Exception as exc:
        if not past_64_bits(exc):
            raise
        raise too_large() from None


def past_64_bits(exc: BaseException) -> bool:
    """Whether `exc` says a sum or an amount did not fit a 64-bit integer: the driver's words, not
    any OverflowError (a date out of range is not this)."""
    low = str(getattr(exc, "orig", None) or exc).lower()
    return any(words in low for words in _PAST_64_BITS)


#: What the drivers say of an integer past 64 bits: Python's sqlite3 binding one, SQLite's SUM,
#: PostgreSQL's bigint arithmetic, psycopg's binding one.
_PAST_64_BITS = ("too large to convert to sqlite integer", "integer overflow", "bigint out of range", "int too big")


def too_large() -> SumTooLarge:
    """The refusal of a write that would take the sums past MAX_SUM_CENTS."""
    return SumTooLarge(format_money(MAX_SUM_CENTS))
