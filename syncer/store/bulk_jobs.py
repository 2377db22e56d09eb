"""The CRM bulk query jobs a run has open, remembered so that a killed run's job is closed.

A connector that reads through an asynchronous job (Salesforce Bulk API 2.0) remembers the
job id here before it first polls and forgets it once the job is aborted or deleted; what
is still here when the next run starts belongs to a run that died, and that run's connector
aborts it. One row per open job: the table stays as small as the jobs in flight.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, String, Table, delete, insert, select

from syncer.store.database import Database
from syncer.store.tables import metadata

bulk_query_jobs = Table(
    "bulk_query_jobs", metadata,
    Column("connector", String(40), primary_key=True),
    Column("job_id", String(40), primary_key=True),
    Column("opened_at", DateTime(timezone=True), nullable=False),
)


class StoredQueryJobs:
    """One connector's open query jobs in the state (the connector's QueryJobLedger)."""

    def __init__(self, store: Database, connector: str) -> None:
        self.store = store
        self.connector = connector

    def open_jobs(self) -> list[str]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(bulk_query_jobs.c.job_id)
                .where(bulk_query_jobs.c.connector == self.connector)
                .order_by(bulk_query_jobs.c.opened_at, bulk_query_jobs.c.job_id))
            return [str(row.job_id) for row in rows]

    def remember(self, job_id: str) -> None:
        with self.store.transaction() as tx:
            tx.execute(delete(bulk_query_jobs).where(
                bulk_query_jobs.c.connector == self.connector,
                bulk_query_jobs.c.job_id == job_id))
            tx.execute(insert(bulk_query_jobs).values(
                connector=self.connector, job_id=job_id,
                opened_at=datetime.now(timezone.utc)))

    def forget(self, job_id: str) -> None:
        with self.store.transaction() as tx:
            tx.execute(delete(bulk_query_jobs).where(
                bulk_query_jobs.c.connector == self.connector,
                bulk_query_jobs.c.job_id == job_id))
