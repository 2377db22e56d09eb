"""How a decision's reasons and named scores are kept in JSON columns (decisions, audit).

Reading is tolerant of what an older syncer wrote; writing is what the store and the audit
trail hand to the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TypedDict

from syncer.domain.types import LedgerEntry, Reason, ScoreCard


class ReasonJson(TypedDict):
    """One reason as stored (decisions.reasons, audit.reasons)."""

    rule_id: str
    points: float
    detail: str
    evidence_at: str | None


#: a ledger line as stored: [rule_id, points, detail, activity_id, at, decay]
LedgerJson = list[str | float | None]


class CardJson(TypedDict):
    """One named score as stored (decisions.scores)."""

    name: str
    fit: float
    engagement: float
    total: int
    grade: str
    ledger: list[LedgerJson]


def reason_to_json(reason: Reason) -> ReasonJson:
    return {"rule_id": reason.rule_id, "points": reason.points, "detail": reason.detail,
            "evidence_at": reason.evidence_at.isoformat() if reason.evidence_at else None}


def reasons_to_json(reasons: Iterable[Reason]) -> list[ReasonJson]:
    """A new list each call (Store.reasons_json keeps one per decision's reasons)."""
    return [reason_to_json(r) for r in reasons]


def reason_from_json(data: ReasonJson) -> Reason:
    at = data.get("evidence_at")
    return Reason(str(data["rule_id"]), float(data["points"]), str(data["detail"]),
                  datetime.fromisoformat(at) if at else None)


def card_to_json(card: ScoreCard) -> CardJson:
    """A named score for decisions.scores; ledger lines as compact arrays [rule_id, points,
    detail, activity_id, at, decay], as a person has dozens of them and the row is
    rewritten on every re-score."""
    return {"name": card.name, "fit": card.fit, "engagement": card.engagement,
            "total": card.total, "grade": card.grade,
            "ledger": [[e.rule_id, e.points, e.detail, e.activity_id,
                        e.at.isoformat() if e.at else None, e.decay] for e in card.ledger]}


def card_from_json(data: CardJson) -> ScoreCard:
    return ScoreCard(
        name=str(data["name"]), fit=float(data["fit"]), engagement=float(data["engagement"]),
        total=int(data["total"]), grade=str(data["grade"]),
        ledger=tuple(_entry(line) for line in data["ledger"]))


def _entry(line: LedgerJson) -> LedgerEntry:
    """A stored ledger line; a line of another shape is a state this syncer did not
    write, named in the error rather than read wrongly."""
    rule_id, points, detail, activity_id, at, decay = line
    if points is None or decay is None:
        raise ValueError(f"decisions.scores: ledger line {line!r} has no number for points "
                         "or decay. Fix: re-score the person (`syncer sync --once`)")
    return LedgerEntry(str(rule_id), float(points), str(detail),
                       None if activity_id is None else str(activity_id),
                       datetime.fromisoformat(at) if isinstance(at, str) and at else None,
                       float(decay))
