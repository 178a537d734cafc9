"""models/ is the domain and storage layer: it must never pull in the UI."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_models_never_imports_textual():
    modules = sorted(p.stem for p in (ROOT / "models").glob("*.py") if p.stem != "__init__")
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module('evpipe.models.' + m)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'textual_plotext', 'rich')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "", f"models pulled in UI modules: {out.stdout.strip()}"


def test_no_module_in_models_mentions_textual():
    for path in (ROOT / "models").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            assert not (stripped.startswith(("import textual", "from textual"))), f"{path}: {line}"
