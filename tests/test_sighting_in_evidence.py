"""Issue 9, point 4 on the sighting-in screen at 80x24: a stage without a suggestion says why, the
guessed outcomes of an import are counted apart, and "Accept all" lists each change with the EV it
moves before it asks."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from apphelpers import screen_text, settle

from evpipe.models.importer import ImportOptions, commit_import, plan_import
from evpipe.models.journal import ev_phrase
from evpipe.models.store import Store
from evpipe.tui.app import EvpipeApp
from evpipe.tui.dialogs import ConfirmDialog

CRM = Path(__file__).parent / "fixtures" / "crm"


async def test_accept_all_lists_the_changes_and_the_ev_they_move(engine):
    s = Store(engine, who="tester")  # the default ladder
    for i in range(12):
        p = s.add(f"closed {i}", "1000", "Quote sent", at=datetime(2026, 10, 1, 9)).prospect
        s.move(p.id, "won" if i < 9 else "lost", at=datetime(2026, 11, 10, 9))
    s.add("Open [b]one[/b]", "2000", "Suspect", at=datetime(2026, 10, 1, 9))
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        rows = {r.stage: r for r in app.screen.cal.stages}
        # Date held and Deposit paid: no deal reached them (before: 9 won, 0 lost, and a suggestion)
        assert [rows[x].note for x in ("Date held", "Deposit paid")] == ["no outcomes", "no outcomes"]
        assert "no outcomes" in screen_text(app)
        await pilot.press("A")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        text = screen_text(app)
        # Suspect 5% -> 43% on 2,000: EV +760; Enquiry and Quote sent have no open prospect
        assert "Suspect 5% → 43%, " + ev_phrase(760 * 10**6) in text
        assert "Enquiry 10% → 45%" in text and "Quote sent 25% → 52%" in text
        assert "in all: " + ev_phrase(760 * 10**6) in text and "Set these 3?" in text
        await pilot.press("n")
        await settle(pilot)
        assert Store(engine).stage("Suspect").probability_bp == 500


async def test_a_crm_import_without_evidence_suggests_nothing_on_screen(engine):
    store = Store(engine, who="tester")
    store.add_stage("Prospecting", "10")
    store.add_stage("Engaging", "30")
    for stage in ("Suspect", "Enquiry", "Quote sent", "Date held", "Deposit paid"):
        store.remove_stage(stage)
    options = ImportOptions(values_file=CRM / "products.csv", values_key="product")
    commit_import(engine, plan_import(engine, CRM / "sales_pipeline.csv", options, who="tester"), who="tester")
    app = EvpipeApp(str(engine.url), who="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        assert [(r.stage, r.suggested_bp, r.note) for r in app.screen.cal.stages] == [
            ("Prospecting", None, "no outcomes"),  # the deals were placed on Engaging: never seen here
            ("Engaging", None, "inferred"),
        ]
        text = screen_text(app)
        assert "inferred" in text and app.screen.cal.inferred == 6711
        await pilot.press("A")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmDialog)
