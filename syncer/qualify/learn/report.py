"""The backtest as one HTML page a revops admin can open offline or attach to an email.

Charts are inline SVG (svg.py); the page loads nothing from anywhere. It shows, for the
model under test and the one it is compared with: the AUC with its interval, the MQL
line's share, conversion and recall, conversion by score band, the lift curve, and the
score histogram of converted vs other people.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from syncer.qualify.learn.backtest import ModelBacktest, Report, curves
from syncer.qualify.learn.svg import Series, bar_chart, line_chart

STYLE = ("body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}"
         "table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;"
         "padding:3px 8px;text-align:right}th{background:#f3f3f3}.charts{display:flex;"
         "flex-wrap:wrap;gap:16px}h2{margin-top:28px}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _models(report: Report) -> list[ModelBacktest]:
    return [m for m in (report.model, report.against) if m is not None]


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def _summary(report: Report) -> str:
    rows = [[m.name, m.version, f"{m.auc:.3f}", f"{m.interval[0]:.3f} – {m.interval[1]:.3f}",
             _pct(m.mql_share), _pct(m.mql_precision), _pct(m.mql_recall)]
            for m in _models(report)]
    return _table(["model", "version", "AUC", "95% interval", "MQL share", "MQL conversion",
                   "MQL recall"], rows)


def _band_chart(report: Report) -> str:
    models = _models(report)
    count = max(len(m.bands) for m in models)
    labels = [str(i) for i in range(1, count + 1)]
    series = [Series(m.name, [b.rate * 100 for b in m.bands]) for m in models]
    return bar_chart("Conversion by score band (1 = best)", labels, series, "% converted")


def _lift_chart(report: Report) -> str:
    models = _models(report)
    lifts = [curves(m, report.outcomes)["lift"] for m in models]
    xs = [x * 100 for x, _ in lifts[0]]
    series = [Series(m.name, [y * 100 for _, y in curve])
              for m, curve in zip(models, lifts, strict=True)]
    return line_chart("Lift: conversions found vs people contacted", xs, series,
                      "% of conversions", diagonal=True)


def _histogram(model: ModelBacktest, report: Report) -> str:
    edges, won, lost = curves(model, report.outcomes)["histogram"]
    labels = [f"{edges[i]:.0f}" for i in range(len(won))]
    return bar_chart(f"Scores of {model.name}", labels,
                     [Series("converted", won), Series("not converted", lost)], "people")


def _details(model: ModelBacktest) -> str:
    bands = _table(["band", "scores", "people", "converted", "conversion", "lift"],
                   [[b.band, f"{b.low} – {b.high}", b.people, b.converted, _pct(b.rate),
                     f"{b.lift:.2f}"] for b in model.bands])
    stages = _table(["stage", "people", "converted", "conversion"],
                    [[s.stage, s.people, s.converted, _pct(s.rate)] for s in model.stages])
    weeks = ""
    if model.weeks:
        weeks = "<h3>MQLs per week</h3>" + _table(
            ["week of", "people", "MQLs", "MQLs won", "MQL → won"],
            [[w.week.isoformat(), w.people, w.mqls, w.mql_won,
              _pct(w.mql_won / w.mqls if w.mqls else None)] for w in model.weeks])
    return (f"<h2>{escape(model.name)} <small>{escape(model.version)}</small></h2>"
            f"<h3>Score bands</h3>{bands}<h3>Stages</h3>{stages}{weeks}")


def report_html(report: Report, title: str) -> str:
    """The whole page as one string."""
    charts = [_band_chart(report), _lift_chart(report),
              *(_histogram(m, report) for m in _models(report))]
    figures = "".join(f"<figure>{c}</figure>" for c in charts)
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
            f"{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{escape(title)}</h1><p>{report.people:,} people judged, "
            f"{report.converted:,} converted ({report.converted / report.people:.1%}). "
            "Scores and stages come from the qualification core, as a sync decides them."
            f"</p>{_summary(report)}<div class=charts>{figures}</div>"
            + "".join(_details(m) for m in _models(report)) + "</body></html>")
