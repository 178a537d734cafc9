"""Data, not code: the default stage ladder and the demo pipeline."""
