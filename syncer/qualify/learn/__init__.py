"""Learning from outcomes: calibrate a points model from history, backtest any model.

This package sits beside the qualification core and uses only its public API
(`load_model`, `parse_model`, `qualify`, `Model`); the core never imports it, so scoring
needs neither scikit-learn nor numpy. What it writes is an ordinary model file.

- history.py, mapping.py, rows.py: a history CSV (and an optional column mapping) as
  people with outcomes, split in time;
- columns.py, guard.py, points.py, modelfile.py, calibrate.py: `syncer model calibrate`;
- metrics.py, backtest.py, report.py, svg.py: `syncer model backtest`.
"""

from syncer.qualify.learn.backtest import ModelBacktest, OutcomeRow, Report, backtest_profiles
from syncer.qualify.learn.calibrate import Calibration, LeakageRefused, Options, calibrate
from syncer.qualify.learn.history import History, HistoryError, Split, read_history, split_history
from syncer.qualify.learn.mapping import ColumnMap, load_mapping
from syncer.qualify.learn.rows import HistoryRow, history_rows

__all__ = [
    "Calibration", "ColumnMap", "History", "HistoryError", "HistoryRow", "LeakageRefused",
    "ModelBacktest", "Options", "OutcomeRow", "Report", "Split", "backtest_profiles", "calibrate",
    "history_rows", "load_mapping", "read_history", "split_history",
]
