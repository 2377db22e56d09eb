"""Where a run's cursors stood when it started, to put them back when it stops part way.

A run stopped by a rate-limit deadline may have pulled and stored pages (moving the
cursors) and then failed to push what it decided for them. Putting every cursor of its
connectors back where the run found it makes the next run pull those records again, so
they are decided and written then: no cursor moves past data that was never written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from syncer.store import tables as t

if TYPE_CHECKING:
    from syncer.store.repository import Store

#: (connector, stream) -> the cursor's value
CursorMarks = dict[tuple[str, str], datetime]


def cursor_marks(store: Store, connectors: Sequence[str]) -> CursorMarks:
    """Every cursor of these connectors, as it is now."""
    with store.engine.connect() as connection:
        return {(row.connector, row.stream): row.value for row in connection.execute(
            select(t.cursors).where(t.cursors.c.connector.in_(list(connectors))))}


def rewind_cursors(store: Store, connectors: Sequence[str], marks: CursorMarks) -> None:
    """Put the cursors of these connectors back to `marks` (a cursor that did not exist
    then is removed: the next pull of that stream starts from scratch, as this one did).
    A write of the run, so fenced by its lock like the others."""
    rows = [{"connector": connector, "stream": stream, "value": value}
            for (connector, stream), value in marks.items() if connector in connectors]
    with store.transaction() as tx:
        tx.execute(delete(t.cursors).where(t.cursors.c.connector.in_(list(connectors))))
        if rows:
            tx.execute(t.cursors.insert(), rows)
