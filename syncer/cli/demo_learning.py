"""The last story of `syncer demo`: learn from outcomes, compare, publish, sync.

The sandbox world plants outcomes (connectors/sandbox/outcomes.py: referrals, senior
titles and webinar attendance make people buy more often), the first syncs store them as
the CRMs show them, and here the loop a revops admin runs on their own CRMs runs on the
sandbox's: `syncer model calibrate --from-state` learns points from that history (the
current model kept for hand-raises, lifecycle and routing), `syncer model backtest`
compares them with the current model on the newest people, the learned file becomes the
config's model and the next sync publishes it and re-decides everyone.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.types import Stage
from syncer.run.outcome_history import export_history_csv, history_rows
from syncer.run.pipeline import run_sync
from syncer.run.publication import publish
from syncer.store.repository import Store

#: Share of the newest people (by first contact) kept apart to judge the learned model.
TEST_FRACTION = 0.3


def learning_loop(loaded: LoadedConfig, runtime: Runtime, model_file: Path) -> list[str]:
    """Calibrate on the store's history, backtest against the current model, publish the
    learned model through a sync; the lines say what each step found and did."""
    from syncer.qualify.learn import (
        HistoryError,
        Options,
        backtest_profiles,
        calibrate,
        read_history,
        split_history,
    )
    from syncer.qualify.learn import (
        history_rows as csv_rows,
    )

    store = runtime.require_store()
    folder = model_file.parent
    history_file = folder / "history.csv"
    people = export_history_csv(history_rows(store, loaded), history_file)
    current = runtime.model
    try:
        history = read_history(history_file, "outcome", "first_seen", as_of="as_of")
        split = split_history(history, test_fraction=TEST_FRACTION)
        result = calibrate(history, split, Options(base=current, name="learned"),
                           datetime.now(timezone.utc).date())
        rows = csv_rows(history, split.test)
        report = backtest_profiles(rows, result.model, current, dated=False)
    except HistoryError as problem:
        return ["", f"Learning from outcomes: not enough history in {people} people to "
                    f"learn from ({problem})."]
    learned, against = report.model, report.against
    assert against is not None
    won = sum(1 for row in rows if row.outcome)
    learned_file = folder / "learned-model.yaml"
    learned_file.write_text(result.text, encoding="utf-8")
    lines = [
        "",
        f"Learning from outcomes: {people} people in the state, "
        f"{sum(1 for o in history.outcomes if o)} reached opportunity or customer.",
        f"  calibrated on the oldest {result.rows_train} (syncer model calibrate "
        f"--from-state): {len(result.used)} columns, MQL at score >= {result.mql_score}; "
        f"written to {learned_file}",
        f"  backtest on the newest {len(rows)} ({won} won): learned AUC {learned.auc:.3f} "
        f"({learned.interval[0]:.2f}-{learned.interval[1]:.2f}) against the current "
        f"model's {against.auc:.3f} (syncer model backtest --from-state --model "
        f"{learned_file.name})",
    ]
    if round(learned.auc, 3) <= round(against.auc, 3):  # better as printed, or kept
        return [*lines, "  kept the current model: the learned one does not rank the newest "
                        "people better (more history, e.g. --people 3000, gives it more to "
                        "learn from)"]
    return [*lines, *_publish(loaded, runtime, model_file, result.text)]


def _publish(loaded: LoadedConfig, runtime: Runtime, model_file: Path, text: str
             ) -> list[str]:
    """Make the learned file the config's model, publish it (a rollback earlier in the
    demo pinned the previous version: publishing is what unpins) and sync."""
    store = runtime.require_store()
    before = _mqls(store)
    model_file.write_text(text, encoding="utf-8")
    publish(store, loaded, datetime.now(timezone.utc), note="demo: learned from outcomes")
    runtime.refresh_model(strict=True)
    summary = run_sync(loaded, store, runtime.connectors, runtime.model,
                       datetime.now(timezone.utc))
    return [f"  published {runtime.model.version} (syncer model publish) and synced: MQLs "
            f"{before} -> {_mqls(store)}, {sum(summary.fields_written.values())} fields "
            f"written (run {summary.run_id})"]


def _mqls(store: Store) -> int:
    return sum(1 for d in store.decisions(store.person_keys(), scores=False).values()
               if d.stage is Stage.MQL)
