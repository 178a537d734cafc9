"""Reusable widgets of evpipe's screens."""
