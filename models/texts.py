"""Texts by position in one UTF-8 buffer (`TextColumn`), and the buffer that moves to a file once
it is large (`SpilledBytes`): the names and search texts of a million prospects are some 140 MB,
more than the app's whole memory budget, so past SPILL bytes they are kept in an unlinked
temporary file the operating system caches, read a text at a time (`os.pread`) or searched
through a read-only map of the file that is let go a window at a time (`MADV_DONTNEED`): the pages
stay in the system's file cache, not in the app's memory. Nothing here imports Textual."""

from __future__ import annotations

import mmap
import os
import re
import tempfile
import threading
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, repeat
from operator import contains, is_not, itemgetter

from platformdirs import user_cache_path

#: A column's buffer moves to a file once it holds more than this many bytes (the search texts of
#: some 40,000 prospects): below it, a bytearray.
SPILL = 4 << 20

#: Texts searched through the file's map between two releases of its pages (`MADV_DONTNEED`): some
#: 2 MB of a pipeline's search texts, the most of them the app holds at once.
WINDOW = 20_000

#: Bytes written to the file at once (appends wait in memory until there are this many, or a read
#: needs them).
_FLUSH = 1 << 20


def _spill_file():
    """An unlinked temporary file in the user's cache folder (on disk, where /tmp may be memory),
    else the system's temporary folder."""
    try:
        folder = user_cache_path("evpipe", appauthor=False)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return tempfile.TemporaryFile(dir=folder)
    except OSError:
        return tempfile.TemporaryFile()


