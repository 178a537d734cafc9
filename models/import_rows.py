"""The row reader: one row of an imported file into a `Record` (or the problems that keep it out),
and the values looked up in a second file (`--values`)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from .errors import DomainError
from .import_cells import cell_text, parse_cell_bool, parse_cell_date, parse_cell_money, parse_cell_month
from .import_fields import find_header, header_key, name_key
from .import_read import read_table
from .import_types import ImportOptions, Problem, Record
from .values import MAX_CUSTOM_FIELDS, MAX_NAME_LEN, clean_email, clean_text, parse_time

#: (the key column's index in the main file, {normalised key: cents}, lookup file name)
Lookup = tuple[int, dict[str, int], str]

_PRICE_HEADERS = ("sales_price", "price", "list_price", "unit_price", "value", "amount")


def _split_key(spec: str) -> tuple[str, str]:
    if "=" in spec:
        a, b = spec.split("=", 1)
        return a.strip(), b.strip()
    return spec.strip(), spec.strip()


def load_lookup(options: ImportOptions, headers: list[str]) -> Lookup:
    """(the key column's index in the main file, {normalised key: cents}, lookup file name)."""
    if not options.values_key:
        raise DomainError(
            "--values-key: say which column joins the files, e.g. --values-key product", field="values_key"
        )
    assert options.values_file is not None
    main_col, lookup_col = _split_key(options.values_key)
    key_index = find_header(headers, main_col, "--values-key", "the file")
    table = read_table(options.values_file)
    lookup_name = Path(options.values_file).name
    lk = find_header(table.headers, lookup_col, "--values-key", lookup_name)
    if options.values_column:
        vc = find_header(table.headers, options.values_column, "--values-column", lookup_name)
    else:
        candidates = [i for i, h in enumerate(table.headers) if header_key(h) in _PRICE_HEADERS]
        if len(candidates) != 1:
            raise DomainError(
                f"--values-column: say which column of {lookup_name} holds the value; its columns are "
                + ", ".join(table.headers),
                field="values_column",
            )
        vc = candidates[0]
    prices: dict[str, int] = {}
    for number, cells in table.rows:
        key = name_key(cell_text(cells[lk]))
        if not key:
            continue
        try:
            cents = parse_cell_money(cells[vc], column=table.headers[vc])
        except DomainError as exc:
            raise DomainError(f"--values: {lookup_name} row {number}: {exc}", field="values") from None
        if cents is None:
            continue
        if key in prices and prices[key] != cents:
            raise DomainError(
                f"--values: {lookup_name} row {number}: {cell_text(cells[lk])!r} has two different values",
                field="values",
            )
        prices[key] = cents
    if table.shape_problems:
        n, why = table.shape_problems[0]
        raise DomainError(f"--values: {lookup_name} row {n} {why}", field="values")
    return key_index, prices, lookup_name


def _plain(value: Any, max_len: int) -> str | None:
    """`clean_text(cell_text(value), max_len=max_len)` for the common cell, None for any other:
    printable text (no control or escape characters, no whitespace but spaces) not starting with
    an apostrophe (a neutralised formula), no longer than `max_len` once trimmed, is only trimmed
    by both. The others take the whole way (an import reads most of its cells here)."""
    if type(value) is str and value.isprintable():
        text = value.strip()
        if text[:1] != "'" and len(text) <= max_len:
            return text
    return None


#: A row read but not yet keyed (`RowReader.parse`): its record (key still ''), its name, company
#: and id cell as the key is made from them, and its problems so far.
Parsed = tuple[Record, str, str, str, list[Problem]]


class RowReader:
    """Reads the rows of one file, in order, into records. It keeps what spans rows: the stable keys
    seen (repeats of a name get '#2', '#3'; an id seen twice is a problem) and the lookup misses."""

    def __init__(
        self,
        *,
        headers: list[str],
        index: dict[str, int],
        custom_idx: list[int],
        custom_names: list[str],
        stage_of: dict[str, str | None],
        kinds: dict[str, str],
        first_open: str | None,
        order: str | None,
        today: date,
        lookup: Lookup | None,
        who: str,
        kept_names: dict[str, str] | None = None,
    ) -> None:
        self.headers = headers
        self.index = index
        self.custom_idx = custom_idx
        self.custom_names = custom_names
        self.stage_of = stage_of
        self.kinds = kinds  # casefolded ladder stage name -> kind
        self.first_open = first_open
        self.order = order
        self.today = today
        self.lookup = lookup
        self.who = who
        self.has_id = "id" in index
        self.by_key_rows: dict[str, int] = {}
        self.repeat: Counter[str] = Counter()
        self.lookup_misses: dict[str, list[int]] = defaultdict(list)
        #: field -> the custom field that keeps its cell as the file has it (`KEPT_IN_FILE`) ...
        self.kept_names = kept_names or {}
        #: ... and the rows where it did, for a warning (the lookup's replacements go unsaid: counted)
        self.kept: dict[str, list[int]] = defaultdict(list)
        # each distinct cell of a date column and of the month column, as read: a cell that cannot
        # be read is not kept (each row with it reports its problem)
        self.dates: dict[str, dict[tuple[type, Any], date | None]] = {}
        self.months: dict[tuple[type, Any], str | None] = {}
        self.stages: dict[tuple[type, Any], str] = {}  # each distinct stage cell: its ladder stage
        # per row
        self.number = 0
        self.cells: list[Any] = []
        self.problems: list[Problem] = []

    # ------------------------------------------------------------ one cell

    def _get(self, f: str) -> Any:
        i = self.index.get(f)
        return None if i is None else self.cells[i]

    def _column(self, f: str) -> str | None:
        return self.headers[self.index[f]] if f in self.index else None

    def _bad(self, exc: DomainError, f: str) -> None:
        self.problems.append(Problem(str(exc), [self.number], self._column(f)))

    def _time(self, f: str) -> str | None:
        """A time of day ('14:30', '2pm', or a workbook's time cell) as 'HH:MM'; None when blank."""
        if f not in self.index:
            return None
        value = self._get(f)
        if isinstance(value, (datetime, time)):
            return f"{value.hour:02d}:{value.minute:02d}"
        try:
            return parse_time(cell_text(value), field=self.headers[self.index[f]])
        except DomainError as exc:
            self._bad(exc, f)
            return None

    def _text(self, f: str, max_len: int) -> str:
        i = self.index.get(f)
        if i is None:
            return ""
        text = _plain(self.cells[i], max_len)
        if text is not None:
            return text
        try:
            return clean_text(cell_text(self._get(f)), field=self.headers[self.index[f]], max_len=max_len)
        except DomainError as exc:
            self._bad(exc, f)
            return ""

    def _date(self, f: str) -> date | None:
        if f not in self.index:
            return None
        value = self._get(f)
        # a column's dates repeat (a few hundred days in a hundred thousand rows): each read once
        seen = self.dates.setdefault(f, {})
        key = (type(value), value)
        if key in seen:
            return seen[key]
        try:
            day = parse_cell_date(value, column=self.headers[self.index[f]], order=self.order, today=self.today)
        except DomainError as exc:
            self._bad(exc, f)
            return None
        seen[key] = day
        return day

    # ------------------------------------------------------------ one row

    def read(self, number: int, cells: list[Any]) -> tuple[Record | None, list[Problem]]:
        """The row as a record, or None with the problems that keep it out."""
        return self.keyed(self.parse(number, cells))

    def keyed(self, parsed: Parsed) -> tuple[Record | None, list[Problem]]:
        """A parsed row given its stable key (which depends on the rows before it: repeats, ids
        seen), then taken or kept out: `read`'s second step, in file order."""
        rec, name, company, key_text, problems = parsed
        self.number, self.problems = rec.row, problems
        rec.key = self._key(name, company, key_text)
        if self.problems or not rec.stage:
            return None, self.problems
        return rec, []

    def parse(self, number: int, cells: list[Any]) -> Parsed:
        """`read`'s first step: the row's cells read and checked, each on its own (what spans rows
        here is only kept to be reused: the lookup's misses, and each distinct date, month and
        stage cell read once). A second process can parse some rows while this one parses others."""
        self.number, self.cells, self.problems = number, cells, []
        name, company, key_text = self._name()
        stage = self._stage()
        kind = self.kinds.get(stage, "open")
        dates = {f: self._date(f) for f in ("close_date", "created", "follow_up")}
        month = self._month(dates["close_date"])
        cents, value_from, replaced = self._value(kind)
        needs_review = self._needs_review()
        if cents is None:
            cents, value_from, needs_review = 0, "unknown", True
        kept = {} if replaced is None else {"value": replaced}
        created = dates["created"]
        if created is not None and created > self.today:
            # no prospect is created after today: it is stored as created today, the file's date kept
            kept["created"] = cell_text(self._get("created"))
            dates["created"] = self.today
            self.kept["created"].append(number)
        closed = kind in ("won", "lost")
        if dates["close_date"] is not None and not closed:
            # evpipe keeps a close date for a closed prospect only (an open one's gives the month)
            kept["close_date"] = cell_text(self._get("close_date"))
            self.kept["close_date"].append(number)
        lost_reason = self._text("lost_reason", 500 if kind == "lost" else 5000) or None
        if lost_reason is not None and kind != "lost":
            kept["lost_reason"] = lost_reason
            self.kept["lost_reason"].append(number)
        email = self._text("email", 200)
        try:
            email = clean_email(email)  # the rule `evpipe edit` and the prospect form apply
        except DomainError:
            kept["email"], email = email, ""
            self.kept["email"].append(number)
        custom = self._custom(kept)
        owner = self._text("owner", 80) or None  # (a blank cell, like no owner column: the importer's)
        rec = Record(
            row=number,
            key="",
            name=name,
            stage=stage,
            value_cents=cents,
            value_from=value_from,
            owner=self.who if owner is None else owner,
            company=company,
            contact_name=self._text("contact_name", 200),
            email=email,
            phone=self._text("phone", 80),
            notes=self._text("notes", 20_000),
            custom=custom,
            expected_month=month,
            next_follow_up=dates["follow_up"],
            created=dates["created"],
            closed_on=dates["close_date"] if closed else None,
            lost_reason=lost_reason if kind == "lost" else None,
            needs_review=needs_review,
        )
        if rec.next_follow_up is not None:  # a time and a note belong to a follow-up (`set_follow_up`)
            rec.follow_up_time = self._time("follow_up_time")
            rec.follow_up_note = self._text("follow_up_note", 500) or None
        return rec, name, company, key_text, self.problems

    def _name(self) -> tuple[str, str, str]:
        said = len(self.problems)
        name = self._text("name", MAX_NAME_LEN)
        company = self._text("company", 200)
        key_text = self._text("id", 200)
        if len(self.problems) > said:
            return name, company, key_text  # (a name too long said so: not "has no name" besides)
        if not name:
            # No name: the company and the id together tell a deal apart ("Cancity (1C1I7A6R)").
            name = f"{company} ({key_text})" if company and key_text else company or key_text
            if len(name) > 200:
                name = name[:200]
        if not name:
            self.problems.append(Problem("has no name, company or id, so it cannot be told apart", [self.number]))
        return name, company, key_text

    def _stage(self) -> str:
        """The ladder stage's name, casefolded; '' for a stage name that is not mapped."""
        if "stage" not in self.index:
            return self.first_open.casefold() if self.first_open else ""
        value = self._get("stage")
        key = (type(value), value)
        if key not in self.stages:  # a file has a few stage names: each worked out once
            stage = self.first_open.casefold() if self.first_open else ""
            raw_stage = re.sub(r"\s+", " ", cell_text(value))
            if raw_stage:
                target = self.stage_of.get(raw_stage.casefold())
                stage = "" if target is None else target.casefold()  # unknown: reported once per stage name
            self.stages[key] = stage
        return self.stages[key]

    def _month(self, close_date: date | None) -> str | None:
        month = None
        if "expected_month" in self.index:
            value = self._get("expected_month")
            key = (type(value), value)
            if key in self.months:
                month = self.months[key]
            else:
                try:
                    month = self.months[key] = parse_cell_month(
                        value,
                        column=self.headers[self.index["expected_month"]],
                        order=self.order,
                        today=self.today,
                    )
                except DomainError as exc:
                    self._bad(exc, "expected_month")
        if month is None and close_date is not None and "expected_month" not in self.index:
            month = close_date.strftime("%Y-%m")
        return month

    def _value(self, kind: str) -> tuple[int | None, str, str | None]:
        """(cents or None when unknown, where it came from, the file's text when a lookup replaced it)."""
        value_from = "file"
        cents: int | None = None
        if "value" in self.index:
            try:
                cents = parse_cell_money(self._get("value"), column=self.headers[self.index["value"]])
            except DomainError as exc:
                self._bad(exc, "value")
                cents = 0
        unknown = cents is None or (cents == 0 and kind == "lost" and self.lookup is not None)
        replaced = None
        if unknown and self.lookup is not None:
            key_col, prices, _ = self.lookup
            product = name_key(cell_text(self.cells[key_col]))
            if product in prices:
                if cents is not None:  # the file's 0 is kept, as a custom field
                    replaced = cell_text(self._get("value"))
                cents, value_from = prices[product], "lookup"
            else:
                self.lookup_misses[cell_text(self.cells[key_col]) or "(empty)"].append(self.number)
        return cents, value_from, replaced

    def _needs_review(self) -> bool:
        if "needs_review" not in self.index:
            return False
        try:
            return parse_cell_bool(self._get("needs_review"), column=self.headers[self.index["needs_review"]])
        except DomainError as exc:
            self._bad(exc, "needs_review")
            return False

    def _custom(self, kept: dict[str, str]) -> dict[str, str]:
        """The row's custom fields: its custom columns' cells, and the cells kept as they are in
        the file (`kept`: field -> text) under the names `kept_names` gives them."""
        custom: dict[str, str] = {}
        for i, cname in zip(self.custom_idx, self.custom_names):
            plain = _plain(self.cells[i], 5000)
            if plain is not None:
                if plain:
                    custom[cname] = plain
                continue
            value = cell_text(self.cells[i])
            if value:
                try:
                    custom[cname] = clean_text(value, field=f"custom field {cname}", max_len=5000)
                except DomainError as exc:
                    self.problems.append(Problem(str(exc), [self.number], self.headers[i]))
        for f, text in kept.items():
            custom[self.kept_names[f]] = text
        if len(custom) > MAX_CUSTOM_FIELDS:
            self.problems.append(
                Problem(
                    f"has {len(custom)} custom fields; a prospect keeps at most {MAX_CUSTOM_FIELDS}; leave "
                    "some columns out with --map 'COLUMN=ignore'",
                    [self.number],
                )
            )
        return custom

    def kept_warnings(self, taken: set[int]) -> list[str]:
        """What the preview says of the cells kept as they are in the file, field by field, on the
        rows `taken` (the others are not imported: their problems are said)."""
        out = []
        for f, all_rows in self.kept.items():
            rows = sorted(n for n in all_rows if n in taken)
            if not rows:
                continue
            column, name = self.headers[self.index[f]], self.kept_names[f]
            why = {
                "created": (
                    f"{column}: the date is after today, and no prospect is created in the future; stored as "
                    f"created today, the file's date kept as custom field {name!r} (if {column!r} is not when "
                    f"the deal was created, keep it as a custom field with --map '{column}=custom')"
                ),
                "close_date": (
                    f"{column}: a close date on a row that is not won or lost; evpipe keeps a close date for "
                    f"closed prospects only, so it is kept as custom field {name!r}"
                    + ("" if "expected_month" in self.index else " (and gives the expected month)")
                ),
                "email": (
                    f"{column}: not an email address such as name@example.com (evpipe edit refuses it too); "
                    f"the email is left empty and the text kept as custom field {name!r}"
                ),
                "lost_reason": (
                    f"{column}: a lost reason on a row that is not lost; evpipe keeps a lost reason for lost "
                    f"prospects only, so it is kept as custom field {name!r}"
                ),
            }[f]
            out.append(Problem(why, rows).text())
        return out

    def _key(self, name: str, company: str, key_text: str) -> str:
        """The stable key: the id column's value, else name and company ('#2' for a repeat)."""
        if self.has_id and key_text:
            key = key_text
        elif self.has_id:
            key = ""
            id_column = self.headers[self.index["id"]]
            self.problems.append(
                Problem(
                    f"has no {id_column} (the id column), so a later import could not find it again",
                    [self.number],
                    id_column,
                )
            )
        else:
            base = f"{name_key(name)}|{name_key(company)}"
            self.repeat[base] += 1
            key = base if self.repeat[base] == 1 else f"{base}#{self.repeat[base]}"
        if key and self.has_id:
            if key in self.by_key_rows:
                self.problems.append(
                    Problem(
                        f"id {key!r} is on row {self.by_key_rows[key]} already",
                        [self.number],
                        self.headers[self.index["id"]],
                    )
                )
            else:
                self.by_key_rows[key] = self.number
        return key
