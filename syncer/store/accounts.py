"""Accounts in the state (schema 17): company records as pulled, who belongs to which
company, and the latest decision per company.

- `accounts`: one row per CRM account record (HubSpot company, Salesforce Account) with
  the company key it was last grouped under (syncer/qualify/account_match.py), the fields
  the model reads, and the current values of the fields syncer writes there.
- `account_members`: person key -> company key and buying role, set when the person is
  decided, so a company's people are found without reading every record.
- `account_decisions`: the latest decision per company key (the history is in the audit).

The accounts cursor of each connector is a row of the ordinary `cursors` table (stream
"accounts"). Plain JSON and timezone-aware times: the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from syncer.domain.accounts import Account, AccountDecision
from syncer.store.decision_json import reason_from_json, reason_to_json
from syncer.store.runs import utc_or_none
from syncer.store.tables import metadata, records

TZ = DateTime(timezone=True)
#: the `cursors` stream of each connector's account pull
ACCOUNTS_STREAM = "accounts"

accounts = Table(
    "accounts", metadata,
    Column("connector", String(40), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("account_key", String(320)),
    Column("fields", JSON, nullable=False),
    Column("crm_values", JSON, nullable=False),
    Column("updated_at", TZ),
    Column("pulled_at", TZ, nullable=False),
    Index("ix_accounts_key", "account_key"),
)

account_members = Table(
    "account_members", metadata,
    Column("person_key", String(320), primary_key=True),
    Column("account_key", String(320), nullable=False),
    Column("role", String(40)),
    Index("ix_account_members_key", "account_key"),
)

account_decisions = Table(
    "account_decisions", metadata,
    Column("account_key", String(320), primary_key=True),
    Column("name", String(255)),
    Column("score", Integer, nullable=False),
    Column("fit", Float, nullable=False),
    Column("engagement", Float, nullable=False),
    Column("grade", String(8), nullable=False),
    Column("is_mqa", Boolean, nullable=False),
    Column("engaged_people", Integer, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("model_version", String(80), nullable=False),
    Column("decided_at", TZ, nullable=False),
)

_FIELDS = ("name", "domain", "industry", "employees", "country", "annual_revenue",
           "owner_id", "owner_email")
_CHUNK = 500


def create_schema(connection: Connection) -> None:
    """Schema 17: the three account tables."""
    for table in (accounts, account_members, account_decisions):
        table.create(connection, checkfirst=True)


def _upsert(connection: Connection, table: Table, rows: Sequence[Mapping[str, object]],
            keys: Sequence[str]) -> None:
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table)
    updates = {c.name: insert.excluded[c.name] for c in table.columns
               if c.name not in keys and c.name in rows[0]}
    statement = insert.on_conflict_do_update(index_elements=list(keys), set_=updates)
    for start in range(0, len(rows), 2000):
        connection.execute(statement, list(rows[start:start + 2000]))


def _stored(account: Account) -> dict[str, object]:
    fields: dict[str, object] = {f: getattr(account, f) for f in _FIELDS}
    if account.linked_ids:
        fields["linked_ids"] = dict(account.linked_ids)
    if account.properties:
        fields["properties"] = dict(account.properties)
    return fields


def changed(connection: Connection, page: Sequence[Account]) -> list[Account]:
    """The accounts of a page whose fields or CRM values differ from the stored copy (or
    that are new): re-reads of an unchanged company touch nothing."""
    stored = _stored_copies(connection, page)
    return [a for a in page
            if stored.get((a.source, a.record_id)) != (_stored(a), dict(a.crm_values))]


def moved(connection: Connection, page: Sequence[Account]) -> list[Account]:
    """The accounts of a page that are new or whose own fields (domain, links, name, ...)
    changed, not only the CRM values of the fields syncer writes: their people may be
    others now."""
    stored = _stored_copies(connection, page)
    return [a for a in page if (stored.get((a.source, a.record_id)) or (None,))[0]
            != _stored(a)]


def _stored_copies(connection: Connection, page: Sequence[Account]
                   ) -> dict[tuple[str, str], tuple[object, object]]:
    stored: dict[tuple[str, str], tuple[object, object]] = {}
    for source in sorted({a.source for a in page}):
        ids = [a.record_id for a in page if a.source == source]
        for start in range(0, len(ids), _CHUNK):
            for row in connection.execute(select(
                    accounts.c.record_id, accounts.c.fields, accounts.c.crm_values).where(
                    accounts.c.connector == source,
                    accounts.c.record_id.in_(ids[start:start + _CHUNK]))):
                stored[(source, row.record_id)] = (row.fields, row.crm_values)
    return stored


def save(connection: Connection, page: Sequence[Account], pulled_at: datetime) -> None:
    """Store pulled account records (their company key is set by `set_keys`)."""
    _upsert(connection, accounts, [{
        "connector": a.source, "record_id": a.record_id, "fields": _stored(a),
        "crm_values": dict(a.crm_values), "updated_at": a.updated_at,
        "pulled_at": pulled_at} for a in page], ("connector", "record_id"))


def note_written(connection: Connection, connector: str,
                 written: Mapping[str, Mapping[str, str | None]]) -> None:
    """Merge the values just written to these account records (record id -> field ->
    value) into their stored CRM values, as Store.record_write does for people: the next
    run diffs against what the CRM now holds, and a re-read of our own write (the echo)
    is found unchanged."""
    ids = sorted(written)
    changed: list[dict[str, object]] = []
    for start in range(0, len(ids), _CHUNK):
        for record_id, values in connection.execute(select(
                accounts.c.record_id, accounts.c.crm_values).where(
                accounts.c.connector == connector,
                accounts.c.record_id.in_(ids[start:start + _CHUNK]))):
            changed.append({"c": connector, "r": record_id,
                            "v": {**values, **written[record_id]}})
    if changed:
        connection.execute(update(accounts).where(
            accounts.c.connector == bindparam("c"), accounts.c.record_id == bindparam("r")
        ).values(crm_values=bindparam("v")), changed)


def person_keys_at(connection: Connection, domains: Sequence[str]) -> set[str]:
    """The person keys of records whose email is at one of these domains."""
    keys: set[str] = set()
    wanted = sorted(set(domains))
    for start in range(0, len(wanted), 50):
        condition = or_(*(records.c.email.endswith(f"@{d}")
                          for d in wanted[start:start + 50]))
        keys.update(connection.execute(select(records.c.person_key).where(condition))
                    .scalars())
    return keys


def set_keys(connection: Connection, keys: Mapping[tuple[str, str], str]) -> None:
    """Remember the company key each record is grouped under now."""
    rows = [{"connector": c, "record_id": r, "account_key": k}
            for (c, r), k in sorted(keys.items())]
    for row in rows:
        connection.execute(accounts.update().where(
            accounts.c.connector == row["connector"],
            accounts.c.record_id == row["record_id"]).values(account_key=row["account_key"]))


def load(connection: Connection) -> list[Account]:
    """Every stored account record (grouping needs them all: a link or a shared domain
    may join any two)."""
    found: list[Account] = []
    for row in connection.execute(select(accounts)):
        fields = dict(row.fields)
        found.append(Account(
            source=row.connector, record_id=row.record_id,
            linked_ids=fields.pop("linked_ids", {}) or {},
            properties=fields.pop("properties", {}) or {},
            crm_values=dict(row.crm_values), updated_at=utc_or_none(row.updated_at),
            **fields))
    return found


def save_members(connection: Connection, members: Mapping[str, tuple[str | None,
                                                                      str | None]]) -> None:
    """Person key -> (company key or None: belongs to none now, buying role)."""
    gone = sorted(k for k, (account, _) in members.items() if account is None)
    for start in range(0, len(gone), _CHUNK):
        connection.execute(account_members.delete().where(
            account_members.c.person_key.in_(gone[start:start + _CHUNK])))
    _upsert(connection, account_members, [
        {"person_key": k, "account_key": account, "role": role}
        for k, (account, role) in sorted(members.items()) if account is not None],
        ("person_key",))


def member_keys(connection: Connection, person_keys: Iterable[str]) -> dict[str, str]:
    """Person key -> the company key stored for them (people of none left out)."""
    keys = sorted(set(person_keys))
    found: dict[str, str] = {}
    for start in range(0, len(keys), _CHUNK):
        for row in connection.execute(select(
                account_members.c.person_key, account_members.c.account_key).where(
                account_members.c.person_key.in_(keys[start:start + _CHUNK]))):
            found[row.person_key] = row.account_key
    return found


def members_of(connection: Connection, account_keys: Sequence[str]
               ) -> dict[str, list[tuple[str, str | None]]]:
    """Company key -> its people as (person key, buying role), by person key."""
    found: dict[str, list[tuple[str, str | None]]] = {k: [] for k in account_keys}
    keys = sorted(set(account_keys))
    for start in range(0, len(keys), _CHUNK):
        for row in connection.execute(select(account_members).where(
                account_members.c.account_key.in_(keys[start:start + _CHUNK]))
                .order_by(account_members.c.person_key)):
            found[row.account_key].append((row.person_key, row.role))
    return found


def save_decisions(connection: Connection, decided: Sequence[AccountDecision],
                   at: datetime) -> None:
    _upsert(connection, account_decisions, [{
        "account_key": d.key, "name": (d.name or "")[:255] or None, "score": d.score,
        "fit": d.fit, "engagement": d.engagement, "grade": d.grade, "is_mqa": d.is_mqa,
        "engaged_people": d.engaged_people,
        "reasons": [reason_to_json(r) for r in d.reasons],
        "model_version": d.model_version, "decided_at": at} for d in decided],
        ("account_key",))


def decisions(connection: Connection, keys: Sequence[str] | None = None
              ) -> dict[str, AccountDecision]:
    """The stored decision of each company key that has one (all with `keys` None)."""
    if keys is None:
        rows = list(connection.execute(select(account_decisions)))
    else:
        wanted = sorted(set(keys))
        rows = [row for start in range(0, len(wanted), _CHUNK)
                for row in connection.execute(select(account_decisions).where(
                    account_decisions.c.account_key.in_(wanted[start:start + _CHUNK])))]
    return {row.account_key: AccountDecision(
        key=row.account_key, score=row.score, fit=row.fit, engagement=row.engagement,
        grade=row.grade, is_mqa=bool(row.is_mqa), engaged_people=row.engaged_people,
        reasons=tuple(reason_from_json(r) for r in row.reasons),
        model_version=row.model_version, name=row.name) for row in rows}
