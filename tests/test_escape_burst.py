"""Escape and the key after it, arriving in one read (a burst over a slow SSH link), are read as
the two keys they are (tui/escape_burst.py); escape sequences, Alt+Backspace and pastes as before.
The real app in a terminal: tests/test_tmux.py, test_escape_then_a_key_in_one_burst."""

from __future__ import annotations

import pytest
from textual import events
from textual._xterm_parser import XTermParser

from evpipe.tui.escape_burst import BurstParser, pasted_text, read_escape_apart


def read(*chunks: str, parser: type[XTermParser] = BurstParser) -> list[tuple[str, str | None]]:
    """What `parser` makes of `chunks`, each one read: (key, character), or (kind, text)."""
    reader = parser()
    out = []
    for chunk in chunks:
        for event in reader.feed(chunk):
            if isinstance(event, events.Key):
                out.append((event.key, event.character))
            else:
                out.append((type(event).__name__, getattr(event, "text", None)))
    return out


@pytest.mark.parametrize(
    ("data", "keys"),
    [
        ("\x1b>", [("escape", "\x1b"), ("greater_than_sign", ">")]),  # Textual: ">" alone
        ("\x1b\r", [("escape", "\x1b"), ("enter", "\r")]),  # Textual: enter alone
        ("\x1bj", [("escape", "\x1b"), ("j", "j")]),  # Textual: alt+j
        ("\x1bJ", [("escape", "\x1b"), ("J", "J")]),
        ("\x1b ", [("escape", "\x1b"), ("space", " ")]),
        ("ab\x1b/cd", [("a", "a"), ("b", "b"), ("escape", "\x1b"), ("slash", "/"), ("c", "c"), ("d", "d")]),
        ("\x1b\x1bj", [("escape", "\x1b"), ("escape", "\x1b"), ("j", "j")]),
        # Enter typed before the app had the terminal: the line discipline made it a line feed,
        # which Textual read as ctrl+j (nothing), and `j` Enter at the start opened no page
        ("j\nx", [("j", "j"), ("enter", "\r"), ("x", "x")]),
        ("\x1bé", [("escape", "\x1b"), ("é", "é")]),
        # what still starts a sequence after ESC
        ("\x1b[A", [("up", None)]),
        ("\x1bOP", [("f1", None)]),
        ("\x1b\x1b[B", [("escape", "\x1b"), ("down", None)]),
        ("\x1b\x7f", [("ctrl+w", None)]),  # Alt+Backspace: delete a word, as Textual reads it
        # inside a paste nothing is a key: Textual sent "^", "j", "b" as key presses after the ESC
        ("\x1b[200~a\x1bjb\x1b[201~", [("Paste", "ajb")]),
        ("\x1b[200~Deal \x1b[32mwon\x1b[0m ok\x1b[201~>", [("Paste", "Deal won ok"), ("greater_than_sign", ">")]),
    ],
)
def test_escape_and_the_next_key_in_one_read(data, keys):
    assert read(data) == keys


def test_an_escape_sequence_split_across_reads_is_still_one_key():
    assert read("\x1b[", "A") == [("up", None)]
    assert read("x\x1b", "[B") == [("x", "x"), ("down", None)]


def test_the_drivers_read_keys_with_it(monkeypatch):
    from textual.drivers import linux_driver, web_driver

    monkeypatch.setattr(linux_driver, "XTermParser", linux_driver.XTermParser)
    monkeypatch.setattr(web_driver, "XTermParser", web_driver.XTermParser)
    monkeypatch.setattr(linux_driver, "getincrementaldecoder", linux_driver.getincrementaldecoder)
    monkeypatch.setattr(web_driver, "getincrementaldecoder", web_driver.getincrementaldecoder)
    read_escape_apart()
    assert linux_driver.XTermParser is BurstParser
    assert web_driver.XTermParser is BurstParser
    # and a byte that is not UTF-8 is read as U+FFFD, not raised out of the input thread
    for driver in (linux_driver, web_driver):
        decode = driver.getincrementaldecoder("utf-8")().decode
        assert decode(b"a\xffb") == "a\ufffdb"
        assert decode(b"\xc3") + decode(b"\xa9") == "\u00e9"  # a character split across reads still joins


