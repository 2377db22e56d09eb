"""The audit table as schemas 2 to 8 had it (each row carrying its reasons, times and hashes
as text), for the tests that migrate an older state."""

from __future__ import annotations

from sqlalchemy import Connection, text

from syncer.store.audit_legacy import legacy_audit

_INDEXES = (
    "CREATE INDEX ix_audit_person ON audit (person_key)",
    "CREATE INDEX ix_audit_run ON audit (run_id)",
    "CREATE INDEX ix_audit_at ON audit (at)",
    "CREATE INDEX ix_audit_record ON audit (record_id)",
    "CREATE INDEX ix_audit_open_intents ON audit (run_id, connector) "
    "WHERE outcome = 'intent'",
)


def back_to_schema_8_audit(db: Connection) -> None:
    """Replace a fresh state's (empty) audit table by the schema 8 one, indexes included,
    and drop audit_reasons (schema 9 creates it)."""
    db.execute(text("DROP TABLE audit"))
    db.execute(text("DROP TABLE audit_reasons"))
    legacy_audit.create(db)
    for statement in _INDEXES:
        db.execute(text(statement))
