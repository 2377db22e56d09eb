"""Compact column types for the audit log's field rows (schema 9).

An audit row is written for every field syncer writes (before schema 24, two with the
write-ahead intent), millions of them, so each byte of a row counts. On SQLite:

- `Sha256Hex` keeps a sha256 as its 32 raw bytes instead of 64 hex characters (the row's
  own hash and the one before it: 64 bytes saved a row); the code sees the hex text.
- `MicroTime` keeps a UTC time as integer microseconds since the epoch (8 bytes, in the
  row and in ix_audit_at) instead of SQLAlchemy's 26-character text; the code sees an
  aware datetime. Integers order like the times they stand for, so range filters and the
  index work as before.

PostgreSQL stores both natively compact enough (timestamptz is 8 bytes), so there they stay
`VARCHAR(64)` and `TIMESTAMP WITH TIME ZONE`: no conversion of existing PostgreSQL states.

Reading also accepts the older forms (hex text, ISO text) so a row that a test or an
older syncer wrote in the old form still reads the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import BigInteger, DateTime, LargeBinary, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_micros(value: datetime) -> int:
    """Whole microseconds since the epoch of an aware (or naive UTC) time."""
    aware = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    delta = aware - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class Sha256Hex(TypeDecorator[str]):
    """A sha256 given and read as 64 hex characters; 32 bytes on SQLite."""

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[bytes] | TypeEngine[str]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(LargeBinary(32))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: str | bytes | None, dialect: Dialect
                           ) -> str | bytes | None:
        if value is None or dialect.name != "sqlite" or isinstance(value, bytes):
            return value
        try:
            return bytes.fromhex(value) if len(value) == 64 else value
        except ValueError:  # not a hash at all: kept as given (verify will flag it)
            return value

    def process_result_value(self, value: str | bytes | None, dialect: Dialect
                             ) -> str | None:
        if isinstance(value, bytes):
            return value.hex()
        return value


#: bytes of the previous row's hash an audit row keeps on SQLite (schema 18)
LINK_BYTES = 8


class HashLink(TypeDecorator[str]):
    """An audit row's `prev_hash`, given as 64 hex characters. On SQLite only its first
    LINK_BYTES bytes are kept: the whole hash is the previous row's own `row_hash`, which
    the reader puts back (syncer/store/audit_storage.py), and the kept bytes are enough
    to see that the previous row was rewritten (verify then reports this row `relinked`
    as before). PostgreSQL keeps the whole hex text."""

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[bytes] | TypeEngine[str]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(LargeBinary(LINK_BYTES))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: str | bytes | None, dialect: Dialect
                           ) -> str | bytes | None:
        if value is None or dialect.name != "sqlite":
            return value
        if isinstance(value, bytes):
            return value[:LINK_BYTES]
        try:  # a hash, or the link of one read back
            return bytes.fromhex(value)[:LINK_BYTES]
        except ValueError:  # not a hash at all: its bytes (verify will flag it)
            return value.encode()[:LINK_BYTES]

    def process_result_value(self, value: str | bytes | None, dialect: Dialect
                             ) -> str | None:
        if isinstance(value, bytes):
            return value.hex()
        return value


class MicroTime(TypeDecorator[datetime]):
    """An aware UTC datetime; integer microseconds since the epoch on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[int] | TypeEngine[datetime]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect
                           ) -> datetime | int | None:
        if value is None or dialect.name != "sqlite":
            return value
        return to_micros(value)

    def process_result_value(self, value: datetime | int | str | None, dialect: Dialect
                             ) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        if isinstance(value, int):
            return from_micros(value)
        parsed = datetime.fromisoformat(str(value))  # a row still in the text form
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed
