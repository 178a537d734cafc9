"""Which field each column of an imported file is: header guessing, synonyms, `--map` overrides."""

from __future__ import annotations

import re

from .errors import DomainError

#: Fields a column can be mapped to, with what the user may type for each (`--map COL=FIELD`).
FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("id", "key", "external_id", "opportunity_id", "deal_id", "prospect_id", "record_id", "evpipe_id"),
    "name": ("name", "prospect", "prospect_name", "opportunity", "opportunity_name", "deal", "deal_name", "title"),
    "company": (
        "company",
        "account",
        "account_name",
        "company_name",
        "organisation",
        "organization",
        "customer",
        "client",
        "business",
    ),
    "contact_name": ("contact", "contact_name", "contact_person", "person", "full_name"),
    "email": ("email", "e_mail", "email_address", "mail"),
    "phone": ("phone", "telephone", "tel", "mobile", "phone_number", "cell"),
    "value": (
        "value",
        "amount",
        "close_value",
        "deal_value",
        "estimated_value",
        "est_value",
        "deal_amount",
        "value_nzd",
        "value_usd",
        "value_aud",
        "value_eur",
        "value_gbp",
    ),
    "stage": ("stage", "deal_stage", "sales_stage", "pipeline_stage", "status", "opportunity_stage"),
    "expected_month": ("expected_month", "month", "close_month", "expected_close_month", "forecast_month"),
    "close_date": (
        "close_date",
        "closed_on",
        "closed",
        "closing_date",
        "date_closed",
        "expected_close",
        "expected_close_date",
        "closed_date",
        "won_date",
    ),
    "created": (
        "created",
        "engage_date",
        "created_at",
        "created_on",
        "date_created",
        "created_date",
        "open_date",
        "opened",
        "start_date",
        "first_contact",
        "date_added",
    ),
    "owner": (
        "owner",
        "sales_agent",
        "agent",
        "rep",
        "sales_rep",
        "salesperson",
        "sales_person",
        "account_manager",
        "assigned_to",
        "deal_owner",
        "opportunity_owner",
    ),
    "notes": ("notes", "note", "comments", "comment", "description", "remarks"),
    "follow_up": ("follow_up", "next_follow_up", "follow_up_date", "next_step_date", "next_contact"),
    "follow_up_time": ("follow_up_time", "next_follow_up_time"),
    "follow_up_note": ("follow_up_note", "next_follow_up_note"),
    "lost_reason": ("lost_reason", "reason_lost", "loss_reason", "lost_because"),
    "needs_review": ("needs_review", "review"),
    "derived": (
        "probability",
        "ev",
        "expected_value",
        "weighted_value",
        "stage_kind",
        "kind",
        "probability_percent",
        "updated",
        "updated_at",
    ),
    "custom": ("custom",),
    "ignore": ("ignore", "skip", "none"),
}
FIELD_LABELS = {
    "id": "stable key (id)",
    "name": "name",
    "company": "company",
    "contact_name": "contact",
    "email": "email",
    "phone": "phone",
    "value": "value",
    "stage": "stage",
    "expected_month": "expected month",
    "close_date": "close date",
    "created": "created date",
    "owner": "owner",
    "notes": "notes",
    "follow_up": "next follow-up",
    "follow_up_time": "the follow-up's time",
    "follow_up_note": "the follow-up's note",
    "lost_reason": "lost reason",
    "needs_review": "needs review",
    "derived": "not imported (evpipe works it out)",
    "custom": "custom field",
    "ignore": "not imported (you said so)",
}
_SYNONYMS = {alias: f for f, aliases in FIELDS.items() for alias in aliases}
#: Fields one column at most maps to.
SINGLE = [f for f in FIELDS if f not in ("derived", "custom", "ignore")]
#: Stage names in a file that mean the ladder's won or lost stage (compared by `name_key`).
WON_WORDS = {"won", "win", "closedwon", "closed", "wonclosed", "sold"}
LOST_WORDS = {"lost", "lose", "closedlost", "lostclosed", "dead"}


def header_key(text: str) -> str:
    """'Close Value (NZD)' -> 'close_value_nzd'."""
    return re.sub(r"[^0-9a-z]+", "_", text.casefold()).strip("_")


def name_key(text: str) -> str:
    """For matching names that are spelt slightly differently: 'GTX Pro' == 'GTXPro' == 'gtx-pro'."""
    return re.sub(r"[\W_]+", "", text.casefold())


def numbered_name(name: str, taken: set[str], max_len: int | None = None) -> str:
    """`name`, or when it is taken (compared ignoring case) `name (2)`, `name (3)` ...: the first
    that is not (cut to fit `max_len`, numbers included). `taken` holds casefolded names; the name
    returned is added to it. One rule for every name the importer makes up for a column or a
    field, so that no two cells share a name (and one of them is lost)."""
    found, n = name[:max_len], 1
    while found.casefold() in taken:
        n += 1
        suffix = f" ({n})"
        found = (name if max_len is None else name[: max_len - len(suffix)]) + suffix
    taken.add(found.casefold())
    return found


#: The fields whose cell, when evpipe stores something else for a row (or nothing), is kept as it
#: is in the file, as a custom field named by `in_file_name`: a value replaced by the lookup file's,
#: a created date after today, a close date on an open row, a lost reason on a row not lost, an
#: email that is not an address.
KEPT_IN_FILE = ("value", "created", "close_date", "lost_reason", "email")
#: Those whose kept cell a re-import removes when the file no longer has it there (the field follows
#: the file; a re-import changes no created date, and the value has its own rule).
KEPT_FOLLOWS_FILE = ("close_date", "lost_reason", "email")


def in_file_name(header: str) -> str:
    """The custom field keeping a cell of column `header` that is not stored in its field:
    'close_value (in file)'."""
    return f"{header} (in file)"


def guess_field(header: str) -> str | None:
    """The field a column header names, or None (a custom field)."""
    key = header_key(header)
    return _SYNONYMS.get(key)


def field_for(word: str) -> str:
    key = header_key(word)
    if key in FIELDS:
        return key
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    raise DomainError(
        f"--map: {word!r} is not a field; use one of " + ", ".join(f for f in FIELDS if f != "derived"),
        field="map",
    )


def find_header(headers: list[str], wanted: str, what: str, file_name: str) -> int:
    """The index of the column named `wanted` (exactly, else ignoring case and punctuation)."""
    for i, h in enumerate(headers):
        if h == wanted:
            return i
    for i, h in enumerate(headers):
        if h.casefold() == wanted.casefold() or header_key(h) == header_key(wanted):
            return i
    raise DomainError(f"{what}: {file_name} has no column {wanted!r}; its columns are {', '.join(headers)}", field=what)


def column_fields(headers: list[str], overrides: dict[str, str]) -> list[tuple[str, str]]:
    """(header, field) for every column: the user's `--map` first, else the guess, else custom."""
    chosen: dict[int, str] = {}
    for column, wanted in overrides.items():
        index = find_header(headers, column, "--map", "the file")
        chosen[index] = field_for(wanted)
    out: list[tuple[str, str]] = []
    taken: dict[str, str] = {}
    for i, h in enumerate(headers):
        f = chosen.get(i)
        if f is None:
            f = guess_field(h) or "custom"
            if f in SINGLE and (f in taken or f in chosen.values()):
                f = "custom"  # a second 'notes' column stays as it is, a custom field
        elif f in SINGLE and f in taken:
            raise DomainError(f"--map: columns {taken[f]!r} and {h!r} both map to {f}", field="map")
        if f in SINGLE:
            taken[f] = h
        out.append((h, f))
    return out
