"""Issue 11, point 2: an edit made on stale data is merged when the fields do not overlap and refused
(naming who changed which field, from what to what, and when) when they do; the form stays open with
what was typed. Two moves from two sessions: the second is refused, never applied to the old stage."""

from __future__ import annotations

import pytest
from apphelpers import RecordingApp, settle
from textual.widgets import Input

from evpipe.models.errors import Conflict
from evpipe.models.kpi import Scope, kpis
from evpipe.models.store import Store
from evpipe.tui.screens.prospect_form import ProspectForm


@pytest.fixture
def two(engine):
    sam, priya = Store(engine, who="sam"), Store(engine, who="priya")
    pid = sam.add("Coastline Realty", "11000", "Enquiry", notes="first call").prospect.id
    return engine, sam, priya, pid


def test_other_fields_are_merged(two):
    engine, sam, priya, pid = two
    seen = priya.get(pid)
    sam.edit(pid, notes="sent the brochure")
    result = priya.edit(pid, value="12500", expected_version=seen.version)
    p = priya.get(pid)
    assert p.value_cents == 1_250_000 and p.notes == "sent the brochure"  # both changes stand
    assert any("merged" in w and "sam changed notes" in w for w in result.warnings)
    assert kpis(engine, Scope()).tv_cents == 1_250_000


def test_your_own_change_since_is_merged_without_a_note(two):
    # A follow-up priya set (saved at once) while her edit form was open: her edit merges with it
    # and says nothing of it; it said "merged with a change made since you opened it" (the
    # tester's report). Sam's change since is still named.
    engine, sam, priya, pid = two
    seen = priya.get(pid)
    Store(engine, who="priya").set_follow_up(pid, "2026-12-01")
    result = priya.edit(pid, value="12500", expected_version=seen.version)
    p = priya.get(pid)
    assert p.value_cents == 1_250_000 and str(p.next_follow_up) == "2026-12-01"
    assert not result.warnings
    seen = priya.get(pid)
    priya.set_follow_up(pid, "2026-12-02")
    sam.edit(pid, notes="sent the brochure")
    result = priya.edit(pid, value="13000", expected_version=seen.version)
    (said,) = result.warnings  # sam's notes, not priya's own follow-up
    assert "merged" in said and "sam changed notes" in said


def test_the_same_field_is_refused_naming_who_changed_what_and_when(two):
    engine, sam, priya, pid = two
    seen = priya.get(pid)
    sam.edit(pid, value="12500")
    with pytest.raises(Conflict) as refused:
        priya.edit(pid, value="13000", notes="priya's notes", expected_version=seen.version)
    assert "sam changed value 11,000 -> 12,500 at 10:00" in str(refused.value)
    p = priya.get(pid)
    assert p.value_cents == 1_250_000 and p.notes == "first call"  # nothing of priya's was written


def test_the_same_value_typed_by_both_is_no_conflict(two):
    engine, sam, priya, pid = two
    seen = priya.get(pid)
    sam.edit(pid, value="12500")
    priya.edit(pid, value="12500", notes="agreed", expected_version=seen.version)
    p = priya.get(pid)
    assert (p.value_cents, p.notes) == (1_250_000, "agreed")


def test_a_move_made_since_refuses_a_second_move_but_not_an_edit(two):
    engine, sam, priya, pid = two
    seen = priya.get(pid)
    sam.move(pid, "won")
    with pytest.raises(Conflict) as refused:
        priya.move(pid, "next", expected_version=seen.version)
    assert "sam moved it Enquiry -> Won at 10:00" in str(refused.value)
    assert priya.get(pid).stage_name == "Won"  # never applied to the stage priya saw
    # an edit of other fields on that old version still merges with the move
    priya.edit(pid, notes="signed", expected_version=seen.version)
    p = priya.get(pid)
    assert (p.stage_name, p.notes) == ("Won", "signed")


def test_a_move_merges_with_an_edit_made_since(two):
    engine, sam, priya, pid = two
    seen = priya.get(pid)
    sam.edit(pid, value="20000")
    result = priya.move(pid, "next", expected_version=seen.version)
    p = priya.get(pid)
    assert p.stage_name == "Quote sent" and p.value_cents == 2_000_000
    # the journal's effect is the move at today's value: the KPIs are the journal's sum
    assert result.d_ev_micros == 2_000_000 * (2500 - 1000)


def test_a_delete_since_refuses_any_change(two):
    engine, sam, priya, pid = two
    seen = priya.get(pid)
    sam.log_activity(pid, "call", "rang them")  # touches no field: merges
    priya.edit(pid, phone="021 555", expected_version=seen.version)
    seen = priya.get(pid)
    sam.delete(pid)
    with pytest.raises(Conflict) as refused:
        priya.set_follow_up(pid, "2026-12-01", expected_version=seen.version)
    assert "sam deleted it at 10:00" in str(refused.value)


def test_an_old_journal_without_versions_is_refused_in_the_general_words(two):
    """Entries written before versions were journalled cannot tell what changed: refuse."""
    from sqlalchemy import text

    engine, sam, priya, pid = two
    seen = priya.get(pid)
    sam.edit(pid, notes="x")
    with engine.begin() as c:
        c.execute(text("UPDATE change_event SET payload = '{}' WHERE action = 'edit'"))
    with pytest.raises(Conflict, match="changed by someone else"):
        priya.edit(pid, value="1", expected_version=seen.version)


