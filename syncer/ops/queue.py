"""The job queue of a scale-out deployment: procrastinate, on PostgreSQL.

Jobs (procrastinate's tables live in the queue database's `public` schema, beside the
tenants' own schemas):
- `syncer.sync` (tenant, connector): one sync run, exactly what `syncer sync --once
  --tenant T` runs for that connector.
- `syncer.archive_audit` (tenant): the tenant's audit retention (`audit.retention_days`).

Keys. Every job of a tenant carries the procrastinate `lock` `<tenant>`: jobs with one lock
run one at a time, in order, across all workers. The lock is the tenant and not the
tenant-connector pair because one run writes to every CRM of its tenant (it takes the run
lock of each, syncer/store/locks.py): two connectors of one tenant cannot run at once
anyway, and queueing them keeps the second waiting in the queue, where it costs nothing,
instead of letting it start, find the run lock taken and be skipped. The `queueing_lock`
is `<tenant>:<connector>`: at most one sync of a pair waits at a time, so a slow run never
piles up a backlog of identical jobs (the dispatcher's extra deferrals are refused, and
counted). Inside the job the run lock still guards against everything the queue cannot
see: a manual `syncer sync --once`, a `syncer run` daemon, a worker that the queue
believes dead but is only paused (its run holds the advisory lock; the job re-queued
beside it is recorded as skipped).

No automatic retry: a failed sync is recorded in the tenant's run history and alerted;
the next scheduled job is the retry (a re-run of a failed sync is always safe, and retrying
at once against a CRM that is down only spends its API budget). A job whose worker died
(SIGKILL, a lost machine) is different: the dispatcher's reaper finds it by the worker's
missing heartbeat and puts it back in the queue, and the next run reconciles the dead
run's write-ahead intents before it pulls.
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector
from sqlalchemy.engine import make_url

from syncer.domain.failures import BadInput

QUEUE_ENV = "SYNCER_QUEUE_URL"
SYNC_TASK = "syncer.sync"
ARCHIVE_TASK = "syncer.archive_audit"
DEFAULT_QUEUE = "default"
#: a key of the schema lock, any fixed number (procrastinate's schema is installed once)
_SCHEMA_LOCK = 0x5359_4E43_5155  # "SYNCQU"


def queue_url(arg: str | None) -> str:
    """--queue-url, else $SYNCER_QUEUE_URL, else $SYNCER_STATE_URL: a PostgreSQL URL."""
    url = arg or os.environ.get(QUEUE_ENV) or os.environ.get("SYNCER_STATE_URL")
    if not url:
        raise BadInput(f"the job queue needs a PostgreSQL database. Fix: pass --queue-url "
                       f"postgresql://... or set {QUEUE_ENV} (on one machine, `syncer run` "
                       "needs no queue)")
    return url


def conninfo(url: str) -> str:
    """A libpq connection string for procrastinate from a SQLAlchemy-style URL: the driver
    suffix and any search_path option dropped (the queue lives in `public`). Refuses a
    database that is not PostgreSQL, naming it without its password."""
    try:
        parsed = make_url(url)
    except Exception:
        raise BadInput("the queue URL is not a database URL. Fix: pass "
                       "postgresql://user@host:5432/database") from None
    if parsed.get_backend_name() != "postgresql":
        raise BadInput(f"the job queue runs on PostgreSQL, not {parsed.get_backend_name()}. "
                       "Fix: pass --queue-url postgresql://... (SQLite deployments use "
                       "`syncer run`, one process)")
    query = {k: v for k, v in parsed.query.items() if k != "options"}
    plain = parsed.set(drivername="postgresql", query=query)
    return plain.render_as_string(hide_password=False)


def build_app(url: str) -> App:
    """A procrastinate App on the queue database (not opened)."""
    return App(connector=PsycopgConnector(conninfo=conninfo(url)))


async def install_schema(app: App) -> bool:
    """Create procrastinate's tables once (several processes may start together: they take
    turns under an advisory lock, and all but the first find the tables there). True when
    this call created them."""
    connector = app.connector
    pool = connector.pool  # type: ignore[attr-defined]
    async with pool.connection() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs')")
        row = await cursor.fetchone()
        if row is not None and row[0] is not None:
            return False
        await connection.execute(app.schema_manager.get_schema())
    return True


def sync_keys(tenant: str, connector: str) -> tuple[str, str]:
    """The procrastinate lock and queueing lock of one sync job (the module docstring)."""
    return tenant, f"{tenant}:{connector}"
