"""`syncer model calibrate` and `syncer model backtest`: learn from outcomes, and measure.

Thin: read the options, call syncer.qualify.learn, print a summary (or --json). A problem
with the input (file, column, value, split, leaky column) prints one message and exits 2.
scikit-learn is imported only when one of these commands runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from syncer.cli.commands.common import add_config_option, load_args_config

if TYPE_CHECKING:
    from syncer.qualify import Model
    from syncer.qualify.learn.backtest import Report, Week
    from syncer.qualify.learn.calibrate import Calibration
    from syncer.qualify.learn.history import History

#: The model shipped beside the example config (syncer.domain.config.EXAMPLE_CONFIG).
SHIPPED_MODEL_NAME = "model.example.yaml"


def _shipped_model() -> Model:
    from syncer.domain.config import EXAMPLE_CONFIG
    from syncer.qualify import load_model

    return load_model(EXAMPLE_CONFIG.with_name(SHIPPED_MODEL_NAME))


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1, e.g. 0.2")
    return number


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


def _history_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--history", metavar="FILE.csv",
                        help="one row per person; the first column is the id")
    source.add_argument("--from-state", action="store_true",
                        help="learn from the connected CRMs as syncer stored them: outcome "
                             "= reached opportunity or customer (or a converted lead), "
                             "features as they stood before it (state: --state or the "
                             "config's)")
    parser.add_argument("--state", metavar="URL",
                        help="with --from-state: the state database (default: the config's)")
    parser.add_argument("--outcome", metavar="COLUMN",
                        help="with --history: 1/0, true/false, yes/no, won/lost or "
                             "converted/not converted")
    parser.add_argument("--time", metavar="COLUMN",
                        help="ISO dates or a number sequence ordering the rows (default: "
                             "the file order)")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--split-at", metavar="TIME",
                       help="rows before this time train, the rest test")
    split.add_argument("--test-fraction", type=_fraction, default=0.2, metavar="F",
                       help="the newest F of the rows test (default 0.2)")
    parser.add_argument("--map", metavar="FILE.yaml",
                        help="column mapping: columns as syncer fields and activities "
                             "(config/examples/xeducation-columns.yaml)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `calibrate` and `backtest` under `syncer model`."""
    cal = add_config_option(actions.add_parser(
        "calibrate", help="learn an integer-points model from a history of outcomes (writes "
                          "a model file)"))
    _history_options(cal)
    cal.add_argument("--exclude", type=_names, default=(), metavar="COL,...",
                     help="columns not to learn from")
    cal.add_argument("--allow", type=_names, default=(), metavar="COL,...",
                     help="columns the leakage guard may not refuse")
    rate = cal.add_mutually_exclusive_group()
    rate.add_argument("--mql-rate", type=_fraction, default=0.3, metavar="F",
                      help="about this share of people MQL (default 0.3)")
    rate.add_argument("--precision", type=_fraction, metavar="P",
                      help="the lowest MQL score whose MQLs convert at least this often")
    cal.add_argument("--base", metavar="MODEL.yaml",
                     help="keep this model's engagement, lifecycle, routing, hand-raises "
                          "and named scores (its fit rules are replaced); with "
                          "--from-state the config's model is the default")
    cal.add_argument("--output", required=True, metavar="MODEL.yaml")
    cal.set_defaults(func=cmd_calibrate)

    back = add_config_option(actions.add_parser(
        "backtest", help="score the test part of a history with a model and a second one, "
                         "side by side: AUC, conversion by band and stage, MQLs"))
    _history_options(back)
    back.add_argument("--model", metavar="FILE", help="default: the config's model")
    back.add_argument("--against", metavar="FILE",
                      help=f"the model to compare with (default: the published one when "
                           f"the state has one, else the shipped {SHIPPED_MODEL_NAME})")
    back.add_argument("--scores-out", metavar="FILE.csv",
                      help="write id,score,stage,outcome of every test row")
    back.add_argument("--report", metavar="FILE.html", help="write an HTML report")
    back.set_defaults(func=cmd_backtest)


def _read(args: argparse.Namespace) -> History:
    """The history: the --history file, or with --from-state the state store's history
    exported to a temporary CSV (read whole, then removed)."""
    import tempfile

    from syncer.qualify.learn import read_history

    with tempfile.TemporaryDirectory(prefix="syncer-history-") as folder:
        return read_history(*_history_source(args, Path(folder)))


