"""Errors shared by the jobs pipeline and the per-type result recorders."""

from __future__ import annotations


class ResultRejected(Exception):
    """The job said it succeeded but its output is missing, partial or inconsistent."""
