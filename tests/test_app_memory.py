"""What the app's process leaves out to stay small (issue 13, memory): OpenSSL's libcrypto on an
SQLite database, and modules only a command needs. Each check runs in a fresh interpreter, since
what is imported is the point."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_app_on_sqlite_loads_no_openssl_and_still_hashes_and_runs_its_loop() -> None:
    out = _run(
        """
        import sys
        from evpipe.tui.cli.main import leave_out_openssl
        leave_out_openssl("sqlite:////tmp/x.db")
        import asyncio, hashlib, sqlalchemy, sqlmodel
        import evpipe.tui.app
        assert sys.modules["ssl"] is None and sys.modules["_hashlib"] is None
        assert hashlib.sha1(b"abc").hexdigest() == "a9993e364706816aba3e25717850c26c9cd0d89d"  # Python's own sha1
        assert asyncio.run(asyncio.sleep(0, "looped")) == "looped"
        maps = open("/proc/self/maps").read()
        print("libcrypto" in maps, "libssl" in maps)
        """
    )
    assert out == "False False"


def test_a_command_on_sqlite_loads_no_openssl_either(tmp_path) -> None:
    """The `evpipe` command's own process leaves libcrypto out too (8 ms of each command's start):
    an import, which loads SQLAlchemy and so asyncio, runs and writes without it."""
    db, sheet = tmp_path / "p.db", tmp_path / "p.csv"
    sheet.write_text("name,value,stage\nAcme,1200,Enquiry\n", encoding="utf-8")
    made = subprocess.run(
        [sys.executable, "-m", "evpipe.tui.cli", "--db", str(db), "init", str(db)], capture_output=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    out = _run(
        f"""
        import atexit, sys
        def probe():
            maps = open("/proc/self/maps").read()
            print(sys.modules.get("ssl", "absent"), "libcrypto" in maps, flush=True)
        atexit.register(probe)
        from evpipe.tui.cli.main import run
        sys.argv = ["evpipe", "--db", {str(db)!r}, "import", {str(sheet)!r}, "--commit"]
        run()
        """
    )
    assert "imported p.csv: 1 new" in out
    assert out.splitlines()[-1] == "None False"


def test_a_server_database_keeps_what_its_driver_may_need() -> None:
    out = _run(
        """
        import sys
        from evpipe.tui.cli.main import leave_out_openssl
        leave_out_openssl("postgresql://evpipe@localhost/evpipe")
        import ssl, hashlib
        print(ssl.OPENSSL_VERSION.split()[0], hashlib.sha256(b"").hexdigest()[:8])
        """
    )
    assert out == "OpenSSL e3b0c442"


def test_the_command_line_and_the_app_import_no_server_parts_nor_a_toml_reader() -> None:
    """`evpipe` loads every command's module; the server's html, hmac and secrets wait for `serve`,
    and tomllib for a keymap file."""
    out = _run(
        """
        import sys
        from pathlib import Path
        import evpipe.tui.cli, evpipe.tui.app
        from evpipe.tui.keymap import load_keymap
        assert load_keymap(Path("/nonexistent/keymap.toml")) == {}
        print(sorted(m for m in ("html", "html.entities", "hmac", "secrets", "_hashlib", "tomllib") if m in sys.modules))
        """
    )
    assert out == "[]"


def test_a_reader_connection_keeps_a_small_page_cache(tmp_path) -> None:
    """The app's reads (SqliteReader) each open a connection with a page cache of READ_CACHE_KIB,
    read-only ones too; SQLite's default of 2 MiB stayed behind in the heap once every row was read."""
    import sqlite3

    from evpipe.models.rawdb import READ_CACHE_KIB, SqliteReader

    path = tmp_path / "x.db"
    sqlite3.connect(path).close()
    for reader in (SqliteReader(path), SqliteReader(path, read_only=True)):
        connection = reader.raw_connection()
        try:
            assert connection.execute("PRAGMA cache_size").fetchone()[0] == -READ_CACHE_KIB
        finally:
            connection.close()
