"""`python -m evpipe.tui.cli`: the `evpipe` command."""

from . import run

run()
