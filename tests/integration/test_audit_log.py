"""The audit log is a hash chain: appends link, tampering is detected."""

from sqlalchemy import update

from lotabots import audit
from lotabots.audit.models import AuditEntry
from lotabots.db import session_scope


def test_entries_chain_and_verify(db: str) -> None:
    with session_scope() as session:
        audit.record(session, actor_id="a", action="user.disabled", target_type="user", target_id="u1")
        audit.record(
            session,
            actor_id="a",
            action="user.role_changed",
            target_type="user",
            target_id="u1",
            details={"role": "operator"},
        )
    with session_scope() as session:
        assert audit.verify_chain(session) == (True, None)


def test_tampering_breaks_the_chain(db: str) -> None:
    with session_scope() as session:
        first = audit.record(
            session, actor_id="a", action="document.read", target_type="document", target_id="d1"
        )
        audit.record(session, actor_id="a", action="document.deleted", target_type="document", target_id="d1")
        first_seq = first.seq
    with session_scope() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == first_seq).values(actor_id="someone-else"))
    with session_scope() as session:
        assert audit.verify_chain(session) == (False, first_seq)


def test_rolled_back_transaction_leaves_no_entry(db: str) -> None:
    try:
        with session_scope() as session:
            audit.record(session, actor_id="a", action="x", target_type="t")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with session_scope() as session:
        assert session.query(AuditEntry).count() == 0
