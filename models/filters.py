"""The pipeline's filter, `/` in the app and `evpipe list --filter`: parsed and matched here only.

A filter is words and fields, all of which a prospect must match (AND):

- a plain word: in the name, company, contact person or notes, ignoring case (as before);
- `stage:quote`: on a stage whose name, or a word of it, starts with `quote` (ignoring case);
- `owner:sam`: owned by someone whose name starts with `sam`;
- `month:2027-03`, `month:mar` (the next March, this year's from March to December: the months
  rule of models/values.py), `month:2027-03..2027-06` (inclusive; either end may be left open),
  `month:none` (no expected month);
- `due:overdue` (an open prospect's follow-up is before today), `due:week` (an open prospect's
  follow-up is today or in the six days after: the focus list's "due this week");
- `stale`: an open prospect untouched for longer than its stage allows (the pipeline's `~`).

A field given twice matches either value (`stage:quote stage:date`). A word of letters followed
by `:` names a field; any other text is searched for as it is (`10:30`).

`Filter.holds` is the rule for one row; `Filter.select` is the same rule over a whole RowStore,
run column by column in C (tens of ms at 100,000 prospects); a property test checks they agree.
Nothing here imports the UI or SQLAlchemy.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from itertools import compress, islice
from operator import and_
from typing import TYPE_CHECKING, Protocol, cast

from .errors import DomainError
from .ladder import OPEN
from .pipeline_view import IdMask, Ladder, Row, RowStore
from .texts import EXCERPT, Excerpt, TextColumn
from .values import parse_month

if TYPE_CHECKING:
    from .pace import Pace

#: Rows a search tests in one go before it calls its `pause` (Hits.select): each slice is one call
#: into C that holds the interpreter lock throughout (a few ms), so a search in a worker lets the
#: UI thread in between slices instead of holding it for a whole pass (tens of ms at 100,000).
SLICE = 5_000
#: Rows whose positions `_where` takes from a mask in one call into C (some 2.5 ms).
WHERE_SLICE = 100_000

#: Called between two slices of a search: gives the interpreter lock away for a moment, and may
#: raise to stop the search (a newer text was typed). The default does nothing.
Pause = Callable[[], None]


def _no_pause() -> None:
    return None


#: The focus list's "due this week": a follow-up from today to this many days ahead, less one.
DUE_DAYS = 7

#: The fields, as the completion hint shows them.
FIELDS = ("stage:", "owner:", "month:", "due:", "stale")
DUE_VALUES = ("overdue", "week")
FIELD_HINT = "fields: stage:quote owner:sam month:2027-03 month:mar..jun due:overdue due:week stale"


class StageLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...


@dataclass(frozen=True)
class Filter:
    """A parsed filter. Empty tuples mean "any"; every non-empty part must hold."""

    text: str = ""
    words: tuple[str, ...] = ()  # case-folded
    stage_ids: tuple[frozenset[int], ...] = ()  # each: the stages one `stage:` term names
    owners: tuple[tuple[str, ...], ...] = ()  # each: the case-folded prefixes of one `owner:` field
    months: tuple[tuple[tuple[str | None, str | None] | None, ...], ...] = ()  # ranges; None: no month
    due: tuple[str, ...] = ()  # 'overdue' / 'week', either
    stale: bool = False
    closed_stages: frozenset[int] = field(default_factory=frozenset)  # named stages that are closed
    #: `stale` is the list's `~` (models/pace.py, slow): each stage's pace, once read (`with_pace`);
    #: until then the stale days, as the `~` itself falls back on
    pace: Pace | None = field(default=None, compare=False, repr=False)

    def with_pace(self, pace: Pace | None) -> Filter:
        """This filter judging `stale` by `pace` (only one with `stale` needs it)."""
        return replace(self, pace=pace) if self.stale and pace is not self.pace else self

    @property
    def empty(self) -> bool:
        return not (self.words or self.stage_ids or self.owners or self.months or self.due or self.stale)

    @property
    def structured(self) -> bool:
        """Whether it has any field (else it is the plain text search)."""
        return bool(self.stage_ids or self.owners or self.months or self.due or self.stale)

    @property
    def names_closed(self) -> bool:
        """Whether it asks for won or lost prospects (`stage:won`): the app then shows them."""
        return bool(self.closed_stages)

    # ------------------------------------------------------------ the rule, one row

    def holds(self, row: Row, ladder: Ladder, hay: str, today: date) -> bool:
        """Whether one prospect matches; `hay` is its search text (pipeline_view.haystack)."""
        if not all(w in hay for w in self.words):
            return False
        if not all(row.stage_id in ids for ids in self.stage_ids):
            return False
        owner = row.owner.casefold()
        if not all(any(owner.startswith(p) for p in prefixes) for prefixes in self.owners):
            return False
        for ranges in self.months:
            if not any(_in_range(row.month, r) for r in ranges):
                return False
        is_open = ladder.kind(row.stage_id) == OPEN
        if self.due:
            if not is_open or row.follow_up is None:
                return False
            start, end = _due_window(today)
            if not any(
                (row.follow_up < start) if which == "overdue" else (start <= row.follow_up <= end) for which in self.due
            ):
                return False
        if self.stale:
            if self.pace is not None:
                return bool(self.pace.is_slow(row))
            cutoff = ladder.stale_cutoffs(today).get(row.stage_id)
            if cutoff is None or not row.touched < cutoff:
                return False
        return True

    # ------------------------------------------------------------ the same rule, every row at once

    def select(self, rows: RowStore, ladder: Ladder, today: date) -> IdMask:
        """The ids of the live rows that match: `holds` over the columns, in C where it can be."""
        if not self.structured and not self.words:
            return IdMask(rows, rows.top)
        return rows.mask_at(self.positions(rows, ladder, today))

    def positions(self, rows: RowStore, ladder: Ladder, today: date) -> array:
        """Where the matching live rows are in the columns (in order): what `select` is made of."""
        mask, rest = self._first_pass(rows, ladder, today)
        return _having(_where(mask), rows.hay, rest)

    def _first_pass(
        self, rows: RowStore, ladder: Ladder, today: date, pause: Pause = _no_pause
    ) -> tuple[bytes, list[str]]:
        """One byte per row (1: it passes every field and the longest word), all in C (a slice of
        SLICE rows at a time, `pause` between them), and the other words, still to test on the
        rows that pass."""
        words_sorted = sorted(set(self.words), key=len, reverse=True)  # the longest narrows most
        words = rows.words
        # (every row live, as until a prospect is deleted: no test of that for each row)
        masks: list[Iterator[object]] = [iter(rows.alive)] if rows.alive.count(0) else []
        for stage_ids in self.stage_ids:
            masks.append(map(stage_ids.__contains__, rows.stage))
        for prefixes in self.owners:
            owned = {i for i, w in enumerate(words) if w is not None and w.casefold().startswith(prefixes)}
            masks.append(map(owned.__contains__, rows.owner))
        for ranges in self.months:
            held = {i for i, w in enumerate(words) if any(_in_range(w, r) for r in ranges) and _month_word(w)}
            masks.append(map(held.__contains__, rows.month))
        if self.due:
            start, end = _due_window(today)
            days = {
                i
                for i, w in enumerate(words)
                if w is not None
                and any((w < start) if which == "overdue" else (start <= w <= end) for which in self.due)
            }
            open_stages = {sid for sid, s in ladder.stages.items() if s.kind == OPEN}
            masks.append(map(days.__contains__, rows.follow))
            masks.append(map(open_stages.__contains__, rows.stage))
        if self.stale and self.pace is not None:
            masks.append(self.pace.flags(rows))
        elif self.stale:
            cutoffs = ladder.stale_cutoffs(today)
            stale_pairs = {
                (sid, i) for sid, cutoff in cutoffs.items() for i, w in enumerate(words) if w is not None and w < cutoff
            }
            masks.append(map(stale_pairs.__contains__, zip(rows.stage, rows.touched)))
        if words_sorted and not masks:  # the word alone: its flags straight from the search, a slice at a time
            return rows.hay.holding(words_sorted[0], pause=pause, step=SLICE), words_sorted[1:]
        if words_sorted:
            masks.append(rows.hay.holding_flags(words_sorted[0]))
        mask = masks[0] if masks else iter(rows.alive)
        for more in masks[1:]:
            mask = map(and_, mask, more)
        flags = cast("Iterator[int]", mask)  # (each is 0/1, or a bool)
        if len(rows.ids) <= SLICE:
            return bytes(flags), words_sorted[1:]
        parts = []
        for _ in range(0, len(rows.ids), SLICE):
            parts.append(bytes(islice(flags, SLICE)))
            pause()
        return b"".join(parts), words_sorted[1:]

    # ------------------------------------------------------------ narrowing, as the text grows

    def narrows(self, previous: Filter) -> bool:
        """Whether every prospect this filter lets through is one `previous` let through, so that
        searching `previous`'s matches gives exactly what searching every row would: the same
        fields with the same values, and each of `previous`'s words inside one of this one's
        (`harbour chr` after `harbour ch`, or after `harbour`)."""
        return (
            self.stage_ids == previous.stage_ids
            and self.owners == previous.owners
            and self.months == previous.months
            and self.due == previous.due
            and self.stale == previous.stale
            and self.pace is previous.pace
            and all(any(p in w for w in self.words) for p in previous.words)
        )

    def narrow(
        self,
        texts: TextColumn | Excerpt,
        positions: array,
        previous: Filter,
        pause: Pause = _no_pause,
        dropped: array | None = None,
    ) -> array:
        """Of the positions in `texts` (the rows' search texts, or an Excerpt's) that `previous`
        matched (see `narrows`), those this filter matches: only its words are tested again (the
        fields are the same), one pass in C per new word. `dropped`, when given, gets the others."""
        new = sorted(set(self.words) - set(previous.words), key=len, reverse=True)
        return _having(positions, texts, new, pause, dropped)


#: 0 for 1 and 1 for 0 (bytes.translate): a slice's flags turned into those of what it leaves out.
_FLIP = bytes.maketrans(b"\x00\x01", b"\x01\x00")


def _having(
    positions: array,
    hay: TextColumn | Excerpt,
    words: Iterable[str],
    pause: Pause = _no_pause,
    dropped: array | None = None,
) -> array:
    """The positions whose search text holds every one of `words` (an array: no object per
    position for the garbage collector to walk); SLICE positions at a time, `pause` between
    (when there is more than one slice). `dropped`, when given, gets the positions left out."""
    for word in words:
        kept = array("i")
        many = len(positions) > SLICE
        for start in range(0, len(positions), SLICE):
            part = positions[start : start + SLICE]
            flags = hay.holding(word, part)
            kept.extend(compress(part, flags))
            if dropped is not None:
                dropped.extend(compress(part, flags.translate(_FLIP)))
            if many:
                pause()
        positions = kept
    return positions


def _where(mask: bytes, pause: Pause = _no_pause) -> array:
    """The positions `mask` lets through (one byte a row, 0 or 1), WHERE_SLICE rows at a time,
    `pause` between: the positions of a million rows' mask in one call into C held the
    interpreter lock 25-30 ms, the app's longest pause while a worker searched ('har')."""
    if len(mask) <= WHERE_SLICE:
        return array("i", compress(range(len(mask)), mask))
    out = array("i")
    for start in range(0, len(mask), WHERE_SLICE):
        out.extend(compress(range(start, start + WHERE_SLICE), mask[start : start + WHERE_SLICE]))
        pause()
    return out


