"""Every person key of some connectors, a page at a time in key order, from the state.

A run that decides everyone used to list every key first: at a million people that list
alone is about 90 MB held for the whole run. Paging by key (`person_key > last`, on the
records' person_key index) holds one chunk at a time, whatever the size of the CRM.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from syncer.store import tables as t

if TYPE_CHECKING:
    from syncer.store.repository import Store


def count(store: Store, connectors: Sequence[str], after: str | None = None) -> int:
    """How many people have a record in one of `connectors` (after the key `after`, when
    given), for progress displays."""
    query = select(func.count(t.records.c.person_key.distinct())).where(
        t.records.c.connector.in_(list(connectors)))
    if after is not None:
        query = query.where(t.records.c.person_key > after)
    with store.engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def pages(store: Store, connectors: Sequence[str], size: int, after: str | None = None
          ) -> Iterator[list[str]]:
    """The person keys with a record in one of `connectors` (after the key `after`, when
    given), sorted, `size` at a time. Each page is its own query, so no read stays open
    while the caller writes."""
    last = after
    while True:
        # `connector || ''`: the connector test is no index term, so the planner walks
        # the person_key index from `last` and stops at `size` keys; on the bare column
        # it searched the primary key by connector (every record) and sorted, per page
        query = select(t.records.c.person_key).distinct().where(
            t.records.c.connector.concat("").in_(list(connectors)))
        if last is not None:
            query = query.where(t.records.c.person_key > last)
        with store.engine.connect() as connection:
            page = list(connection.execute(
                query.order_by(t.records.c.person_key).limit(size)).scalars())
        if not page:
            return
        yield page
        last = page[-1]
