"""Accounts of the web admin (`syncer web`): who may log in, with which role.

Passwords are kept only as argon2 hashes (syncer/web/auth.py makes and checks them). Failed
logins are counted on the account's row, so the throttle holds across restarts and across
several web servers sharing one PostgreSQL: after `limit` wrong passwords in a row the
account refuses every attempt, right or wrong, until `throttled_until`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Column, DateTime, Integer, String, Table, select, update

from syncer.domain.failures import BadInput
from syncer.store.database import Database
from syncer.store.tables import metadata

ROLES = ("admin", "viewer")

web_users = Table(
    "web_users", metadata,
    Column("name", String(80), primary_key=True),
    #: admin (may publish, roll back, retry and discard) or viewer (reads only)
    Column("role", String(10), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    #: wrong passwords since the last good login (or the end of the last throttle)
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("throttled_until", DateTime(timezone=True)),
)


class UserExists(BadInput, ValueError):
    """`syncer user add` of a name that is taken."""


@dataclass(frozen=True)
class WebUser:
    name: str
    role: str
    password_hash: str
    failed_logins: int
    throttled_until: datetime | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def throttled(self, now: datetime) -> bool:
        return self.throttled_until is not None and now < self.throttled_until


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def add_user(store: Database, name: str, role: str, password_hash: str, at: datetime) -> None:
    """Create an account; UserExists when the name is taken (nothing is changed then)."""
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}. Fix: use one of {', '.join(ROLES)}")
    with store.transaction() as tx:
        if tx.execute(select(web_users.c.name).where(web_users.c.name == name)).first():
            raise UserExists(f"a web user named {name!r} exists already. Fix: pick another "
                             "name")
        tx.execute(web_users.insert(), [{"name": name, "role": role,
                                         "password_hash": password_hash, "created_at": at,
                                         "failed_logins": 0, "throttled_until": None}])


def get_user(store: Database, name: str) -> WebUser | None:
    with store.engine.connect() as connection:
        row = connection.execute(select(web_users).where(web_users.c.name == name)).first()
    if row is None:
        return None
    return WebUser(row.name, row.role, row.password_hash, int(row.failed_logins),
                   _aware(row.throttled_until))


def user_count(store: Database) -> int:
    with store.engine.connect() as connection:
        return len(connection.execute(select(web_users.c.name)).all())


def record_failure(store: Database, name: str, now: datetime, limit: int,
                   throttle: timedelta) -> None:
    """Count one wrong password; the `limit`-th in a row throttles the account."""
    with store.transaction() as tx:
        # One UPDATE first: it locks the row, so concurrent wrong passwords all count.
        tx.execute(update(web_users).where(web_users.c.name == name).values(
            failed_logins=web_users.c.failed_logins + 1))
        failed = tx.execute(select(web_users.c.failed_logins).where(
            web_users.c.name == name)).scalar()
        if failed is not None and failed >= limit:
            tx.execute(update(web_users).where(web_users.c.name == name).values(
                failed_logins=0, throttled_until=now + throttle))


def clear_failures(store: Database, name: str) -> None:
    """A good login: the count starts again."""
    with store.transaction() as tx:
        tx.execute(update(web_users).where(web_users.c.name == name).values(
            failed_logins=0, throttled_until=None))
