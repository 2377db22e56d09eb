"""Score cards: each score of a decision (the primary one, then the named ones) with the
ledger its total is the sum of.

A ledger line is one fit rule that matched, one activity an engagement rule counted (its
points after decay, with the decay factor), one cap that took points off, or one
inactivity rule that fired. The total written to a CRM is a whole number, so a last
`rounding` line carries the difference between the points and the rounded total: with
it, the lines of every card add up to its total (math.fsum, to within 1e-9: the points
are floats, such as 12 x 0.7).
"""

from __future__ import annotations

import math

from syncer.domain.types import LedgerEntry, Profile, ScoreCard
from syncer.qualify.construct import ledger_line, new_card
from syncer.qualify.plan import Plan, ScorePlan
from syncer.qualify.scoring import Scan, engagement_lines, fit_by, grade_of, last_engagement

#: The rule id of the line that reconciles a card's points with its rounded total.
ROUNDING = "rounding"


def score_card(name: str, fit: float, engagement: float, total: int, grade: str,
               ledger: list[LedgerEntry]) -> ScoreCard:
    """A card whose ledger adds up to `total`: a `rounding` line is appended when the
    lines' points (the unrounded fit + engagement) differ from it."""
    rest = total - math.fsum([entry.points for entry in ledger])
    if rest != 0.0:
        ledger.append(ledger_line(ROUNDING, rest, f"fit + engagement rounded to {total}",
                                  None, None, 1.0))
    return new_card(name, fit, engagement, total, grade, tuple(ledger))


def named_cards(profile: Profile, plan: Plan, found: Scan, values: dict[str, object | None],
                now_ts: float, primary: ScoreCard, fit_lines: int) -> list[ScoreCard]:
    """The named scores' cards. `primary` is the primary card, whose first `fit_lines`
    ledger lines are its fit: a named score without fit rules of its own reuses them (and
    one without engagement rules of its own the engagement lines), computed once."""
    cards: list[ScoreCard] = []
    for score in plan.named:
        cards.append(_card(score, profile, found, values, now_ts, primary, fit_lines))
    return cards


def _card(score: ScorePlan, profile: Profile, found: Scan, values: dict[str, object | None],
          now_ts: float, primary: ScoreCard, fit_lines: int) -> ScoreCard:
    ledger: list[LedgerEntry] = []
    if score.fit is None:
        fit = primary.fit
        ledger.extend(primary.ledger[:fit_lines])
    else:
        fit, _ = fit_by(values, score.fit, ledger)
    if score.engagement is None:
        engagement = primary.engagement
        ledger.extend(entry for entry in primary.ledger[fit_lines:]
                      if entry.rule_id != ROUNDING)
    else:
        if score.shares_last_engaged:
            last, last_ts = found.last_engaged, found.last_engaged_ts
        elif score.inactivity:
            last, last_ts = last_engagement(profile, score.engaged, now_ts)
        else:
            last, last_ts = None, -math.inf
        engagement = engagement_lines(found, score.engagement, score.inactivity, last,
                                      last_ts, now_ts, ledger, score.engagement_fields,
                                      score.aggregates, values)
    return score_card(score.name, fit, engagement, round(fit + engagement),
                      grade_of(fit, score.grades), ledger)
