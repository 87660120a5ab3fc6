"""Hash-chained, append-only audit log for every state change an auditor needs."""

from lotabots.audit.service import record, verify_chain

__all__ = ["record", "verify_chain"]