def _history_source(args: argparse.Namespace, folder: Path
                    ) -> tuple[str, str, str | None, str | None]:
    """(CSV path, outcome column, time column, as-of column): the --history file as
    given, or, with --from-state, the state store's history written as a CSV in `folder`
    (syncer/run/outcome_history.py says what its rows hold), ordered by first contact and
    scored as each person stood before their outcome."""
    from syncer.qualify.learn import HistoryError

    if args.history is not None:
        if not args.outcome:
            raise HistoryError("--history needs --outcome COLUMN: the column that says "
                               "whether the person converted. Fix: add it")
        return args.history, args.outcome, args.time, None
    if args.outcome or args.time:
        raise HistoryError("--outcome and --time are for --history; --from-state knows its "
                           "outcome and time. Fix: remove them")
    from syncer.run.outcome_history import export_history_csv, history_rows
    from syncer.store.read_only import open_read_only

    loaded = load_args_config(args)
    url = args.state or loaded.state_url
    path = folder / "state-history.csv"
    store = open_read_only(url)  # never created, migrated or written by learning
    try:
        written = export_history_csv(history_rows(store, loaded), path)
    finally:
        store.close()
    if written == 0:
        raise HistoryError(f"the state at {url} holds no people yet. Fix: run `syncer sync "
                           "--once` first")
    return str(path), "outcome", "first_seen", "as_of"


def _published_or_shipped(args: argparse.Namespace) -> Model:
    """The model syncs use now (the active published version) when the config's state
    database exists and has one, else the shipped model."""
    from syncer.run.publication import stored_model
    from syncer.store import model_versions
    from syncer.store.location import NoState
    from syncer.store.read_only import open_read_only

    loaded = load_args_config(args)
    url = getattr(args, "state", None) or loaded.state_url
    try:
        store = open_read_only(url)
    except NoState:
        return _shipped_model()
    try:
        active = model_versions.active(store)
    finally:
        store.close()
    return stored_model(active) if active is not None else _shipped_model()


def _fail(message: str) -> int:
    """A refused history, as syncer/cli/main.py prints every bad input (calibrate prints its
    refusals as JSON first with --json, so it cannot just raise)."""
    print(f"syncer: {message}", file=sys.stderr)
    return 2


def _model_name(output: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(output).stem).strip("-._")[:64]
    return name if name else "learned"


def cmd_calibrate(args: argparse.Namespace) -> int:
    from syncer.qualify import load_model
    from syncer.qualify.learn import (
        ColumnMap,
        HistoryError,
        LeakageRefused,
        Options,
        calibrate,
        load_mapping,
        split_history,
    )

    base = load_model(args.base) if args.base else None
    if base is None and args.from_state:
        # learned for the same CRMs: keep the current model's hand-raises, lifecycle,
        # routing and named scores, which the config's field mappings rely on
        base = load_model(load_args_config(args).model_path)
    try:
        mapping = load_mapping(args.map) if args.map else ColumnMap()
        history = _read(args)
        split = split_history(history, args.split_at, args.test_fraction)
        options = Options(exclude=args.exclude, allow=args.allow, mql_rate=args.mql_rate,
                          precision=args.precision, base=base,
                          name=_model_name(args.output), mapping=mapping)
        result = calibrate(history, split, options, datetime.now(timezone.utc).date())
    except LeakageRefused as refused:
        if args.json:
            print(json.dumps({"refused": {r.header: list(r.reasons)
                                          for r in refused.refusals}}, indent=2))
        return _fail(f"model calibrate: {refused}")
    except HistoryError as error:
        return _fail(f"model calibrate: {error}")
    Path(args.output).write_text(result.text, encoding="utf-8")
    written = load_model(args.output)  # what the sync will read, checked once more
    if args.json:
        print(json.dumps(_calibration_summary(result, split.description, args.output, written),
                         indent=2))
    else:
        print("\n".join(_calibration_lines(result, split.description, args.output, written)))
    return 0


def _calibration_summary(result: Calibration, split: str, output: str, model: Model
                         ) -> dict[str, object]:
    test = result.test
    return {"output": output, "version": model.version, "split": split,
            "rows": {"train": result.rows_train, "test": result.rows_test},
            "used": list(result.used), "excluded": result.excluded, "refused": {},
            "rules": len(model.fit.rules), "mql_score": result.mql_score,
            "auc_test": _r4(test.auc), "auc_95": [_r4(v) for v in test.interval],
            "cv_auc_train": _r4(result.fitted.cv_auc), "c": result.fitted.c,
            "mql_share": _r4(test.mql_share),
            "mql_conversion": None if test.mql_precision is None
            else _r4(test.mql_precision),
            "notes": list(result.fitted.notes)}


