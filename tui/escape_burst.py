"""Escape, then a key, in one burst: read as the two keys they are.

A terminal sends Escape as one byte, ESC, and also starts every escape sequence with it (an arrow
is ESC [ A); Alt+j is sent as ESC j. Textual's parser tells them apart by time: an ESC alone for a
moment is the Escape key. Over a slow SSH link the keys a rep types arrive in bursts, and ESC
with the next key in the same read was taken as one key: Escape then `>` became `>` alone (typed
into the filter being left: "har>"), Escape then Enter became Enter alone (a dialog the rep meant
to cancel was confirmed), Escape then `j` became Alt+j (nothing). evpipe binds no Alt+letter,
so an ESC followed in the same read by a key that starts no escape sequence is read as Escape,
then that key.

What still starts a sequence after ESC: `[` and `O` (keys and reports), `]`, `P`, `_` and `^`
(strings a terminal sends) and a backslash (the end of one), another ESC, and DEL (Alt+Backspace,
which deletes a word).

A bracketed paste is read here, not by Textual's parser, which read an ESC inside a paste (text
copied from a coloured terminal) as the start of a key and sent what followed as key presses: a
pasted `\x1b[32mwon` pressed `w` on the pipeline and marked a prospect won. The paste's text comes
out whole, as one Paste, with its escape codes and control characters taken out.

A line feed is read as Enter (`_fed`): keys typed before the app has the terminal to itself (a
rep typing `j` Enter as `evpipe` starts) went through the terminal's line discipline, which turns
the Enter key's carriage return into a line feed; Textual read that as ctrl+j, which nothing
binds, and the Enter was lost (the page never opened; a question kept the keys typed after it).
evpipe binds no ctrl+j.

The same drivers decode what they read as UTF-8, strictly: one byte that is not (0xff from a
terminal that sends Alt as an 8-bit byte) stopped the app with a traceback. They now read it as
U+FFFD (`_lenient`).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable
from functools import partial

from textual import events
from textual._xterm_parser import XTermParser
from textual.message import Message

#: ESC followed by a character that starts no escape sequence; or a bracketed paste's start or end.
_SPLIT = re.compile(r"\x1b(?=[^\[O\]P_^\\\x1b\x7f])|(\x1b\[20[01]~)")
_PASTE_START = "\x1b[200~"
_PASTE_END = "\x1b[201~"
#: What a pasted text keeps out: escape sequences (CSI, and OSC/DCS/APC/PM strings), a lone ESC,
#: and control characters other than tab and the line ends (NUL, the C1 set, DEL).
_NOT_TEXT = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b[\]P_^][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)


def pasted_text(text: str) -> str:
    """A pasted text as it reads: colours and other escape codes copied with it, and control
    characters, taken out ('called \\x1b[1mBOLD\\x1b[0m' -> 'called BOLD')."""
    return _NOT_TEXT.sub("", text)


class BurstParser(XTermParser):
    """Textual's parser, with Escape read apart from the key after it in the same read."""

    def __init__(self, debug: bool = False) -> None:
        super().__init__(debug)
        #: The end of the last read from its last ESC on (at most a paste mark's length), when it
        #: has one: a mark, or an ESC and the key after it, may be split between two reads.
        self._tail = ""
        #: Inside a bracketed paste: what was pasted so far (else None). Textual's parser never
        #: sees it: it read an ESC inside a paste as the start of a key and sent what followed as
        #: key presses (a pasted `\x1b[32mwon` pressed `w`, marking a prospect won).
        self._pasted: str | None = None

    def feed(self, data: str) -> Iterable[Message]:
        if self._pasted is not None:
            yield from self._pasting(data)
            return
        # the last read's end counts only while the parser still waits on it: once its wait is over
        # it has read those bytes as keys, and a mark or an ESC in them starts nothing any more
        tail = self._tail if self._timeout_time is not None else ""
        if not data or ("\x1b" not in data and not tail):
            self._tail = ""
            yield from self._fed(data)
            return
        text = tail + data
        cut = text.rfind("\x1b", max(0, len(text) - len(_PASTE_START) + 1))
        self._tail = text[cut:] if cut >= 0 else ""
        start = 0  # (in `data`)
        for match in _SPLIT.finditer(text):
            at = match.start() - len(tail)  # where in `data` (below 0: in the last read)
            if match.group(1):
                if match.group(1) == _PASTE_START and match.end() > len(tail):
                    # Textual reads the mark (its end may be all this read has of it); what follows
                    # is the paste's, kept apart until its end mark
                    end = match.end() - len(tail)
                    yield from self._fed(data[start:end])
                    self._tail, self._pasted = "", ""
                    yield from self._pasting(data[end:])
                    return
                continue
            if at < -1:
                continue
            # an ESC then a key that starts no sequence; the ESC ended the last read (at -1), or is here
            end = at + 1
            if end > start:
                yield from self._fed(data[start:end])
            yield from self._escape_alone()
            start = end
        if start < len(data):
            yield from self._fed(data[start:])

    def _pasting(self, data: str) -> Iterable[Message]:
        """A paste's text as it comes, read by read, until its end mark: then one Paste of the
        text, with the escape codes and control characters in it taken out (`pasted_text`), and
        what came after the mark read as keys again."""
        assert self._pasted is not None
        looked = max(0, len(self._pasted) - len(_PASTE_END) + 1)  # (a mark split across reads is whole now)
        text = self._pasted + data
        end = text.find(_PASTE_END, looked)
        if end < 0:
            self._pasted = text
            return
        self._pasted = None
        # Textual closes the paste it opened (its own Paste is empty: it was given no text)
        for message in self._fed(_PASTE_END):
            if not (isinstance(message, events.Paste) and not message.text):
                yield message
        yield events.Paste(pasted_text(text[:end]))
        rest = text[end + len(_PASTE_END) :]
        if rest:
            yield from self.feed(rest)

    def _fed(self, data: str) -> Iterable[Message]:
        """Textual's parsing of `data`. A sequence it cannot read (ESC [ 9999999 u: a character
        past the last one) raised out of its parser and stopped the app's input: the parser starts
        again after it instead, and the sequence is dropped."""
        try:
            for message in list(super().feed(data)):
                if isinstance(message, events.Key) and message.key == "ctrl+j":
                    message = events.Key("enter", "\r")  # (a line feed: the module's docstring)
                yield message
        except (ValueError, OverflowError, IndexError):
            self._gen = self.parse(self._tokens.append)
            self._awaiting = next(self._gen)
            self._timeout_time = None
            self._tail = ""

    def _escape_alone(self) -> Iterable[Message]:
        """What the parser says when no byte follows an ESC in time: the Escape key (its wait for
        the next byte ends now, as it would once the delay passed). Nothing when it is not
        waiting on one (a wait that is over: `tick` would throw into a plain read)."""
        if self._timeout_time is None:
            return
        self._timeout_time = 0.0
        yield from self.tick()


def _lenient(encoding: str) -> Callable[..., codecs.IncrementalDecoder]:
    """The drivers' `getincrementaldecoder`: a decoder that reads a byte that is not UTF-8 as
    U+FFFD rather than raising. A terminal that sends Alt as an 8-bit byte, or a line that garbles
    one, sent 0xff: Textual's strict decoder raised in the input thread and the app stopped with
    a traceback. The rep now sees a replacement character where it was typed (and can delete it)."""
    return partial(codecs.getincrementaldecoder(encoding), errors="replace")


def read_escape_apart() -> None:
    """Have the terminal's and the browser's drivers read keys with `BurstParser`, and bytes that
    are not UTF-8 as U+FFFD (`_lenient`), before the app starts: each driver makes its parser and
    its decoder when its input thread starts."""
    from textual.drivers import linux_driver, web_driver

    for driver in (linux_driver, web_driver):
        if getattr(driver, "XTermParser", None) is XTermParser:
            driver.XTermParser = BurstParser  # type: ignore[misc]
        if getattr(driver, "getincrementaldecoder", None) is codecs.getincrementaldecoder:
            driver.getincrementaldecoder = _lenient  # type: ignore[attr-defined]