def test_a_paste_mark_split_between_reads_still_keeps_the_paste_whole():
    # The mark that starts a paste split between two reads: the ESC and key inside the paste stayed
    # apart and an Escape went out in the middle of it.
    chunks = ("\x1b[20", "0~ab\x1bjc\x1b[201~x")
    assert read(*chunks) == [("Paste", "abjc"), ("x", "x")]
    # its text split across reads, and its end mark too
    assert read("\x1b[200~ab", "c\x1b[3", "2md\x1b[20", "1~x>") == [
        ("Paste", "abcd"),
        ("x", "x"),
        ("greater_than_sign", ">"),
    ]
    # and the mark that ends it: the split after it works again
    keys = read("\x1b[200~ab\x1b[2", "01~\x1b>")
    assert keys[-2:] == [("escape", "\x1b"), ("greater_than_sign", ">")]


def test_escape_at_the_end_of_one_read_and_a_key_at_the_start_of_the_next():
    assert read("\x1b", ">") == [("escape", "\x1b"), ("greater_than_sign", ">")]
    assert read("x\x1b", "[A") == [("x", "x"), ("up", None)]


def test_escape_read_alone_in_time_then_a_key_in_the_next_read():
    """The driver's tick reads an ESC alone as Escape once the delay passes; a key in the next read
    is then a key of its own. Taking that ESC as still waiting threw into the parser's plain read
    and stopped the app's input (every tmux test that pressed Escape then a key)."""
    reader = BurstParser()
    out = list(reader.feed("\x1b"))
    reader._timeout_time = 0.0  # the delay has passed
    out += list(reader.tick())
    out += list(reader.feed("a"))
    assert [(e.key, e.character) for e in out if isinstance(e, events.Key)] == [("escape", "\x1b"), ("a", "a")]


def test_a_mark_whose_first_part_timed_out_is_no_paste():
    """A paste mark split over two reads with the escape delay between: Textual reads the first
    part as keys once its wait is over, so the two parts make no paste; taken for one, every
    Escape and key after it were read together again (a dialog confirmed instead of cancelled)."""
    reader = BurstParser()
    out = list(reader.feed("\x1b[20"))
    reader._timeout_time = 0.0  # the delay has passed
    out += list(reader.tick())
    out += list(reader.feed("0~"))
    after = [(e.key, e.character) for e in reader.feed("\x1b>") if isinstance(e, events.Key)]
    assert after == [("escape", "\x1b"), ("greater_than_sign", ">")]


@pytest.mark.parametrize("bad", ["\x1b[9999999u", "\x1b[1;1;9999999u", "\x1b[1;5:3u"])
def test_a_sequence_the_parser_cannot_read_is_dropped_and_input_goes_on(bad):
    # Textual's parser raised out of these (a character past the last one, a key-release form) and
    # the app's input stopped with a traceback.
    assert read(bad, "j", "\x1b>")[-3:] == [("j", "j"), ("escape", "\x1b"), ("greater_than_sign", ">")]


def test_a_pasted_text_keeps_its_words_and_loses_its_escape_codes():
    """Pasting coloured text from a terminal or a web page: `called \x1b[1mBOLD\x1b[0m and agreed`
    went into a form as `^[1mBOLD^[0m and agreedcalled` (Textual typed the part after the first ESC
    as keys before the Paste of the part before it)."""
    assert read("\x1b[200~called \x1b[1mBOLD\x1b[0m and agreed\x1b[201~") == [("Paste", "called BOLD and agreed")]
    assert pasted_text("a\x1b]0;title\x07b\x00c\td\ne\x9bf\x7f") == "abc\td\nef"