def _r4(value: float) -> float:
    """Figures as --json prints them: the text lines format these same rounded values."""
    return round(value, 4)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{_r4(value):.1%}"


def _calibration_lines(result: Calibration, split: str, output: str, model: Model
                       ) -> list[str]:
    test = result.test
    low, high = (_r4(v) for v in test.interval)
    return [
        f"wrote {output} ({model.version}): {len(model.fit.rules)} fit rules",
        f"rows: {result.rows_train:,} train, {result.rows_test:,} test ({split})",
        f"columns used ({len(result.used)}): {', '.join(result.used)}",
        f"columns excluded ({len(result.excluded)}): "
        + "; ".join(f"{k} ({v})" for k, v in result.excluded.items()),
        "columns refused: none",
        f"test AUC {_r4(test.auc):.3f} (95% {low:.3f} - {high:.3f}), scored by the "
        f"qualification core; 5-fold AUC on train {_r4(result.fitted.cv_auc):.3f}",
        f"MQL at score >= {result.mql_score}: {_r4(test.mql_share):.1%} of test people, "
        f"{_share(test.mql_precision)} of them converted",
        *(f"note: {n}" for n in result.fitted.notes),
    ]


def cmd_backtest(args: argparse.Namespace) -> int:
    from syncer.qualify import load_model
    from syncer.qualify.learn import (
        ColumnMap,
        HistoryError,
        backtest_profiles,
        history_rows,
        load_mapping,
        split_history,
    )
    from syncer.qualify.learn.report import report_html

    model_path = args.model or str(load_args_config(args).model_path)
    model = load_model(model_path)
    against = load_model(args.against) if args.against else _published_or_shipped(args)
    try:
        mapping = load_mapping(args.map) if args.map else ColumnMap()
        history = _read(args)
        split = split_history(history, args.split_at, args.test_fraction)
        rows = history_rows(history, split.test, mapping)
        report = backtest_profiles(rows, model, against, dated=history.dated)
    except HistoryError as error:
        return _fail(f"model backtest: {error}")
    if args.scores_out:
        _write_scores(Path(args.scores_out), report)
    if args.report:
        title = f"Backtest on {Path(history.source).name} ({split.description})"
        Path(args.report).write_text(report_html(report, title), encoding="utf-8")
    if args.json:
        print(json.dumps({"split": split.description, **report.summary()}, indent=2))
    else:
        print("\n".join(_backtest_lines(report, split.description)))
    return 0


def _write_scores(path: Path, report: Report) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "score", "stage", "outcome"])
        for row in zip(report.ids, report.model.scores.tolist(), report.model.stage_of,
                       report.outcomes.astype(int).tolist(), strict=True):
            writer.writerow(row)


def _backtest_lines(report: Report, split: str) -> list[str]:
    lines = [f"{report.people:,} test people ({split}), {report.converted:,} converted"]
    for label, m in (("model", report.model), ("against", report.against)):
        if m is None:
            continue
        low, high = (_r4(v) for v in m.interval)
        lines += [f"{label} {m.version}: AUC {_r4(m.auc):.3f} (95% {low:.3f} - {high:.3f}); "
                  f"MQL {_r4(m.mql_share):.1%} of people, {_share(m.mql_precision)} of them "
                  f"converted, recall {_share(m.mql_recall)}",
                  "  bands (best first): " + ", ".join(
                      f"{b.low}..{b.high}: {_r4(b.rate):.0%} x{_r4(b.lift):.1f}"
                      for b in m.bands),
                  "  stages: " + ", ".join(f"{st.stage} {st.people:,} "
                                           f"({_r4(st.rate):.0%})" for st in m.stages),
                  *_week_line(m.weeks)]
    return lines


def _week_line(weeks: Sequence[Week]) -> list[str]:
    """One line of the per-week figures (all of them are in --json and --report)."""
    if not weeks:
        return []
    mqls = sorted(w.mqls for w in weeks)
    won = sum(w.mql_won for w in weeks)
    rate = f"{won / sum(mqls):.0%}" if sum(mqls) else "-"
    return [f"  weeks: {len(weeks)} from {weeks[0].week.isoformat()}; MQLs per week: median "
            f"{mqls[len(mqls) // 2]}, {mqls[0]}-{mqls[-1]}; MQL -> won {rate}"]
