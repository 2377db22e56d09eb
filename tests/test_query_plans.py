"""No statement a sync runs scans a table that grows with the people.

A statement that scans `activities` (say) costs nothing at 160 people and, run once per
chunk of 500, grows with the square of the people: at 100,000 people such a scan was 13% of
a full sync's CPU, at a million it would be most of it. So every distinct statement a full,
an incremental and a quiet sync run on SQLite is captured, and SQLite's own plan for it
(EXPLAIN QUERY PLAN, with the parameters it ran with) must reach those tables through an
index. The few statements that read a whole table on purpose are listed with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import Engine, create_engine, event, inspect

from syncer.domain.config import LoadedConfig
from syncer.store.migrations import LATEST
from syncer.store.repository import Store
from tests.conftest import NOW, as_left_at_schema, schema_of, sync_once

#: tables whose rows grow with the people and their history
GROWING = ("records", "activities", "decisions", "written", "audit", "audit_subjects",
           "audit_texts", "audit_reasons", "audit_stamps", "stage_history", "assignments",
           "dead_letters", "inbound_events", "accounts", "account_members",
           "account_decisions", "shared_values", "reconciled_runs")
#: columns that hold a handful of values: an index search on them alone reads a share of
#: the whole table
FEW_VALUES = {"connector", "stream", "type", "origin", "field", "object_type", "outcome",
              "status", "name", "field_id", "outcome_id", "connector_id"}
#: statements that read all of a growing table by design, by a pattern of their SQL
ON_PURPOSE = (
    # a run deciding everyone pages person keys in index order (store/person_pages.py):
    # the first page walks the person_key index from its start, up to its LIMIT
    re.compile(r"^SELECT DISTINCT records\.person_key \nFROM records \nWHERE "
               r"\(records\.connector \|\| \?\) IN \([?, ]*\) ORDER BY "
               r"records\.person_key\n LIMIT"),
    # once per run that decides everyone: how many people, for the progress display
    re.compile(r"^SELECT count\(DISTINCT records\.person_key\)"),
    # once per run that routes: the owners syncer wrote, for the account owner index
    re.compile(r"^SELECT written\.record_id, written\.value \nFROM written"),
    # once per run that routes: the account owner index votes over every record
    # (store/routing.py account_owners), so it cannot depend on the records pulled
    re.compile(r"^SELECT records\.connector, records\.record_id, records\.person_key, "
               r"records\.fields, records\.crm_values \nFROM records$"),
    # once per run that routes: today's assignments per rep, read from the index
    # (owner, day) alone, never the table
    re.compile(r"^SELECT assignments\.owner_email, count\(\*\)"),
)


@contextmanager
def captured_statements() -> Iterator[dict[str, Sequence[object]]]:
    """Every distinct SQL text run on any engine while the block runs, with the first
    parameters it ran with."""
    seen: dict[str, Sequence[object]] = {}

    def note(_conn: object, _cursor: object, statement: str, parameters: object,
             _context: object, executemany: bool) -> None:
        params = parameters[0] if executemany and parameters else parameters  # type: ignore[index]
        seen.setdefault(statement, params if isinstance(params, (tuple, list)) else ())

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def _reads_all_of_a_growing_table(detail: str) -> bool:
    """A plan line that walks a growing table: a scan (other than of a covering index),
    or a search whose index constraint names only columns of a few values (a search of
    `connector=?` alone is a scan of half the records)."""
    scan = re.match(r"SCAN (\w+)", detail)
    if scan:
        return scan.group(1) in GROWING and "COVERING INDEX" not in detail
    search = re.match(r"SEARCH (\w+) USING (?:COVERING )?INDEX \S+ \(([^)]*)\)", detail)
    if search is None or search.group(1) not in GROWING:
        return False
    columns = set(re.findall(r"(\w+)[=<>]", search.group(2)))
    return columns <= FEW_VALUES


def scans(engine: Engine, statements: dict[str, Sequence[object]]) -> list[str]:
    """Each statement whose plan scans a growing table, with that plan line."""
    found = []
    with engine.connect() as connection:
        for sql, params in statements.items():
            if not re.match(r"\s*(SELECT|UPDATE|DELETE|INSERT|WITH)", sql, re.I) \
                    or any(p.search(sql) for p in ON_PURPOSE):
                continue
            if "?" in sql and not params:
                continue  # a statement run without its parameters here (none so far)
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}",
                                              tuple(params)).fetchall()
            for row in plan:
                detail = str(row[-1])
                if _reads_all_of_a_growing_table(detail):
                    found.append(f"{detail}: {sql[:300]}")
    return found


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)  # SQLite's plans
def test_no_sync_statement_scans_a_table_that_grows_with_the_people(
        sandbox_config: LoadedConfig) -> None:
    with captured_statements() as statements:
        first = sync_once(sandbox_config)
        sync_once(sandbox_config, NOW + timedelta(minutes=10))
        sync_once(sandbox_config, NOW + timedelta(minutes=20))
    assert first.people > 100 and sum(first.fields_written.values()) > 0
    assert len(statements) > 30  # the capture saw the run's statements
    engine = create_engine(sandbox_config.state_url)
    try:
        assert scans(engine, statements) == []
    finally:
        engine.dispose()


def test_a_state_from_before_schema_22_gets_the_successor_index(sqlite_url: str) -> None:
    as_left_at_schema(sqlite_url, 21, "DROP INDEX ix_records_successor")
    store = Store.open(sqlite_url)
    try:
        with store.engine.connect() as connection:
            assert "ix_records_successor" in {
                index["name"] for index in inspect(connection).get_indexes("records")}
    finally:
        store.close()
    assert schema_of(sqlite_url) == LATEST
