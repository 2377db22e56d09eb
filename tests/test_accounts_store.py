"""The account tables (schema 17) on SQLite and PostgreSQL: records as pulled, re-reads
that change nothing, company keys, members and roles, decisions, the migration from 16,
and the recovery lookup of an account write's CRM values."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from syncer.domain.accounts import Account, AccountDecision
from syncer.domain.types import Person, Reason
from syncer.store import accounts as account_store
from syncer.store import intents as intent_store
from syncer.store.migrations import LATEST
from syncer.store.repository import Store

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ACME = Account("hubspot", "7", name="Acme", domain="acme.com", industry="Software",
               employees=120, annual_revenue=2.5e6, owner_email="rep@x.test",
               updated_at=NOW, linked_ids={"salesforce": "001A"},
               crm_values={"syncer_account_mqa": "false"}, properties={"tier": "gold"})


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    opened = Store.open(state_url)
    yield opened
    opened.close()


def test_accounts_round_trip_and_unchanged_rereads_touch_nothing(store: Store) -> None:
    with store.transaction() as tx:
        assert account_store.changed(tx, [ACME]) == [ACME]
        account_store.save(tx, [ACME], NOW)
        account_store.set_keys(tx, {("hubspot", "7"): "domain:acme.com"})
    with store.engine.connect() as connection:
        assert account_store.load(connection) == [ACME]
        assert account_store.changed(connection, [ACME]) == []
        edited = Account(**{**{f: getattr(ACME, f) for f in ACME.__slots__},
                            "crm_values": {"syncer_account_mqa": "true"}})
        assert account_store.changed(connection, [edited]) == [edited]


def test_members_and_decisions(store: Store) -> None:
    decision = AccountDecision("domain:acme.com", 55, 25.0, 30.0, "A", True, 3,
                               (Reason("accounts.mqa", 0.0, "MQA: 3 engaged people >= 3"),),
                               "m@1", "Acme")
    with store.transaction() as tx:
        account_store.save_members(tx, {"a@acme.com": ("domain:acme.com", "user"),
                                        "b@acme.com": ("domain:acme.com", None),
                                        "c@other.com": ("domain:other.com", "champion")})
        account_store.save_decisions(tx, [decision], NOW)
    with store.transaction() as tx:  # c leaves every company
        account_store.save_members(tx, {"c@other.com": (None, None)})
    with store.engine.connect() as connection:
        assert account_store.members_of(connection, ["domain:acme.com", "domain:other.com"]) \
            == {"domain:acme.com": [("a@acme.com", "user"), ("b@acme.com", None)],
                "domain:other.com": []}
        assert account_store.member_keys(connection, ["a@acme.com", "c@other.com"]) == \
            {"a@acme.com": "domain:acme.com"}
        assert account_store.decisions(connection, ["domain:acme.com"]) == \
            {"domain:acme.com": decision}


def test_recovery_reads_an_account_writes_values_beside_a_contact_of_the_same_id(
        store: Store) -> None:
    contact = Person("hubspot", "7", "contact", "ana@acme.com",
                     crm_values={"syncer_score": "12"})
    with store.transaction() as tx:
        store.save_records(tx, [contact], ["ana@acme.com"], NOW)
        account_store.save(tx, [ACME], NOW)
    with store.engine.connect() as connection:
        found = dict(intent_store.crm_values(connection, "hubspot", ["7"]))
    assert found == {"7": {"syncer_score": "12", "syncer_account_mqa": "false"}}


def test_schema_16_state_migrates_to_17(state_url: str) -> None:
    store = Store.open(state_url)
    with store.engine.begin() as connection:
        for table in ("account_decisions", "account_members", "accounts"):
            connection.execute(text(f"DROP TABLE {table}"))
        connection.execute(text("UPDATE schema_version SET version = 16"))
    store.close()
    migrated = Store.open(state_url)
    with migrated.engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
        version = connection.execute(text("SELECT max(version) FROM schema_version")).scalar()
    migrated.close()
    assert {"accounts", "account_members", "account_decisions"} <= names
    assert version == LATEST  # 17 and every later step ran