class SpilledBytes:
    """An append-only byte buffer in a temporary file, with a bytearray's `len`, `extend` and slices.

    Appends wait in a small tail in memory (`_FLUSH`); slices are read with `os.pread`; `mapped`
    gives a read-only map of all of it for a search, and `release` lets the pages a search touched
    go. The buffer only ever grows, so a map taken before an append still reads true for every
    offset it covers (a worker may search an older map while the UI thread appends). One lock
    keeps the tail and the file in step between threads."""

    __slots__ = ("_file", "_lock", "_map", "size", "tail")

    def __init__(self, first: bytes | bytearray = b"") -> None:
        self._file = _spill_file()
        self._lock = threading.Lock()
        self._map: mmap.mmap | None = None
        self.size = 0  # bytes in the file
        # bytes after them, not yet written; RowStore.append_raw, loading rows before any other
        # column shares this buffer, puts them here itself (a call less a text), `settle` after
        self.tail = bytearray()
        if first:
            self._write(first)

    def _write(self, data: bytes | bytearray) -> int:
        """Write `data` after the file's bytes; how many were written (all, or an OSError: a full
        disk, with `size` counting those that were)."""
        fd = self._file.fileno()
        done = 0
        try:
            with memoryview(data) as view:
                while done < len(view):  # (a write may take part of it)
                    with view[done:] as rest:
                        done += os.pwrite(fd, rest, self.size + done)
        finally:
            self.size += done
        return done

    def _flush(self) -> None:
        """The tail written to the file; what a full disk left unwritten stays in the tail."""
        if self.tail:
            before = self.size
            try:
                self._write(self.tail)
            finally:
                del self.tail[: self.size - before]

    def __len__(self) -> int:
        return self.size + len(self.tail)

    def extend(self, data: bytes) -> None:
        """Append `data` (as bytearray.extend)."""
        with self._lock:
            self.tail += data
        self.settle()

    def settle(self) -> None:
        """Write the tail once it holds _FLUSH bytes (a full disk: they wait in memory, to be
        written later)."""
        with self._lock:
            if len(self.tail) >= _FLUSH:
                try:
                    self._flush()
                except OSError:
                    pass

    def __getitem__(self, where: slice) -> bytes:
        start, stop = where.start, where.stop
        with self._lock:
            size, fd = self.size, self._file.fileno()
            if start >= size:
                return bytes(self.tail[start - size : stop - size])
            if stop <= size:
                return os.pread(fd, stop - start, start)
            return os.pread(fd, size - start, start) + self.tail[: stop - size]

    def mapped(self) -> mmap.mmap | bytes:
        """A read-only map of every byte written so far (no bytes yet: b"", a file of none cannot
        be mapped). When the tail cannot be written (a full disk), all of it read into memory."""
        with self._lock:
            try:
                self._flush()
            except OSError:
                return os.pread(self._file.fileno(), self.size, 0) + self.tail
            if not self.size:
                return b""
            if self._map is None or len(self._map) != self.size:
                self._map = mmap.mmap(self._file.fileno(), self.size, access=mmap.ACCESS_READ)
            return self._map

    @staticmethod
    def release(view: mmap.mmap | bytes | bytearray) -> None:
        """Let the pages of `view` that a search touched go from the app's memory (they stay in
        the system's file cache: read again, they are mapped again, not read from the disk)."""
        if isinstance(view, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            view.madvise(mmap.MADV_DONTNEED)


def windows(positions: Sequence[int]) -> Iterator[Sequence[int]]:
    """Positions (in order) cut where they cross from one WINDOW of rows to the next: the texts
    written as the rows were read lie in position order, so each part's texts lie together."""
    cut, n = 0, len(positions)
    while cut < n:
        upto = bisect_left(positions, (positions[cut] // WINDOW + 1) * WINDOW, cut)
        yield positions[cut:upto]
        cut = upto


class TextColumn:
    """Texts by position, kept as UTF-8 in one buffer with where each starts and ends (8 bytes a
    text beside its bytes), not a str object each (a 49-byte header, rounded up, and a list slot):
    the names of 100,000 prospects take 3.5 MiB rather than 8. `column[i]` makes the str. A text
    replaced is written at the end of the buffer (the old bytes stay until the rows are read again).
    Past SPILL bytes the buffer is a file (`SpilledBytes`, see `spill`)."""

    __slots__ = ("data", "ends", "starts")

    def __init__(self) -> None:
        self.data: bytearray | SpilledBytes = bytearray()
        self.starts = array("I")
        self.ends = array("I")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> str:
        return self.data[self.starts[i] : self.ends[i]].decode()

    def __iter__(self) -> Iterator[str]:
        return map(self.__getitem__, range(len(self.starts)))

    def empty(self, i: int) -> bool:
        return self.starts[i] == self.ends[i]

    def _write(self, text: str) -> tuple[int, int]:
        data = self.data
        start = len(data)
        data.extend(text.encode())
        end = len(data)
        if end > SPILL:
            self.spill()
        return start, end

    def append(self, text: str) -> None:
        start, end = self._write(text)
        self.starts.append(start)
        self.ends.append(end)

    def insert(self, i: int, text: str) -> None:
        start, end = self._write(text)
        self.starts.insert(i, start)
        self.ends.insert(i, end)

    def __setitem__(self, i: int, text: str) -> None:
        if self[i] != text:
            self.starts[i], self.ends[i] = self._write(text)

    def spill(self, past: int = -1) -> None:
        """Move the buffer to a file (once), if it holds more than `past` bytes. Where no file can
        be written (a full disk, no folder to write in) it stays in memory."""
        if isinstance(self.data, bytearray) and len(self.data) > past:
            try:
                self.data = SpilledBytes(self.data)
            except OSError:
                pass

    def settle(self) -> None:
        """After texts were added without `append` (RowStore.append_raw): move the buffer to a
        file if it has grown past SPILL bytes, or write what waits to the file."""
        self.spill(SPILL)
        if isinstance(self.data, SpilledBytes):
            self.data.settle()

    @property
    def spilled(self) -> bool:
        return isinstance(self.data, SpilledBytes)

    def copy(self) -> TextColumn:
        """A copy to change apart: its own offsets (copied in C), the buffer shared. A text is only
        ever written at the end of the buffer, so each column's offsets keep pointing at its own
        texts whatever the other writes after them (the board's copy of 100,000 names: 0.8 MiB,
        not 3.6). A copy of a column still in memory that later moves to a file moves alone: the
        other keeps the bytearray, whose bytes it still reads."""
        other = TextColumn()
        other.data, other.starts, other.ends = self.data, array("I", self.starts), array("I", self.ends)
        return other

    # ------------------------------------------------------------ searching

    def holding(
        self,
        word: str,
        positions: Sequence[int] | None = None,
        pause: Callable[[], None] | None = None,
        step: int = WINDOW,
    ) -> bytes:
        """A byte per position (every text, when `positions` is None), 1 where that text holds
        `word`: UTF-8 is matched byte for byte, as the str would be. In C, one call a text; on a
        file, WINDOW texts at a time, the pages touched let go after each. Every text: `step`
        texts a call into C (at most WINDOW), `pause`, when given, called after each."""
        parts = self._holding(word.encode(), positions, step)
        if pause is None:
            return b"".join(parts)
        out = []
        for part in parts:
            out.append(part)
            pause()
        return b"".join(out)

    def holding_flags(self, word: str) -> Iterator[int]:
        """`holding` of every text, as a stream of 0s and 1s made a WINDOW at a time (for a pass
        that is taken a slice at a time)."""
        return chain.from_iterable(self._holding(word.encode(), None))

    def _holding(self, word: bytes, positions: Sequence[int] | None, step: int = WINDOW) -> Iterator[bytes]:
        # (a compiled pattern's search over a part of the buffer: some 30% quicker than
        # bytes.find, whose arguments come as a tuple, and as quick as the str's own `in`)
        search = re.compile(re.escape(word)).search
        starts, ends = self.starts, self.ends
        parts: Iterator[tuple[Iterable[int], Iterable[int]]]
        every = 1  # parts searched between two releases of the map's pages
        if positions is None:
            step = min(step, WINDOW)
            every = max(1, WINDOW // step)
            parts = ((starts[a : a + step], ends[a : a + step]) for a in range(0, len(starts), step))
        else:
            parts = map(self._bounds, windows(positions))
        with self.mapped() as view:
            for n, (part_starts, part_ends) in enumerate(parts, start=1):
                yield bytes(map(is_not, map(search, repeat(view), part_starts, part_ends), repeat(None)))
                if n % every == 0:
                    SpilledBytes.release(view)

    def _bounds(self, part: Sequence[int]) -> tuple[Sequence[int], Sequence[int]]:
        """Where the texts at positions `part` start and end, each in one call into C (an
        itemgetter: a fifth quicker a search of 30,000 of 100,000 texts than a map of each
        array's __getitem__)."""
        if len(part) == 1:
            return (self.starts[part[0]],), (self.ends[part[0]],)
        at = itemgetter(*part)
        return at(self.starts), at(self.ends)

    @contextmanager
    def mapped(self) -> Iterator[mmap.mmap | bytes | bytearray]:
        """The buffer to search: itself in memory, or a map of the file, whose pages are let go
        as the search ends (SpilledBytes.release, which the search also calls after each WINDOW)."""
        data = self.data
        view = data.mapped() if isinstance(data, SpilledBytes) else data
        try:
            yield view
        finally:
            SpilledBytes.release(view)


#: How many texts a narrowing filter copies into an Excerpt: at most some 19 MB of search texts;
#: at least as many as take longer to search where they are (0.4-0.5 us each) than to copy (0.6
#: us) and search twice in the copy (0.1 us): fewer are searched where they are, as the copy would
#: make one keystroke slower (the 30,000 'ha' leaves at 100,000 prospects: 14 ms, 31 with a copy).
EXCERPT = range(40_000, 120_001)


class Excerpt:
    """The texts at some positions of a column, copied in their order into a list of str in
    memory (`positions[k]` is where the k-th came from). A filter narrowed key after key searches
    the same few texts again each time, nearly all of which hold the word: a str's own `in` is the
    quickest test there is (91,000 of a million, each a hit: 9 ms, against 26 with a compiled
    pattern, which makes a match object for each hit, and 45 where they lie among a million)."""

    __slots__ = ("positions", "texts")

    def __init__(self, column: TextColumn, positions: array, pause: Callable[[], None] | None = None) -> None:
        self.positions = positions
        self.texts: list[str] = []
        at_start, at_end = column.starts.__getitem__, column.ends.__getitem__
        with column.mapped() as view:
            for part in windows(positions):
                slices = map(slice, map(at_start, part), map(at_end, part))
                self.texts.extend(map(bytes.decode, map(bytes, map(view.__getitem__, slices))))
                SpilledBytes.release(view)
                if pause is not None:
                    pause()

    def holding(self, word: str, positions: Sequence[int]) -> bytes:
        """A byte per position in the excerpt, 1 where that text holds `word` (TextColumn.holding)."""
        return bytes(map(contains, map(self.texts.__getitem__, positions), repeat(word)))
