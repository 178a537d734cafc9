"""The command line forgives like the app does (issue 10, point 8): names match ignoring case and by
a unique prefix, an ambiguous one lists the candidates in one line, `list` aligns wide names."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from evpipe.models.errors import DomainError, NotFound
from evpipe.models.names import display_name, resolve_prospect
from tests.test_cli import run


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "names.db"
    run(path, "init")
    for name, value in [
        ("Harbour Cruises", "9000"),
        ("Hillside Weddings", "4000"),
        ("Hilltop Gala", "3000"),
        ("Ann", "100"),
        ("Annual Dinner", "200"),
        ("東京 Tours 🚢", "5000"),
        ("50% off_sale", "700"),
    ]:
        run(path, "add", name, "--value", value)
    return path


def names_of(path) -> dict[str, dict]:
    import json

    return {r["name"]: r for r in json.loads(run(path, "list", "--json").stdout)}


def test_a_unique_prefix_in_any_case_names_the_prospect(db):
    out = run(db, "move", "harb", "next").stdout
    assert "Harbour Cruises" in out
    assert names_of(db)["Harbour Cruises"]["stage"] != names_of(db)["Hillside Weddings"]["stage"]
    run(db, "log", "HILLS", "call", "Talked dates")
    run(db, "follow", "hilltop", "2027-01-20")
    assert names_of(db)["Hilltop Gala"]["next_follow_up"] == "2027-01-20"
    run(db, "edit", "東京", "--value", "5500")
    assert names_of(db)["東京 Tours 🚢"]["value"] == "5500.00"


def test_an_exact_name_wins_over_longer_names_starting_with_it(db):
    run(db, "edit", "ANN", "--value", "150")
    rows = names_of(db)
    assert rows["Ann"]["value"] == "150.00" and rows["Annual Dinner"]["value"] == "200.00"


def test_an_ambiguous_prefix_lists_the_candidates_in_one_line(db):
    proc = run(db, "move", "hil", "next", ok=False)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Hillside Weddings (#2)" in lines[0] and "Hilltop Gala (#3)" in lines[0]
    assert "type more of the name or use the id" in lines[0]
    assert names_of(db)["Hillside Weddings"]["stage"] == names_of(db)["Hilltop Gala"]["stage"]  # nothing moved


def test_no_match_and_like_wildcards_are_literal(db):
    proc = run(db, "move", "zzz", "next", ok=False)
    assert proc.returncode == 1 and "no prospect is named 'zzz'" in proc.stderr
    # % and _ in what is typed are letters, not wildcards
    assert "50% off_sale" in run(db, "move", "50%", "next").stdout
    for wild in ("_", "%", "H_ll"):
        proc = run(db, "move", wild, "next", ok=False)
        assert proc.returncode == 1 and f"no prospect is named {wild!r}" in proc.stderr


def test_the_rule_itself():
    rows = [(1, "Harbour"), (2, "harbour"), (3, "Harbourside")]

    def pick(text, among):
        return resolve_prospect(text, among, lambda r: r[1], lambda r: r[0])

    assert pick("HARBOURS", rows) == (3, "Harbourside")
    with pytest.raises(DomainError, match=r"2 prospects are named 'harbour': Harbour \(#1\), harbour \(#2\)"):
        pick("harbour", rows)
    assert pick("straße", [(9, "STRASSE")]) == (9, "STRASSE")  # Unicode case folding
    with pytest.raises(NotFound):
        pick("x", [])
    many = [(i, f"Name {i}") for i in range(12)]
    with pytest.raises(DomainError, match=r"more than 8 prospects .*Name 7 \(#7\), \.\.\.; type more"):
        pick("name", many)


def test_list_aligns_wide_names(db):
    out = run(db, "list").stdout.splitlines()
    stage_at = cell_len(out[0][: out[0].index("stage")])
    value_end = cell_len(out[0][: out[0].index("value") + len("value")])
    rows = out[2:]
    assert any("東京 Tours 🚢" in line for line in rows)
    for line in rows:
        # every column starts (or, right-aligned, ends) at the same terminal cell on every row,
        # wide characters included
        assert cell_len(line[: line.index("Suspect")]) == stage_at, line
        amount = line.split("%")[-1].split()[0]  # the value, after the probability
        assert cell_len(line[: line.index(amount, line.index("Suspect")) + len(amount)]) == value_end, line


def test_list_shows_emoji_sequences_as_every_terminal_draws_them(db):
    """A family emoji (people joined by zero width joiners) or a skin tone is counted two cells
    and drawn in two to six, depending on the terminal: the list leaves the joiners, skin tones and
    emoji selectors out, so the columns after the name stay in line; the name saved is as typed."""
    family = "Ana \U0001f468\u200d\U0001f469\u200d\U0001f467 Ltd \U0001f469\U0001f3fd \u2764\ufe0f"
    run(db, "add", family, "--value", "10")
    out = run(db, "list").stdout
    assert "Ana \U0001f468\U0001f469\U0001f467 Ltd \U0001f469 \u2764" in out
    assert not {"\u200d", "\U0001f3fd", "\ufe0f"} & set(out)
    assert family in names_of(db)
    stage_at = cell_len(out.splitlines()[0][: out.splitlines()[0].index("stage")])
    for line in out.splitlines()[2:]:
        assert cell_len(line[: line.index("Suspect")]) == stage_at, line


def test_hangul_fillers_are_shown_in_the_cells_terminals_draw_them_in(db):
    """The Hangul filler U+3164 is drawn blank in two cells (tmux 3.3a) and the half-width one
    U+FFA0 in one, where rich counts none: the list shows them as as many spaces, so the columns
    after a name made of them stay in line (the tester's report); the name saved is as typed."""
    name = "\u3164\u3164 blank \uffa0"
    assert display_name(name) == "     blank  " and cell_len(display_name(name)) == 12
    run(db, "add", name, "--value", "10")
    out = run(db, "list").stdout
    assert not {"\u3164", "\uffa0"} & set(out)
    assert name in names_of(db)
    stage_at = cell_len(out.splitlines()[0][: out.splitlines()[0].index("stage")])
    for line in out.splitlines()[2:]:
        assert cell_len(line[: line.index("Suspect")]) == stage_at, line


def test_a_flag_is_kept_whole_and_counted_in_two_cells():
    """A flag (two regional indicators) is drawn in two cells by terminals (tmux 3.3a: one cell each
    indicator) and counted so by rich: display_name keeps it, and a cut through it keeps the half
    in one cell either way."""
    name = "Kiwi \U0001f1f3\U0001f1ff Ltd"
    assert display_name(name) == name
    assert cell_len("\U0001f1f3\U0001f1ff") == 2 and cell_len("\U0001f1f3") == 1
