"""The store as the table modules beneath it use it: an engine and a write transaction.

The migrations import the modules that own a table (bulk_jobs, inbound_events, web_users)
and the store imports the migrations, so those modules cannot name `Store` without closing
an import circle. They take this Protocol instead; `Store` satisfies it as it is.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy import Connection, Engine


class Database(Protocol):
    """What a table module needs from the store: reads on the engine, writes in
    `transaction()` (which, inside a run, also checks the run's fence before commit)."""

    @property
    def engine(self) -> Engine: ...

    def transaction(self) -> AbstractContextManager[Connection]: ...
