"""evpipe's screens. The top-level ones (number keys, tab bar) are listed in `registry`."""
