"""Human text for a Decision: a one-line summary for a CRM field, a full breakdown for
`syncer explain`. Both are built only from the Decision, so the audit log can re-render
them for any past decision."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from syncer.domain.types import Decision, Person, Reason, ScoreCard

#: Reasons about the stage itself; the summary shows them first.
STAGE_PREFIXES = ("stage.", "lifecycle.")
ELLIPSIS = "…"
#: Rules whose points round to +0 / -0 would only be noise in a one-line summary.
MIN_SHOWN_POINTS = 0.05
_COUNT = re.compile(r"^(\d+)x ")


def summarize(decision: Decision, limit: int) -> str:
    """E.g. "MQL 72 (fit B): score 72 >= 60, fit 30 >= 10; demo request 2026-10-03 +38.2;
    vp title +20; pricing page x3 2026-10-01 +21.4".

    Stage reasons come first, then point reasons grouped per rule, largest |points| first.
    Never longer than `limit` characters: cut between reasons, ending in "…" when cut.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    head = f"{decision.stage.value.upper()} {decision.score} (fit {decision.fit_grade})"
    stage_reasons = [r for r in decision.reasons if r.rule_id.startswith(STAGE_PREFIXES)]
    stage_reasons.sort(key=lambda r: not r.rule_id.startswith("lifecycle."))
    items = [r.detail for r in stage_reasons]
    items += [_group_text(rule_id, group) for rule_id, group in _groups(decision.reasons)]
    full = head + (": " + "; ".join(items) if items else "")
    if len(full) <= limit:
        return full
    if len(head) + len(ELLIPSIS) > limit:
        return head[:limit - len(ELLIPSIS)] + ELLIPSIS
    text, separator = head, ": "
    for item in items:
        if len(text) + len(separator) + len(item) + len("; " + ELLIPSIS) > limit:
            break
        text, separator = text + separator + item, "; "
    cut = text + separator + ELLIPSIS
    return cut if len(cut) <= limit else text + ELLIPSIS


def breakdown(decision: Decision) -> list[str]:
    """Every reason on its own line: rule, points, evidence time (UTC), detail."""
    return [f"{r.rule_id:<32} {r.points:+8.2f}  {_when(r.evidence_at):<17}  {r.detail}"
            for r in decision.reasons]


def card_lines(card: ScoreCard) -> list[str]:
    """One named score for `syncer explain`: a heading with its total, fit, engagement and
    grade, then every ledger line: rule, points, when (UTC), decay factor (for activities),
    detail, and the activity (connector:id; ids are long, so last). The points of the
    lines add up to the total."""
    lines = [f"{card.name}: total {card.total} (fit {card.fit:.4g}, engagement "
             f"{card.engagement:.4g}), grade {card.grade}"]
    for e in card.ledger:
        decay = f"x{e.decay:.2f}" if e.activity_id is not None else "-"
        activity = f"  [{e.activity_id}]" if e.activity_id is not None else ""
        lines.append(f"  {e.rule_id:<32} {e.points:+8.2f}  {_when(e.at):<17}  {decay:>5}  "
                     f"{e.detail}{activity}")
    return lines


def _groups(reasons: tuple[Reason, ...]) -> list[tuple[str, list[Reason]]]:
    """Point reasons grouped per rule, largest absolute total first (ties by rule id);
    rules worth less than MIN_SHOWN_POINTS in total are left out."""
    groups: dict[str, list[Reason]] = {}
    for reason in reasons:
        if reason.points != 0.0 and not reason.rule_id.startswith(STAGE_PREFIXES):
            groups.setdefault(reason.rule_id, []).append(reason)
    totals = {rule_id: math.fsum(r.points for r in group) for rule_id, group in groups.items()}
    return sorted(((rule_id, group) for rule_id, group in groups.items()
                   if abs(totals[rule_id]) >= MIN_SHOWN_POINTS),
                  key=lambda kv: (-abs(totals[kv[0]]), kv[0]))


def _group_text(rule_id: str, group: list[Reason]) -> str:
    label = rule_id.partition(".")[2].replace("_", " ") or rule_id
    count = sum(_count(r.detail) for r in group)
    if count > 1:
        label += f" x{count}"
    dates = [r.evidence_at for r in group if r.evidence_at is not None]
    if dates:
        label += f" {max(dates).date().isoformat()}"
    return f"{label} {_points(math.fsum(r.points for r in group))}"


def _count(detail: str) -> int:
    """How many activities a reason stands for ("3x page_view, ..." -> 3; otherwise 1)."""
    match = _COUNT.match(detail)
    return int(match.group(1)) if match else 1


def _points(points: float) -> str:
    rounded = round(points)
    if abs(points - rounded) < 0.05:
        return f"{rounded:+d}"
    return f"{points:+.1f}"


def _when(at: datetime | None) -> str:
    if at is None:
        return "-"
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
        return at.strftime("%Y-%m-%d %H:%MZ")
    return at.strftime("%Y-%m-%d %H:%M")


def explain_json(decision: Decision, records: Sequence[Person], activities: int
                 ) -> dict[str, object]:
    """`syncer explain --json`: the decision with its reasons and every score's ledger."""
    def when(at: datetime | None) -> str | None:
        return at.isoformat() if at is not None else None

    return {
        "email": decision.key, "stage": decision.stage.value, "score": decision.score,
        "fit": decision.fit_points, "engagement": decision.engagement_points,
        "grade": decision.fit_grade, "owner": decision.owner_email,
        "model_version": decision.model_version, "activities": activities,
        "records": [{"connector": r.source, "object_type": r.object_type,
                     "record_id": r.record_id} for r in records],
        "reasons": [{"rule_id": r.rule_id, "points": r.points, "detail": r.detail,
                     "at": when(r.evidence_at)} for r in decision.reasons],
        "scores": [{"name": c.name, "total": c.total, "fit": c.fit,
                    "engagement": c.engagement, "grade": c.grade,
                    "ledger": [{"rule_id": e.rule_id, "points": e.points, "detail": e.detail,
                                "activity_id": e.activity_id, "at": when(e.at),
                                "decay": e.decay} for e in c.ledger]}
                   for c in decision.scores],
    }
