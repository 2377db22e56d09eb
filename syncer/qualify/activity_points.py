"""What one engagement rule gives for the activities it matched: points, a Reason, and
ledger lines.

A rule counts its activities newest first: `max_count` keeps the most recent N (they are
worth the most); positive points decay with age; window caps (`max_points_per`) bound each
fixed window; `max_points` trims the piece that crosses it and ignores older ones. Each
step can only lower a total as activities are removed and only raise it as activities are
added, which is what the properties in tests/test_qualify_properties.py rely on.

The ledger (with `ledger` given) has one line per counted activity, with its points after
decay and its decay factor, then after each window that reached its cap and after the
piece that crossed `max_points` a "cap:" line with the points the cap took: the lines of a
rule add up to its Reason's points. The primary score needs Reasons and ledger lines; a
named score only its points and ledger lines (`rule_points` skips the Reason text).

Speed: this runs for every rule that matched something, four to six times per person, so
the cases are split by cost. Most rules match one activity (`_single`: no sorting, no
lists); rules without a window cap walk their activities once (`_tally`); only window caps
group activities into windows (`_windowed`). All three give exactly what the general
algorithm above gives (the same floats, summed in the same order).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import date
from operator import itemgetter

from syncer.domain.types import Activity, LedgerEntry, Reason
from syncer.qualify.construct import ledger_line, new_reason
from syncer.qualify.matchers import WINDOW_ORIGIN, ActivityMatcher

__all__ = ["EVIDENCE_ATTRIBUTES", "Hit", "activity_evidence", "iso_day", "ledger_line",
           "rule_points", "rule_reason"]

#: Attributes shown as evidence in an engagement Reason, first present wins.
EVIDENCE_ATTRIBUTES = ("url", "asset", "campaign", "form", "email")

Hit = tuple[float, Activity]  # (age in seconds, activity)
#: A window of a `max_points_per` rule: (points after its cap, activities in it, points
#: before the cap).
Unit = tuple[float, int, float]
#: How a rule counted its activities: (total, the hits counted newest first (after
#: max_count), how many counted, max_points reached, windows capped, how many not counted)
Tally = tuple[float, list[Hit], int, bool, int, int]


def rule_reason(matcher: ActivityMatcher, hits: list[Hit],
                ledger: list[LedgerEntry] | None = None) -> Reason:
    """One Reason for all activities a rule counted, citing the most recent one as
    evidence (and its ledger lines, see the module docstring). Sorts `hits` in place."""
    if len(hits) == 1:
        single = _single(matcher, hits[0], ledger)
        if single is not None:
            value, factor, evidence, capped = single
            at = hits[0][1].occurred_at
            detail = f"{matcher.activity_text}{evidence} {iso_day(at.toordinal())}"
            if factor < 0.995:
                detail += (matcher.decayed.get(factor)
                           or f", {matcher.points_text} decayed x{factor:.2f}")
            if capped:
                detail += f" (capped at {matcher.max_points:g})"
            return new_reason(matcher.rule_id, value, detail, at)
    return _counted_reason(matcher, hits, ledger)


def _counted_reason(matcher: ActivityMatcher, hits: list[Hit],
                    ledger: list[LedgerEntry] | None) -> Reason:
    """`rule_reason` for any number of activities (the general path)."""
    total, hits, counted, capped, windows_capped, dropped = _tally(matcher, hits, ledger)
    latest_age, latest = hits[0]
    evidence = activity_evidence(latest.attributes) if latest.attributes else ""
    day = iso_day(latest.occurred_at.toordinal())
    decay = matcher.decay
    if counted == 1:
        detail = f"{matcher.activity_text}{evidence} {day}"
        factor = decay(latest_age) if decay else 1.0
        if factor < 0.995:
            detail += (matcher.decayed.get(factor)
                       or f", {matcher.points_text} decayed x{factor:.2f}")
    else:
        detail = (f"{counted}x {matcher.activity_text}, latest{evidence} {day}; "
                  f"{matcher.points_text} each")
        if decay and not capped and not windows_capped:
            detail += f", decayed to {total:.2f}"
    if windows_capped:
        detail += (f" ({matcher.window_text}: reached in {windows_capped} "
                   f"window{'s' if windows_capped > 1 else ''})")
    if capped:
        detail += f" (capped at {matcher.max_points:g})"
    if dropped:
        detail += f" ({dropped} older not counted)"
    return new_reason(matcher.rule_id, total, detail, latest.occurred_at)


def rule_points(matcher: ActivityMatcher, hits: list[Hit],
                ledger: list[LedgerEntry]) -> float:
    """What `rule_reason` would give, without writing the Reason: for named scores."""
    if len(hits) == 1:
        single = _single(matcher, hits[0], ledger)
        if single is not None:
            return single[0]
    return _tally(matcher, hits, ledger)[0]


def _single(matcher: ActivityMatcher, hit: Hit, ledger: list[LedgerEntry] | None
            ) -> tuple[float, float, str, bool] | None:
    """One activity: (points after decay and max_points, decay factor, evidence, whether
    max_points took some), and its ledger lines; None when a window cap would take some
    of its points (rare: a window cap below the rule's points), which `_tally` handles.
    With one activity, max_count drops nothing, and a window cap it stays within changes
    nothing."""
    age, activity = hit
    decay = matcher.decay
    factor = decay(age) if decay is not None else 1.0
    value = matcher.points * factor
    window_points = matcher.window_points
    if window_points is not None and abs(value) > window_points:
        return None
    attributes = activity.attributes
    evidence = activity_evidence(attributes) if attributes else ""
    cap = matcher.max_points
    if ledger is not None:
        ledger.append(ledger_line(matcher.rule_id, value, f"{matcher.activity_text}{evidence}",
                                  f"{activity.source}:{activity.source_id}",
                                  activity.occurred_at, factor))
    if cap is not None and abs(value) > cap:
        capped = math.copysign(cap, matcher.points)
        if ledger is not None:
            ledger.append(ledger_line(matcher.rule_id, capped - value,
                                      f"cap: at most {cap:g} in total", None, None, 1.0))
        return capped, factor, evidence, True
    return value, factor, evidence, False


_AGE = itemgetter(0)


def _by_recency(hits: list[Hit]) -> None:
    """Newest first; activities at the same instant by (source, id), so that the evidence
    cited does not depend on the order activities arrived in. Sorting by age alone is a
    C-level key; equal ages (rare) re-sort by the full key, which the stable sort makes
    the same order as sorting by the full key at once."""
    hits.sort(key=_AGE)
    if len(set(map(_AGE, hits))) < len(hits):
        hits.sort(key=_recency)


def _recency(hit: Hit) -> tuple[float, str, str]:
    return hit[0], hit[1].source, hit[1].source_id


def _tally(matcher: ActivityMatcher, hits: list[Hit],
           ledger: list[LedgerEntry] | None) -> Tally:
    """Count several activities (or one a window cap trims), newest first, each a piece
    of its own, in one pass: decay, max_points and the ledger lines together. With a
    window cap the pieces are windows instead (`_windowed`)."""
    _by_recency(hits)
    dropped = 0
    if matcher.max_count is not None and len(hits) > matcher.max_count:
        dropped = len(hits) - matcher.max_count
        hits = hits[:matcher.max_count]
    if matcher.window is not None:
        return _windowed(matcher, hits, dropped, ledger)
    rule_id, text, base = matcher.rule_id, matcher.activity_text, matcher.points
    decay, cap = matcher.decay, matcher.max_points
    parts: list[float] = []
    running = 0.0
    crossed: tuple[float, float] | None = None  # (value, what max_points left of it)
    capped = False
    for n, (age, activity) in enumerate(hits):
        factor = decay(age) if decay is not None else 1.0
        value = base * factor if decay is not None else base
        if cap is not None and abs(running + value) > cap:
            capped, kept = True, math.copysign(cap, base) - running
            dropped += len(hits) - n - 1
            if kept == 0.0:
                dropped += 1
                break
            parts.append(kept)
            crossed = (value, kept)
        else:
            parts.append(value)
            running += value
        if ledger is not None:
            attributes = activity.attributes
            ledger.append(ledger_line(
                rule_id, value,
                f"{text}{activity_evidence(attributes)}" if attributes else text,
                f"{activity.source}:{activity.source_id}", activity.occurred_at, factor))
        if crossed is not None:
            if ledger is not None:
                ledger.append(ledger_line(rule_id, kept - value,
                                          f"cap: at most {cap:g} in total", None, None, 1.0))
            break
    total = math.fsum(parts) if len(parts) > 1 else parts[0] if parts else 0.0
    return total, hits, len(parts), capped, 0, dropped


def _windowed(matcher: ActivityMatcher, hits: list[Hit], dropped: int,
              ledger: list[LedgerEntry] | None) -> Tally:
    """`_tally` for a rule with a window cap: the pieces are its fixed windows, each capped
    at window_points, newest first; then max_points as in `_tally`. Sorted by recency, the
    hits of one window are next to each other."""
    assert matcher.window is not None and matcher.window_points is not None
    base, decay = matcher.points, matcher.decay
    if decay is None:
        factors = None
        values = [base] * len(hits)
    else:
        factors = [decay(age) for age, _ in hits]
        values = [base * factor for factor in factors]
    window, window_cap = matcher.window, matcher.window_points
    units: list[Unit] = []
    windows_capped = 0
    current: int | None = None
    group: list[float] = []
    for (_, activity), value in zip(hits, values, strict=True):
        slot = math.floor((activity.occurred_at.timestamp() - WINDOW_ORIGIN) / window)
        if slot != current and group:
            units.append(_window_unit(group, window_cap))
            windows_capped += units[-1][0] != units[-1][2]
            group = []
        current = slot
        group.append(value)
    units.append(_window_unit(group, window_cap))
    windows_capped += units[-1][0] != units[-1][2]
    cap = matcher.max_points
    crossed: tuple[float, float] | None = None  # (unit value, what max_points left of it)
    if cap is None:
        parts = [value for value, _, _ in units]
        counted, capped = len(hits), False
    else:
        parts, counted, capped, running = [], 0, False, 0.0
        for n, (value, size, _) in enumerate(units):
            if abs(running + value) > cap:
                capped, kept = True, math.copysign(cap, base) - running
                dropped += sum(s for _, s, _ in units[n + 1:])
                if kept != 0.0:
                    parts.append(kept)
                    counted += size
                    crossed = (value, kept)
                else:
                    dropped += size
                break
            parts.append(value)
            counted += size
            running += value
    total = math.fsum(parts) if len(parts) > 1 else parts[0] if parts else 0.0
    if ledger is not None:
        _window_ledger(ledger, matcher, hits, values, factors, units[:len(parts)], crossed)
    return total, hits, counted, capped, windows_capped, dropped


def _window_unit(values: list[float], cap: float) -> Unit:
    raw = math.fsum(values)
    return (math.copysign(cap, raw) if abs(raw) > cap else raw), len(values), raw


def _window_ledger(ledger: list[LedgerEntry], matcher: ActivityMatcher, hits: list[Hit],
                   values: list[float], factors: list[float] | None, counted: list[Unit],
                   crossed: tuple[float, float] | None) -> None:
    """The ledger lines of a window-capped rule: per counted window its activities, then a
    cap line if the window reached its cap; after the last, the max_points line if it
    crossed max_points (`crossed`)."""
    rule_id = matcher.rule_id
    start = 0
    for value, size, raw in counted:
        _activity_lines(ledger, matcher, hits, values, factors, start, start + size)
        if value != raw:
            ledger.append(ledger_line(rule_id, value - raw, f"cap: {matcher.window_text}",
                                      None, hits[start][1].occurred_at, 1.0))
        start += size
    if crossed is not None:
        ledger.append(ledger_line(rule_id, crossed[1] - crossed[0],
                                  f"cap: at most {matcher.max_points:g} in total",
                                  None, None, 1.0))


def _activity_lines(ledger: list[LedgerEntry], matcher: ActivityMatcher, hits: list[Hit],
                    values: list[float], factors: list[float] | None, start: int,
                    end: int) -> None:
    """A ledger line for each of hits[start:end]: its points after decay, its factor."""
    rule_id, text = matcher.rule_id, matcher.activity_text
    for k in range(start, end):
        activity = hits[k][1]
        attributes = activity.attributes
        ledger.append(ledger_line(
            rule_id, values[k], f"{text}{activity_evidence(attributes)}" if attributes else text,
            f"{activity.source}:{activity.source_id}", activity.occurred_at,
            factors[k] if factors else 1.0))


def activity_evidence(attributes: Mapping[str, str]) -> str:
    """" /pricing" for a URL (its path), " 'Contact us'" for other attributes, "" if none.
    The first of EVIDENCE_ATTRIBUTES present wins."""
    if len(attributes) == 1:  # the common case: one attribute, no search
        for key, value in attributes.items():
            if key in _EVIDENCE_KEYS:
                return _shown(key, value) if value else ""
            return ""
    for key in EVIDENCE_ATTRIBUTES:
        found = attributes.get(key)
        if found:
            return _shown(key, found)
    return ""


_EVIDENCE_KEYS = frozenset(EVIDENCE_ATTRIBUTES)


@functools.lru_cache(maxsize=4096)
def _shown(key: str, value: str) -> str:
    """Pure and memoized: the same few URLs and form names recur across many people."""
    if key == "url":
        rest = value.split("://", 1)[-1]
        slash = rest.find("/")
        return " " + (rest[slash:] if slash >= 0 else rest)[:80]
    return f" '{value[:80]}'"


@functools.lru_cache(maxsize=4096)
def iso_day(ordinal: int) -> str:
    """`iso_day(at.toordinal()) == at.date().isoformat()`: Reasons show the day of their
    evidence, and the same few hundred days recur across every person of a sync, so the
    text is remembered per day (the ordinal, like `date()`, is of the datetime's own
    fields, whatever its time zone)."""
    return date.fromordinal(ordinal).isoformat()
