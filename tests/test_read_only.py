"""Read-only mode (issue 14, `evpipe serve` without --allow-writes): the process refuses every
write where it begins and SQLite opens the file read-only; the app hides and refuses its write keys.

Apart from tests/test_serve.py, whose browser (Playwright's sync API) holds an event loop for the
whole module, which the app's async tests here cannot share."""

from __future__ import annotations

import pytest


@pytest.fixture
def read_only():
    from evpipe.models.readonly import set_read_only

    set_read_only(True)
    yield
    set_read_only(False)


def test_a_read_only_process_refuses_every_write_and_sqlite_would_too(db_url, db_path, tmp_path, read_only):
    from evpipe.models.readonly import set_read_only

    set_read_only(False)
    from evpipe.models import open_db

    open_db(db_url).dispose()
    set_read_only(True)
    from evpipe.models.errors import DomainError
    from evpipe.models.importer import import_file
    from evpipe.models.readonly import ReadOnly
    from evpipe.models.settings import set_kpi_period
    from evpipe.models.store import Store

    engine = open_db(db_url, seed_ladder=False, create=False)
    try:
        store = Store(engine, who="viewer")
        for write in (
            lambda: store.add("Anything", "100", "Enquiry"),
            lambda: store.set_probability("Enquiry", "20"),
            lambda: store.undo(),
            lambda: set_kpi_period(engine, "24m"),
        ):
            with pytest.raises(ReadOnly, match="read-only"):
                write()
        csv = tmp_path / "in.csv"
        csv.write_text("name,value\nA,100\n", encoding="utf-8")
        with pytest.raises(DomainError, match="read-only"):
            import_file(engine, csv, who="viewer")
        assert store.ladder()  # reading is fine
        # the second wall: the file is open read-only in SQLite itself
        with engine.connect() as conn, pytest.raises(Exception, match="readonly"):
            conn.exec_driver_sql("DELETE FROM stage")
    finally:
        engine.dispose()


def test_a_read_only_engine_keeps_each_threads_connection_open_past_five_threads(db_path, read_only):
    """The review reads on threads of its own, new ones each time: a read-only engine must never
    close one thread's connection when another connects (SQLAlchemy's SingletonThreadPool did so
    past five threads, and a connection closed mid-query crashed the process)."""
    import threading

    from evpipe.models import open_db
    from evpipe.models.readonly import set_read_only

    url = f"sqlite:///{db_path}"
    set_read_only(False)
    open_db(url).dispose()
    set_read_only(True)
    engine = open_db(url, seed_ladder=False, create=False)
    results: dict[int, object] = {}
    connected, go = threading.Semaphore(0), threading.Event()

    def reader(i: int) -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            connected.release()
            go.wait(10)
            try:
                results[i] = conn.exec_driver_sql("SELECT count(*) FROM stage").scalar()
            except Exception as e:  # a connection another thread closed
                results[i] = repr(e)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    try:
        for t in threads:  # one at a time: each holds its connection while the next one connects
            t.start()
            assert connected.acquire(timeout=10)
        go.set()
        for t in threads:
            t.join(10)
    finally:
        go.set()
        engine.dispose()
    assert len(results) == 8 and all(isinstance(n, int) and n > 0 for n in results.values()), results


async def test_the_app_read_only_hides_and_refuses_write_keys_at_80x24(worked_engine, read_only, monkeypatch):
    """The app as `evpipe serve` starts it, at 80 x 24: the pipeline without write keys in its
    footer; `w` says why it does nothing; the database is unchanged; the palette lists no writes."""
    from apphelpers import press, screen_text, settle

    import evpipe.models.db
    from evpipe.models.kpi import kpis
    from evpipe.tui.app import EvpipeApp

    tried: list[int] = []
    refuse = evpipe.models.db.refuse_writes
    monkeypatch.setattr(evpipe.models.db, "refuse_writes", lambda: (tried.append(1), refuse()))
    before = kpis(worked_engine)
    url = worked_engine.url.render_as_string(hide_password=False)
    app = EvpipeApp(url, who="viewer", screen="pipeline", read_only=True)
    notices: list[str] = []
    real_notify = app.notify
    app.notify = lambda message, *a, **k: (notices.append(str(message)), real_notify(message, *a, **k))[1]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: "Quote sent" in screen_text(a))
        footer = screen_text(app).splitlines()[-1]
        assert "Advance" not in footer and "Won" not in footer and "Undo" not in footer and "Filter" in footer
        await press(app, pilot, "w", "greater_than_sign", "a", "u")
        assert len(notices) == 4 and all(n.startswith("read-only") for n in notices)
        assert app.screen_stack[-1] is app.screen and type(app.screen).__name__ == "PipelineScreen"  # no form
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Go to Review" in titles and not any(t.startswith(("Advance", "Mark won", "Add")) for t in titles)
        await press(app, pilot, "enter")  # a prospect's page: its write keys hidden too
        await settle(pilot, until=lambda a: type(a.screen).__name__ == "ProspectPage")
        footer = screen_text(app).splitlines()[-1]
        assert type(app.screen).__name__ == "ProspectPage" and "Edit" not in footer and "Won" not in footer
        await press(app, pilot, "e")
        assert len(notices) == 5 and type(app.screen).__name__ == "ProspectPage"  # no form opened
        for key, shown in (("3", "Forecast"), ("4", "Trend"), ("6", "What moved EV")):  # the owner's screens read
            await press(app, pilot, key)
            await settle(pilot, until=lambda a, shown=shown: shown in screen_text(a))
            assert shown in screen_text(app)
        await press(app, pilot, "7")  # the ladder, without the line of the keys that change it
        await settle(pilot, until=lambda a: "read-only: the ladder as it stands" in screen_text(a))
        assert "p probability" not in screen_text(app)
        assert len(notices) == 5 and tried == []  # no key and no screen even tried to write
    assert kpis(worked_engine) == before


async def test_a_browser_session_that_may_write_opens_no_file_of_the_servers(worked_engine, tmp_path):
    """`evpipe serve --allow-writes`: `i` opened the import screen, whose preview showed the lines
    of any file the server's account could read (a private key's among them) to the browser's user."""
    from apphelpers import press, screen_text, settle

    from evpipe.tui.app import EvpipeApp

    url = worked_engine.url.render_as_string(hide_password=False)
    app = EvpipeApp(url, who="sam", screen="pipeline", in_browser=True)
    notices: list[str] = []
    real_notify = app.notify
    app.notify = lambda message, *a, **k: (notices.append(str(message)), real_notify(message, *a, **k))[1]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: "Quote sent" in screen_text(a))
        await press(app, pilot, "i")
        assert type(app.screen).__name__ == "PipelineScreen"  # no import screen
        assert notices and notices[-1].startswith("import: in a browser, evpipe opens no file on the server")
        app.action_import()  # the command palette's "Import prospects"
        assert type(app.screen).__name__ == "PipelineScreen" and len(notices) == 2


async def test_the_app_opens_on_the_review_with_its_tab_bar(worked_engine):
    from apphelpers import screen_text, settle

    from evpipe.tui.app import EvpipeApp

    app = EvpipeApp(worked_engine.url.render_as_string(hide_password=False), who="viewer", screen="review")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, until=lambda a: " Review  " in screen_text(a) and "1 Pip" in screen_text(a))
        text = screen_text(app)
        assert " Review  " in text and "1 Pip" in text and "6 Review" in text  # the review, in its tab bar
