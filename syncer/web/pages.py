"""Read-only pages: overview, runs (list and detail), funnel.

Each reads through the store API and the library code the commands use: `syncer runs`
(RunRecord), /healthz's check (syncer/ops/health.py), the daily budget (syncer/run/budget.py), the
funnel and report figures (syncer/ops/funnel.py, syncer/ops/report.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from markupsafe import Markup

from syncer.domain.types import Decision, Stage
from syncer.ops.funnel import FUNNEL, funnel
from syncer.ops.health import check_health
from syncer.ops.report import percentile
from syncer.run.budget import DailyBudget
from syncer.store import dead_letters, routing, stage_history
from syncer.store.audit import AuditFilter
from syncer.store.audit_pages import audit_page
from syncer.store.runs import SKIPPED, RunRecord
from syncer.web import charts
from syncer.web.deps import AnyUser, WebState, render, web_state

router = APIRouter()
WEEK = timedelta(days=7)


@router.get("/")
def overview(request: Request, _user: AnyUser) -> Response:
    state = web_state(request)
    store, config, now = state.store, state.loaded.config, state.clock()
    names = [c.name for c in config.connectors]
    last = store.last_runs(names)
    health = check_health(store, names)
    connectors = []
    for connector in config.connectors:
        run = last.get(connector.name)
        budget = DailyBudget(store, connector.name, connector.daily_api_budget, now)
        connectors.append({
            "name": connector.name, "kind": connector.kind, "run": run,
            "next_run": run.started_at + timedelta(minutes=connector.schedule.every_minutes)
            if run else None,
            "health": next((p for p in health.problems
                            if p.startswith(f"connector {connector.name}:")), "ok"),
            "calls_today": budget.used, "budget": connector.daily_api_budget,
            "calls_left": connector.daily_api_budget - budget.used
            if connector.daily_api_budget else None})
    open_letters = dead_letters.open_count(store)
    alerts = list(health.problems)
    for name in names:
        streak = store.failure_streak(name)
        if streak >= config.alerts.failed_runs_in_a_row:
            alerts.append(f"connector {name}: {streak} failed runs in a row")
    limit = config.alerts.dead_letters_above
    if limit is not None and open_letters > limit:
        alerts.append(f"{open_letters} open dead letters (alert above {limit})")
    return render(request, "overview.html", {
        "page": "overview", "connectors": connectors, "open_letters": open_letters,
        "alerts": alerts, "mql_this_week": _mqls(state, now - WEEK, now),
        "mql_last_week": _mqls(state, now - 2 * WEEK, now - WEEK), "now": now})


def _mqls(state: WebState, since: datetime, until: datetime) -> int:
    return funnel(stage_history.period_rows(state.store, since, until), since, until
                  ).mql_entries


@router.get("/runs")
def runs(request: Request, _user: AnyUser, connector: str | None = None,
         status: str | None = None) -> Response:
    found = web_state(request).store.runs(100, connector=connector or None,
                                          status=status or None)
    return render(request, "runs.html", {"page": "runs", "runs": found,
                                         "connector": connector or "", "status": status or "",
                                         "duration": charts.duration, "SKIPPED": SKIPPED})


@router.get("/runs/{run_id}")
def run_detail(request: Request, run_id: str, _user: AnyUser) -> Response:
    store = web_state(request).store
    run = store.run(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id}")
    rows = audit_page(store.audit_log, AuditFilter(run_id=run_id), limit=20)
    return render(request, "run.html", {"page": "runs", "run": run, "facts": run_facts(run),
                                        "audit": rows, "duration": charts.duration})


def run_facts(run: RunRecord) -> list[tuple[str, dict[str, object]]]:
    """The run's per-connector counters worth a row each, in reading order."""
    names = ("records_pulled", "activities_pulled", "api_calls", "fields_written",
             "records_written", "failures", "manual_edits_kept", "created", "api_retries",
             "api_rate_limited")
    return [(name.replace("_", " "), run.per_connector(name)) for name in names
            if run.per_connector(name)]


@router.get("/funnel")
def funnel_page(request: Request, _user: AnyUser, weeks: int = 8) -> Response:
    state = web_state(request)
    store, now = state.store, state.clock()
    weeks = max(1, min(weeks, 52))
    used = stage_history.stages_used(store)
    labels: list[str] = []
    series: dict[Stage, list[float]] = {stage: [] for stage in FUNNEL[1:]}
    mql_counts: list[float] = []
    for back in range(weeks - 1, -1, -1):
        until = now - back * WEEK
        since = until - WEEK
        result = funnel(stage_history.period_rows(store, since, until), since, until, used)
        labels.append(f"{since:%m-%d}")
        mql_counts.append(result.mql_entries)
        for step in result.steps:
            if step.stage in series:
                series[step.stage].append(100.0 * (step.of_mql or 0.0))
    decisions = store.decisions(store.person_keys(), scores=False)
    stages = Counter(d.stage for d in decisions.values())
    assignments = routing.assignment_rows(store)
    return render(request, "funnel.html", {
        "page": "funnel", "weeks": weeks,
        "stage_chart": charts.bar_chart("People by stage now", [
            (stage.value, float(stages[stage])) for stage in Stage if stages[stage]]),
        "mql_chart": charts.column_chart("MQL entries per week", labels,
                                         [("MQLs", mql_counts)]),
        "conversion_chart": charts.column_chart(
            "Share of the week's MQLs that reached each stage (%)", labels,
            [(f"MQL -> {stage.value}", values) for stage, values in series.items()
             if stage in used], unit="%"),
        "score_chart": _score_chart(decisions.values()),
        "speed_chart": _speed_chart(assignments),
        "load_chart": charts.bar_chart("Routing load: people assigned per owner", sorted(
            Counter(r["owner_email"] for r in assignments).items(),
            key=lambda kv: (-kv[1], kv[0]))[:25])})


#: outcomes for the score distribution: the furthest a person got
_OUTCOMES = (("won", {Stage.CUSTOMER}), ("opportunity", {Stage.OPPORTUNITY}),
             ("sales (SAL/SQL)", {Stage.SAL, Stage.SQL}))


def _score_chart(decisions: Iterable[Decision]) -> Markup:
    bands = [f"{low}-{low + 9}" for low in range(0, 100, 10)] + ["100+"]
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(bands))
    for decision in decisions:
        outcome = next((name for name, stages in _OUTCOMES if decision.stage in stages),
                       "not yet (below SAL)")
        counts[outcome][min(max(decision.score, 0) // 10, len(bands) - 1)] += 1
    order = [name for name, _ in _OUTCOMES] + ["not yet (below SAL)"]
    return charts.column_chart("Score distribution by outcome (people)", bands,
                               [(name, counts[name]) for name in order if name in counts])


def _speed_chart(assignments: list[routing.AssignmentRow]) -> Markup:
    """Median speed to lead per owner (hours), as syncer/ops/report.py measures it."""
    waits: dict[str, list[timedelta]] = defaultdict(list)
    for row in assignments:
        written = row["owner_written_at"]
        if written is not None:
            waits[row["owner_email"]].append(written - row["qualified_at"])
    bars = [(owner, round(percentile(sorted(values), 0.5).total_seconds() / 3600, 2))
            for owner, values in sorted(waits.items())]
    return charts.bar_chart("Speed to lead per owner: median hours from qualified to owner "
                            "written", bars[:25], unit=" h")
