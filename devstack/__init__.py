"""The local stack: the whole platform in one process on a laptop (dev tooling, never shipped)."""
