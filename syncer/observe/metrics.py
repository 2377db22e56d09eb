"""Prometheus metrics of the daemon, fed from the run history.

Every number comes from a finished run as stored (`RunRecord`), so /metrics and
`syncer runs` cannot disagree: `observe_run` adds one run's stats to the counters. Each
`SyncMetrics` has its own CollectorRegistry (never the process-global one), so tests and
several daemons in one process do not collide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import Table, func, select
from sqlalchemy.exc import SQLAlchemyError

from syncer.domain.errors import ALL_CAUSES, flatten
from syncer.store import tables
from syncer.store.repository import Store
from syncer.store.runs import RunRecord

#: run stats "sla" key (syncer/run/sla.py) -> the syncer_sla counter's event label
SLA_EVENTS = {"breaches": "breach", "reassigned": "reassigned", "queued": "queued",
              "recycled": "recycled"}

log = structlog.get_logger(__name__)

#: Run durations in seconds: a sandbox sync takes seconds, a 100k-person sync tens of minutes.
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf"))
#: Statuses counted as the connector having synced (record-level failures are counted apart).
COMPLETED = frozenset({"succeeded", "partial"})
#: Statuses that mean the run failed (lost_lock: it stopped because its lock was lost).
FAILED = frozenset({"failed", "lost_lock"})
#: A run skipped because another held the lock: counted, but says nothing of the connector.
SKIPPED = "skipped"
CONTENT_TYPE = CONTENT_TYPE_LATEST


class SyncMetrics:
    """The metric families /metrics serves; names start with `syncer_`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("syncer_runs", "Finished sync runs by connector and status",
                            ["connector", "status"], registry=r)
        self.records_pulled = Counter("syncer_records_pulled",
                                      "Person records pulled from the CRM", ["connector"],
                                      registry=r)
        self.activities_pulled = Counter("syncer_activities_pulled",
                                         "Activities pulled from the CRM", ["connector"],
                                         registry=r)
        self.records_written = Counter("syncer_records_written",
                                       "CRM records updated", ["connector"], registry=r)
        self.fields_written = Counter("syncer_fields_written", "CRM fields written",
                                      ["connector"], registry=r)
        self.write_failures = Counter("syncer_write_failures",
                                      "Records whose write failed for good", ["connector"],
                                      registry=r)
        self.write_errors = Counter(
            "syncer_write_errors", "Failed record writes by cause (rate limit, validation, "
            "bad picklist value, ...) and the CRM field the error names (field=\"none\": "
            "it names none; \"other\": a field syncer does not write)",
            ["connector", "cause", "field"], registry=r)
        self.people_created = Counter(
            "syncer_people_created", "People created in a CRM behind the creation gate "
            "(outcome created, linked to an existing record, failed)",
            ["connector", "outcome"], registry=r)
        self.identity_events = Counter(
            "syncer_identity_events", "Records followed to a successor (converted, merged) "
            "or flagged as a duplicate", ["connector", "event"], registry=r)
        self.webhook_rejected = Counter(
            "syncer_webhook_rejected", "Inbound webhook requests refused with 401 (reason: "
            "unsigned, bad_signature, stale, replay, unknown_source)", ["source", "reason"],
            registry=r)
        self.webhook_events = Counter(
            "syncer_webhook_events", "Inbound events stored (outcome pending: to re-qualify; "
            "echo: syncer's own write; ignored: nothing to re-read)", ["source", "outcome"],
            registry=r)
        self.sla = Counter(
            "syncer_sla", "Speed-to-lead SLA: routed MQLs not worked in time (event breach), "
            "and what followed (reassigned, queued, recycled)", ["event"], registry=r)
        self.decisions_changed = Counter("syncer_decisions_changed",
                                         "Decisions (stage, score, grade, owner) that changed",
                                         registry=r)
        self.api_calls = Counter("syncer_api_calls", "API responses by HTTP status "
                                 "(status=\"error\": no response)", ["connector", "status"],
                                 registry=r)
        self.api_retries = Counter("syncer_api_retries", "API calls retried",
                                   ["connector"], registry=r)
        self.api_rate_limited = Counter("syncer_api_rate_limited",
                                        "Rate-limit answers waited for (429s, Salesforce "
                                        "REQUEST_LIMIT_EXCEEDED, HubSpot RATE_LIMITS)",
                                        ["connector"], registry=r)
        self.rate_limit_headroom = Gauge("syncer_rate_limit_headroom",
                                         "Lowest remaining API allowance seen in the last run",
                                         ["connector"], registry=r)
        self.dead_letters = Gauge("syncer_dead_letters", "Records parked as dead letters",
                                  ["connector"], registry=r)
        self.run_duration = Histogram("syncer_run_duration_seconds",
                                      "Wall time of finished sync runs", ["connectors"],
                                      buckets=DURATION_BUCKETS, registry=r)
        self.last_success = Gauge("syncer_last_success_timestamp_seconds",
                                  "When the connector's last completed run finished "
                                  "(Unix time)", ["connector"], registry=r)
        self.last_run_failed = Gauge("syncer_last_run_failed",
                                     "1 when the connector's last run failed", ["connector"],
                                     registry=r)
        #: per connector, the status of the last run this process saw end (not skipped),
        #: including runs that could not reach the state database (/healthz reads it)
        self.last_status: dict[str, str] = {}

    def declare(self, connectors: Iterable[str]) -> None:
        """Show every connector's series at 0 before its first run (dashboards, alerts)."""
        for event in SLA_EVENTS.values():
            self.sla.labels(event=event)
        for name in connectors:
            for counter in (self.records_pulled, self.activities_pulled, self.records_written,
                            self.fields_written, self.write_failures, self.api_retries,
                            self.api_rate_limited):
                counter.labels(connector=name)
            self.dead_letters.labels(connector=name)
            self.last_run_failed.labels(connector=name)
            for status in ("succeeded", "failed"):
                self.runs.labels(connector=name, status=status)

    def observe_run(self, run: RunRecord) -> None:
        """Add one finished run to the metrics (dry runs count as runs, not as traffic
        they did not cause: they pull and call the API like any run)."""
        for name in run.connectors:
            self.runs.labels(connector=name, status=run.status).inc()
        if run.status == SKIPPED:
            return
        for name in run.connectors:
            self.last_status[name] = run.status
            self.last_run_failed.labels(connector=name).set(1 if run.status in FAILED else 0)
            if run.status in COMPLETED and run.finished_at is not None:
                self.last_success.labels(connector=name).set(run.finished_at.timestamp())
        self._add(self.records_pulled, run.per_connector("records_pulled"))
        self._add(self.activities_pulled, run.per_connector("activities_pulled"))
        self._add(self.records_written, run.per_connector("records_written"))
        self._add(self.fields_written, run.per_connector("fields_written"))
        self._add(self.write_failures, run.per_connector("failures"))
        for (name, cause, crm_field), count in flatten(run.stats.get("failures_by_field")
                                                       ).items():
            self.write_errors.labels(connector=name,
                                     cause=cause if cause in ALL_CAUSES else "other",
                                     field=crm_field or "none").inc(count)
        for outcome, stat in (("created", "created"), ("linked", "linked"),
                              ("failed", "create_failed")):
            for name, count in run.counts(stat).items():
                self.people_created.labels(connector=name, outcome=outcome).inc(count)
        for key, count in run.counts("identity").items():
            name, _, event = str(key).rpartition(".")
            self.identity_events.labels(connector=name, event=event).inc(count)
        self._add(self.api_retries, run.per_connector("api_retries"))
        self._add(self.api_rate_limited, run.per_connector("api_rate_limited"))
        self.decisions_changed.inc(run.total("decisions_changed"))
        sla = run.counts("sla")
        for stat, event in SLA_EVENTS.items():
            if sla.get(stat):
                self.sla.labels(event=event).inc(sla[stat])
        for name, statuses in run.nested_counts("api_calls_by_status").items():
            for status, count in statuses.items():
                self.api_calls.labels(connector=name, status=status).inc(count)
        for name, headroom in run.objects("rate_limit_headroom").items():
            remaining = headroom.get("remaining_min")
            if isinstance(remaining, int | float) and not isinstance(remaining, bool):
                self.rate_limit_headroom.labels(connector=name).set(remaining)
        if run.duration_seconds is not None:
            self.run_duration.labels(connectors=",".join(run.connectors)).observe(
                max(0.0, run.duration_seconds))

    def load_history(self, runs: Mapping[str, RunRecord]) -> None:
        """Seed the last-run gauges from the store at start-up (counters start at 0, as
        Prometheus expects of a restarted process)."""
        for name, run in runs.items():
            self.last_run_failed.labels(connector=name).set(1 if run.status in FAILED else 0)
            if run.status in COMPLETED and run.finished_at is not None:
                self.last_success.labels(connector=name).set(run.finished_at.timestamp())

    def failing(self) -> set[str]:
        """Connectors whose last run seen by this process failed."""
        return {name for name, status in self.last_status.items() if status in FAILED}

    def set_dead_letters(self, counts: Mapping[str, int]) -> None:
        for name, count in counts.items():
            self.dead_letters.labels(connector=name).set(count)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    @staticmethod
    def _add(counter: Counter, values: Mapping[str, object]) -> None:
        for name, value in values.items():
            if isinstance(value, (int, float)) and value > 0:
                counter.labels(connector=name).inc(value)


def dead_letter_counts(store: Store) -> dict[str, int]:
    """Open dead letters per connector; empty while the store keeps none (no table yet)."""
    table = getattr(tables, "dead_letters", None)
    if not isinstance(table, Table) or "resolved_at" not in table.c:
        return {}
    query = select(table.c.connector, func.count()).where(
        table.c.resolved_at.is_(None)).group_by(table.c.connector)
    try:
        with store.engine.connect() as connection:
            return {str(name): int(count) for name, count in connection.execute(query)}
    except SQLAlchemyError as error:
        log.warning("metrics.dead_letters_unavailable", error=type(error).__name__)
        return {}