def _ids_at(rows: RowStore, mask: bytes, pause: Pause = _no_pause) -> IdMask:
    """The ids of the rows `mask` lets through (one byte a row, 0 or 1), SLICE rows at a time; at
    once where the ids run without a gap (each row's id is the first's plus its position), as
    they do until prospects are deleted: the mask is then the IdMask's bytes from the first id."""
    ids = rows.ids
    if ids and ids[-1] - ids[0] + 1 == len(ids) == len(mask):  # (ids are increasing: no gap)
        found = IdMask((), ids[-1])
        found.bits[ids[0] :] = mask
        found.count = mask.count(1)
        return found
    parts = (compress(rows.ids[i : i + SLICE], mask[i : i + SLICE]) for i in range(0, len(mask), SLICE))
    return IdMask.in_parts(parts, rows.top, pause if len(mask) > SLICE else None)


class Hits:
    """The filter's matches, kept from one keystroke to the next: a filter that narrows the last
    one (`Filter.narrows`: the text grew) searches only the last matches, not every row.

    The ids are the set the pipeline view holds as its `matches`: the view tests a changed row
    again and adds or drops it there (PipelineView.put), so they stay right between keystrokes;
    the positions behind them are found again after any change of the rows (RowStore.changes)."""

    def __init__(self) -> None:
        self.filter: Filter | None = None
        self.ids: IdMask | None = None
        self._positions: array | tuple[bytes, list[str]] = array("i")  # where `ids` are, or the pass they come from
        self._of: tuple[RowStore, Ladder, date, int] | None = None  # what the positions were taken from
        self.narrowed = False  # whether the last `select` searched the last matches only
        # whether it kept every one of them, no row having changed since they were found: the
        # lines shown for them (all of them matches) are then the new matches' lines as they are
        self.kept_all = False
        self.searches = 0  # how many searches ran to the end (for the tests of coalescing)
        # the texts of the last matches copied together (texts.Excerpt), and where in it they are
        self._excerpt: tuple[Excerpt, array] | None = None

    def clear(self) -> None:
        self.filter, self.ids, self._of, self._excerpt = None, None, None, None
        self._positions = array("i")

    def narrows_within(
        self, wanted: Filter, rows: RowStore, ladder: Ladder, today: date, shown: object, limit: int
    ) -> bool:
        """Whether `select` would test only the last matches, at most `limit` of them, with their
        positions at hand (not a pass over every row to find them): a search quick enough to run
        where the key is handled."""
        previous, of = self.filter, self._of
        return (
            previous is not None
            and self.ids is not None
            and of is not None
            and of[0] is rows
            and of[1] is ladder
            and of[2] == today
            and of[3] == rows.changes
            and shown is self.ids  # (the view holds them: its lines are narrowed, not rebuilt)
            and len(self.ids) <= min(limit, len(rows) // 2)
            and not isinstance(self._positions, tuple)
            and wanted.narrows(previous)
        )

    def select(
        self,
        wanted: Filter,
        rows: RowStore,
        ladder: Ladder,
        today: date,
        shown: object = None,
        pause: Pause = _no_pause,
    ) -> IdMask:
        """The ids of the live rows `wanted` matches (the same as `wanted.select`). `shown`: the
        matches the view holds now; the last ones are narrowed only if they are still those
        (the view keeps them right as rows change), else every row is searched. `pause` is called
        between slices of the rows (see SLICE); what it raises stops the search and leaves the
        kept matches as they were."""
        changes = rows.changes  # before the search: a change during it makes the next one look again
        previous, of = self.filter, self._of
        same = of is not None and of[0] is rows and of[1] is ladder and of[2] == today
        same = same and (shown is None or shown is self.ids)
        self.kept_all = False
        self.narrowed = previous is not None and self.ids is not None and same and wanted.narrows(previous)
        if self.narrowed:
            assert previous is not None and self.ids is not None and of is not None
            # (searching most of the rows again costs more than one pass over them all)
            self.narrowed = len(self.ids) <= len(rows) // 2
        if self.narrowed:
            assert previous is not None and self.ids is not None and of is not None
            unchanged = of[3] == rows.changes
            if not unchanged:
                positions = rows.positions(self.ids)
            elif isinstance(self._positions, tuple):  # the last search's first pass, not yet made positions
                mask, rest = self._positions
                positions = _having(_where(mask, pause), rows.hay, rest, pause)
            else:
                positions = self._positions
            # the last matches' texts copied together, once they are few enough (texts.Excerpt)
            excerpt = self._excerpt if unchanged else None
            if excerpt is None and len(positions) in EXCERPT:
                excerpt = (Excerpt(rows.hay, positions, pause), array("i", range(len(positions))))
            dropped = array("i")
            if excerpt is None:
                narrowed = wanted.narrow(rows.hay, positions, previous, pause, dropped)
            else:
                copied, at = excerpt
                kept = wanted.narrow(copied, at, previous, pause, dropped)
                back = copied.positions.__getitem__
                narrowed, dropped = array("i", map(back, kept)), array("i", map(back, dropped))
                excerpt = (copied, kept)
            found: array | tuple[bytes, list[str]] = narrowed
            if len(dropped) < len(narrowed) and len(narrowed) + len(dropped) == len(self.ids):
                # most of the last matches kept (a letter more of a word): the last mask less the
                # few dropped, not a mask set one hit at a time (90,000 hits at a million: 11 ms)
                ids = self.ids.without(map(rows.ids.__getitem__, dropped), pause)
                self.kept_all = unchanged and not dropped
            else:
                ids = rows.mask_at(narrowed, pause)
        else:
            excerpt = None
            mask, rest = found = wanted._first_pass(rows, ladder, today, pause)
            if rest:
                having = _having(_where(mask, pause), rows.hay, rest, pause)
                found, ids = having, rows.mask_at(having, pause)
            else:  # one word: the ids straight from the mask; positions only if the next key needs them
                ids = _ids_at(rows, mask, pause)
        self.filter, self.ids, self._positions, self._excerpt = wanted, ids, found, excerpt
        self._of = (rows, ladder, today, changes)
        self.searches += 1  # (one stopped by `pause` is not counted: it stopped within a slice)
        return ids


def _month_word(word: str | None) -> bool:
    """Whether a stored word is a month ('YYYY-MM'; None is the missing month): the words of a
    RowStore hold months, days and owners together."""
    return word is None or (len(word) == 7 and word[4] == "-" and word[:4].isdigit() and word[5:].isdigit())


def _in_range(month: str | None, r: tuple[str | None, str | None] | None) -> bool:
    if r is None:
        return month is None
    if month is None:
        return False
    low, high = r
    return (low is None or month >= low) and (high is None or month <= high)


def _due_window(today: date) -> tuple[str, str]:
    return today.isoformat(), (today + timedelta(days=DUE_DAYS - 1)).isoformat()


# ---------------------------------------------------------------- parsing


def _stage_matches(stages: Iterable[StageLike], prefix: str) -> list[StageLike]:
    p = prefix.casefold()
    return [
        s for s in stages if s.name.casefold().startswith(p) or any(w.startswith(p) for w in s.name.casefold().split())
    ]


def _month_range(value: str, today: date) -> tuple[str | None, str | None] | None:
    if value.casefold() in ("none", "-"):
        return None
    if ".." in value:
        low_text, _, high_text = value.partition("..")
        low = parse_month(low_text, today=today, field="filter: month") if low_text else None
        high = parse_month(high_text, today=today, field="filter: month") if high_text else None
        if low is None and high is None:
            raise DomainError("filter: month: needs a month on at least one side of '..', e.g. month:2027-03..2027-06")
        if low is not None and high is not None and low > high:
            if any(c.isdigit() for c in high_text):
                raise DomainError(f"filter: month:{value} ends before it starts")
            high = f"{int(high[:4]) + 1:04d}{high[4:]}"  # month:dec..nov: to the November after
        return (low, high)
    month = parse_month(value, today=today, field="filter: month")
    return (month, month)


def parse_filter(text: str, stages: Iterable[StageLike], today: date) -> Filter:
    """Read what was typed after `/` (or given to `--filter`). Raises DomainError, in one line, on a
    field it does not know or a value it cannot read."""
    stages = list(stages)
    words: list[str] = []
    stage_sets: list[frozenset[int]] = []
    owners: list[str] = []
    months: list[tuple[str | None, str | None] | None] = []
    due: list[str] = []
    stale = False
    closed: set[int] = set()
    for term in text.split():
        name, colon, value = term.partition(":")
        if not colon or not name.isalpha():
            if term.casefold() == "stale":
                stale = True
            else:
                words.append(term.casefold())
            continue
        key = name.casefold()
        if key not in ("stage", "owner", "month", "due"):
            raise DomainError(f"filter: {name}: is not a field; the fields are {', '.join(FIELDS)}")
        if not value:
            raise DomainError(f"filter: {key}: needs a value, e.g. {_EXAMPLES[key]}")
        if key == "stage":
            found = _stage_matches(stages, value)
            if not found:
                names = ", ".join(s.name for s in stages)
                raise DomainError(f"filter: no stage starts with {value!r}; the stages are {names}")
            stage_sets.append(frozenset(s.id for s in found))
            closed.update(s.id for s in found if s.kind != OPEN)
        elif key == "owner":
            owners.append(value.casefold())
        elif key == "month":
            months.append(_month_range(value, today))
        else:
            which = value.casefold()
            if which not in DUE_VALUES:
                raise DomainError(f"filter: due:{value} is not known; use due:overdue or due:week")
            due.append(which)
    # a field given twice matches either value: stage sets join, the others collect their values
    return Filter(
        text=text.strip(),
        words=tuple(words),
        stage_ids=(frozenset().union(*stage_sets),) if stage_sets else (),
        owners=(tuple(owners),) if owners else (),
        months=(tuple(months),) if months else (),
        due=tuple(dict.fromkeys(due)),
        stale=stale,
        closed_stages=frozenset(closed),
    )


_EXAMPLES = {"stage": "stage:quote", "owner": "owner:sam", "month": "month:2027-03 or month:mar", "due": "due:overdue"}


def hint(text: str, stages: Iterable[StageLike]) -> str:
    """The completion hint for what is typed so far: the fields when nothing or part of a field
    name is typed, the values a field takes right after its `:`."""
    last = text.split()[-1] if text and not text[-1].isspace() else ""
    name, colon, value = last.partition(":")
    key = name.casefold()
    if colon and key == "stage":
        found = _stage_matches(stages, value) if value else list(stages)
        return "stages: " + (", ".join(s.name for s in found) if found else "none starts so")
    if colon and key == "due":
        return "due: overdue (follow-up before today) · week (today to 6 days ahead)"
    if colon and key == "month":
        return "month: 2027-03 · mar (the next March) · 2027-03..2027-06 · none"
    if colon and key == "owner":
        return "owner: the start of a name, e.g. owner:sam"
    if not last or (not colon and any(f.startswith(last.casefold()) for f in FIELDS)):
        return FIELD_HINT
    return ""


__all__ = ["DUE_DAYS", "FIELDS", "FIELD_HINT", "SLICE", "Filter", "Hits", "Pause", "hint", "parse_filter"]
