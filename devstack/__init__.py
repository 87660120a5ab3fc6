"""The local stack: the whole platform on a laptop, one command (dev tooling, never shipped)."""
