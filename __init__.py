"""evpipe: a sales pipeline as Expected Value.

The checkout's folders install under this one name: `evpipe.models` (domain and storage),
`evpipe.tui` (the Textual app and the command line) and `evpipe.seeds` (data).
"""

__version__ = "0.1.0"
