"""Fast constructors for the frozen domain objects the core builds by the thousand.

A decision holds a dozen ledger lines, eight or so Reasons, a ScoreCard per score and the
Decision itself, for 100,000 people per sync; a frozen dataclass's `__init__` cost about
as much as everything else the core does for one ledger line or Reason. These build the
same objects through their slots (syncer/domain/fast_new.py says how, and checks each
class's fields at import; tests/test_named_scores.py checks a ledger line).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from syncer.domain.fast_new import new_object as _new
from syncer.domain.fast_new import slot_setters as _setters
from syncer.domain.types import Decision, LedgerEntry, Reason, ScoreCard, Stage


def _ledger_line() -> Callable[[str, float, str, str | None, datetime | None, float],
                               LedgerEntry]:
    rule, points, detail, activity, at, decay = _setters(
        LedgerEntry, ("rule_id", "points", "detail", "activity_id", "at", "decay"))

    def ledger_line(rule_id: str, points_: float, detail_: str, activity_id: str | None,
                    at_: datetime | None, decay_: float) -> LedgerEntry:
        """LedgerEntry(rule_id, points, detail, activity_id, at, decay)."""
        entry: LedgerEntry = _new(LedgerEntry)
        rule(entry, rule_id)
        points(entry, points_)
        detail(entry, detail_)
        activity(entry, activity_id)
        at(entry, at_)
        decay(entry, decay_)
        return entry
    return ledger_line


def _reason() -> Callable[[str, float, str, datetime | None], Reason]:
    rule, points, detail, evidence = _setters(
        Reason, ("rule_id", "points", "detail", "evidence_at"))

    def reason(rule_id: str, points_: float, detail_: str,
               evidence_at: datetime | None) -> Reason:
        """Reason(rule_id, points, detail, evidence_at)."""
        made: Reason = _new(Reason)
        rule(made, rule_id)
        points(made, points_)
        detail(made, detail_)
        evidence(made, evidence_at)
        return made
    return reason


def _score_card() -> Callable[[str, float, float, int, str, tuple[LedgerEntry, ...]],
                              ScoreCard]:
    name, fit, engagement, total, grade, ledger = _setters(
        ScoreCard, ("name", "fit", "engagement", "total", "grade", "ledger"))

    def score_card(name_: str, fit_: float, engagement_: float, total_: int, grade_: str,
                   ledger_: tuple[LedgerEntry, ...]) -> ScoreCard:
        """ScoreCard(name, fit, engagement, total, grade, ledger)."""
        card: ScoreCard = _new(ScoreCard)
        name(card, name_)
        fit(card, fit_)
        engagement(card, engagement_)
        total(card, total_)
        grade(card, grade_)
        ledger(card, ledger_)
        return card
    return score_card


def _decision() -> Callable[[str, int, float, float, str, Stage, str | None,
                             tuple[Reason, ...], str, tuple[ScoreCard, ...]], Decision]:
    setters = _setters(Decision, (
        "key", "score", "fit_points", "engagement_points", "fit_grade", "stage",
        "owner_email", "reasons", "model_version", "scores"))
    key, score, fit, engagement, grade, stage, owner, reasons, version, scores = setters

    def decision(key_: str, score_: int, fit_: float, engagement_: float, grade_: str,
                 stage_: Stage, owner_email: str | None, reasons_: tuple[Reason, ...],
                 model_version: str, scores_: tuple[ScoreCard, ...]) -> Decision:
        """Decision(key, score, fit_points, engagement_points, fit_grade, stage,
        owner_email, reasons, model_version, scores)."""
        made: Decision = _new(Decision)
        key(made, key_)
        score(made, score_)
        fit(made, fit_)
        engagement(made, engagement_)
        grade(made, grade_)
        stage(made, stage_)
        owner(made, owner_email)
        reasons(made, reasons_)
        version(made, model_version)
        scores(made, scores_)
        return made
    return decision


#: LedgerEntry(rule_id, points, detail, activity_id, at, decay)
ledger_line = _ledger_line()
#: Reason(rule_id, points, detail, evidence_at)
new_reason = _reason()
#: ScoreCard(name, fit, engagement, total, grade, ledger)
new_card = _score_card()
#: Decision(key, score, fit_points, engagement_points, fit_grade, stage, owner_email,
#: reasons, model_version, scores)
new_decision = _decision()