async def test_the_form_stays_open_with_the_typed_values_and_names_the_change(two):
    engine, sam, priya, pid = two
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        await pilot.press("e")
        await settle(pilot, until=lambda a: isinstance(a.screen, ProspectForm))
        form = app.screen
        assert isinstance(form, ProspectForm)
        sam.edit(pid, value="12500")  # while the form is open
        form.query_one("#value", Input).value = "13,000"
        form.query_one("#phone", Input).value = "09 555 1234"
        await pilot.press("ctrl+s")
        await settle(pilot, until=lambda a: "sam changed value" in str(form.query_one("#conflict-error").render()))
        assert app.screen is form  # still open
        said = str(form.query_one("#conflict-error").render())
        assert "sam changed value 11,000 -> 12,500 at 10:00" in said
        assert form.query_one("#value", Input).value == "13,000"  # what was typed stays
        assert form.query_one("#phone", Input).value == "09 555 1234"
        p = Store(engine).get(pid)
        assert (p.value_cents, p.phone) == (1_250_000, "")
        # the user decides: saving again puts theirs over sam's
        await settle(pilot, until=lambda a: form.base_version == p.version)
        await pilot.press("ctrl+s")
        await settle(pilot, until=lambda a: a.screen is not form)
        p = Store(engine).get(pid)
        assert (p.value_cents, p.phone) == (1_300_000, "09 555 1234")
        await settle(pilot, until=lambda a: a.pipeline.kpi_all == kpis(engine, Scope(period=a.pipeline.period)))
        assert app.pipeline.kpi_all == kpis(engine, Scope(period=app.pipeline.period))


async def test_the_form_merges_a_change_to_other_fields(two):
    engine, sam, priya, pid = two
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        await pilot.press("e")
        await settle(pilot, until=lambda a: isinstance(a.screen, ProspectForm))
        form = app.screen
        sam.edit(pid, notes="sam's notes")
        form.query_one("#value", Input).value = "15000"
        await pilot.press("ctrl+s")
        await settle(pilot, until=lambda a: a.screen is not form)
        p = Store(engine).get(pid)
        assert (p.value_cents, p.notes) == (1_500_000, "sam's notes")
        assert any("merged" in n and "sam changed notes" in n for n in app.notices)
        await settle(pilot, until=lambda a: a.pipeline.view.rows[pid].value_cents == 1_500_000)


def _imported(engine, tmp_path, name: str, text: str):
    from evpipe.models.importer import ImportOptions, import_file

    path = tmp_path / name
    path.write_text(text)
    import_file(engine, path, ImportOptions(source="team.csv"), who="owner")


def test_an_edit_made_while_an_import_updated_the_prospect_merges_or_names_the_import(engine, tmp_path):
    """A re-import journalled its edit and move without the version it left: a rep's edit of other
    fields, made on the form opened before it, was refused in the general words ('now version 2;
    reload'), and so was every later stale edit of that prospect, whatever it changed."""
    _imported(engine, tmp_path, "a.csv", "id,name,value,stage,owner\nK1,Lambda,5000,Enquiry,sam\n")
    sam, priya = Store(engine, who="sam"), Store(engine, who="priya")
    seen = sam.get("Lambda")
    _imported(engine, tmp_path, "b.csv", "id,name,value,stage,owner\nK1,Lambda,5500,Quote sent,sam\n")
    result = sam.edit(seen.id, company="Acme", expected_version=seen.version)  # merged
    assert any("merged" in w and "owner changed value 5,000 -> 5,500" in w for w in result.warnings)
    p = sam.get(seen.id)
    assert (p.company, p.value_cents, p.stage_name) == ("Acme", 550_000, "Quote sent")
    with pytest.raises(Conflict) as refused:  # the same field: refused, naming the import's change
        sam.edit(seen.id, value="6000", expected_version=seen.version)
    assert "owner changed value 5,000 -> 5,500 at 10:00" in str(refused.value)
    # a change made after the import, on a version the import left, merges too
    seen = sam.get(seen.id)
    priya.edit(seen.id, notes="priya's", expected_version=None)
    sam.edit(seen.id, phone="021 555", expected_version=seen.version)
    p = sam.get(seen.id)
    assert (p.notes, p.phone, p.value_cents) == ("priya's", "021 555", 550_000)


def test_a_prospect_imported_as_won_merges_a_later_stale_edit(engine, tmp_path):
    """An import of a won row journals two entries (added, then won); the second had no version, so
    any stale edit of the prospect after it was refused in the general words."""
    _imported(engine, tmp_path, "a.csv", "id,name,value,stage\nK1,Gamma,5000,Won\n")
    store = Store(engine, who="owner")
    seen = store.get("Gamma")
    Store(engine, who="sam").edit(seen.id, notes="signed")
    store.edit(seen.id, phone="09 555", expected_version=seen.version)
    p = store.get(seen.id)
    assert (p.notes, p.phone) == ("signed", "09 555")


async def test_the_form_names_who_deleted_the_prospect_it_was_editing(two):
    """Deleted by someone else while the edit form was open: the refusal said "sam deleted it at
    10:00", then the form read the prospect again, found none, and put "prospect: there is no
    prospect #1" in its place (who, what and when gone)."""
    engine, sam, priya, pid = two
    app = RecordingApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: a.pipeline is not None and a.pipeline.complete)
        await pilot.press("e")
        await settle(pilot, until=lambda a: isinstance(a.screen, ProspectForm))
        form = app.screen
        assert isinstance(form, ProspectForm)
        sam.delete(pid)  # while the form is open
        form.query_one("#value", Input).value = "13,000"
        await pilot.press("ctrl+s")
        await settle(pilot, until=lambda a: "any more" in str(form.query_one("#conflict-error").render()))
        said = str(form.query_one("#conflict-error").render())
        assert "sam deleted it at 10:00" in said and "esc closes the form" in said, said
        assert "#" not in said
        assert app.screen is form and form.query_one("#value", Input).value == "13,000"
