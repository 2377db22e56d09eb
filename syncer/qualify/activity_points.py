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
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from datetime import datetime

from syncer.domain import Activity, LedgerEntry, Reason
from syncer.qualify.plan import WINDOW_ORIGIN, ActivityMatcher


def _line_maker() -> Callable[[str, float, str, str | None, datetime | None, float],
                              LedgerEntry]:
    """A LedgerEntry constructor taking every field positionally, at about half the cost
    of the frozen dataclass __init__ (which sets each field through object.__setattr__);
    a profile has a dozen ledger lines or more, so this is a measurable share of the
    core's time. The object is the same in every respect (tests check equality, hash,
    repr and pickling). Fails at import if the fields change, rather than build
    half-initialized entries."""
    names = ("rule_id", "points", "detail", "activity_id", "at", "decay")
    if tuple(f.name for f in dataclasses.fields(LedgerEntry)) != names or hasattr(
            LedgerEntry, "__post_init__"):
        raise RuntimeError("LedgerEntry changed: update activity_points.ledger_line")
    new = object.__new__
    rule, points, detail, activity, at, decay = (
        getattr(LedgerEntry, name).__set__ for name in names)

    def ledger_line(rule_id: str, points_: float, detail_: str, activity_id: str | None,
                    at_: datetime | None, decay_: float) -> LedgerEntry:
        entry = new(LedgerEntry)
        rule(entry, rule_id)
        points(entry, points_)
        detail(entry, detail_)
        activity(entry, activity_id)
        at(entry, at_)
        decay(entry, decay_)
        return entry
    return ledger_line


ledger_line = _line_maker()

#: Attributes shown as evidence in an engagement Reason, first present wins.
EVIDENCE_ATTRIBUTES = ("url", "asset", "campaign", "form", "email")

Hit = tuple[float, Activity]  # (age in seconds, activity)
#: What a rule counts as one piece: (points after caps, activities in it, points before
#: the window cap). A window of a `max_points_per` rule, or one activity.
Unit = tuple[float, int, float]
#: How a rule counted its activities: (total, the hits counted newest first (after
#: max_count), how many counted, max_points reached, windows capped, how many not counted)
Tally = tuple[float, list[Hit], int, bool, int, int]


def rule_reason(matcher: ActivityMatcher, hits: list[Hit],
                ledger: list[LedgerEntry] | None = None) -> Reason:
    """One Reason for all activities a rule counted, citing the most recent one as
    evidence (and its ledger lines, see the module docstring)."""
    if len(hits) == 1 and matcher.window is None:
        return _one_activity(matcher, hits[0], ledger)
    total, hits, counted, capped, windows_capped, dropped = _tally(matcher, hits, ledger)
    latest_age, latest = hits[0]
    evidence = activity_evidence(latest.attributes) if latest.attributes else ""
    day = latest.occurred_at.date().isoformat()
    decay = matcher.decay
    if counted == 1:
        detail = f"{matcher.activity_text}{evidence} {day}"
        factor = decay(latest_age) if decay else 1.0
        if factor < 0.995:
            detail += f", {matcher.points_text} decayed x{factor:.2f}"
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
    return Reason(matcher.rule_id, total, detail, latest.occurred_at)


def rule_points(matcher: ActivityMatcher, hits: list[Hit],
                ledger: list[LedgerEntry]) -> float:
    """What `rule_reason` would give, without writing the Reason: for named scores."""
    if len(hits) == 1 and matcher.window is None:
        return _one(matcher, hits[0], ledger)[0]
    return _tally(matcher, hits, ledger)[0]


def _tally(matcher: ActivityMatcher, hits: list[Hit],
           ledger: list[LedgerEntry] | None) -> Tally:
    hits.sort(key=_recency)
    dropped = 0
    if matcher.max_count is not None and len(hits) > matcher.max_count:
        dropped = len(hits) - matcher.max_count
        hits = hits[:matcher.max_count]
    base, decay = matcher.points, matcher.decay
    factors = [decay(age) for age, _ in hits] if decay else None
    values = [base * factor for factor in factors] if factors else [base] * len(hits)
    windows_capped, cap = 0, matcher.max_points
    units: list[Unit] = []
    if matcher.window is not None:
        units, windows_capped = _windowed(matcher, hits, values)
    elif cap is not None:
        units = [(value, 1, value) for value in values]
    crossed: tuple[float, float] | None = None  # (unit value, what max_points left of it)
    if cap is None:
        parts = values if matcher.window is None else [value for value, _, _ in units]
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
        _rule_ledger(ledger, matcher, hits, values, factors, units, len(parts), crossed)
    return total, hits, counted, capped, windows_capped, dropped


def _recency(hit: Hit) -> tuple[float, str, str]:
    return hit[0], hit[1].source, hit[1].source_id


def _windowed(matcher: ActivityMatcher, hits: list[Hit],
              values: list[float]) -> tuple[list[Unit], int]:
    """Group recency-sorted hits by fixed window and cap each window's total. Returns one
    Unit per window, newest first, and how many windows hit the cap. Sorted by recency,
    the hits of one window are next to each other."""
    assert matcher.window is not None and matcher.window_points is not None
    window, cap = matcher.window, matcher.window_points
    units: list[Unit] = []
    capped = 0
    current: int | None = None
    group: list[float] = []
    for (_, activity), value in zip(hits, values, strict=True):
        slot = math.floor((activity.occurred_at.timestamp() - WINDOW_ORIGIN) / window)
        if slot != current and group:
            units.append(_window_unit(group, cap))
            capped += units[-1][0] != units[-1][2]
            group = []
        current = slot
        group.append(value)
    units.append(_window_unit(group, cap))
    capped += units[-1][0] != units[-1][2]
    return units, capped


def _window_unit(values: list[float], cap: float) -> Unit:
    raw = math.fsum(values)
    return (math.copysign(cap, raw) if abs(raw) > cap else raw), len(values), raw


def _rule_ledger(ledger: list[LedgerEntry], matcher: ActivityMatcher, hits: list[Hit],
                 values: list[float], factors: list[float] | None, units: list[Unit],
                 counted_units: int, crossed: tuple[float, float] | None) -> None:
    """The ledger lines of one rule. Without units every hit counts; with units, the first
    `counted_units` count, the last of them possibly trimmed by max_points (`crossed`)."""
    rule_id = matcher.rule_id
    if not units:  # no caps: every hit counts as it is
        _activity_lines(ledger, matcher, hits, values, factors, 0, len(hits))
        return
    start = 0
    for n, (value, size, raw) in enumerate(units[:counted_units]):
        _activity_lines(ledger, matcher, hits, values, factors, start, start + size)
        start += size
        if value != raw:
            ledger.append(ledger_line(rule_id, value - raw, f"cap: {matcher.window_text}",
                                      None, hits[start - size][1].occurred_at, 1.0))
        if crossed is not None and n == counted_units - 1:
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


def _one(matcher: ActivityMatcher, hit: Hit, ledger: list[LedgerEntry] | None
         ) -> tuple[float, float, str, bool]:
    """One activity: (points after decay and cap, decay factor, evidence, capped)."""
    _, activity = hit
    decay, cap = matcher.decay, matcher.max_points
    factor = decay(hit[0]) if decay is not None else 1.0
    value = matcher.points * factor
    evidence = activity_evidence(activity.attributes) if activity.attributes else ""
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


def _one_activity(matcher: ActivityMatcher, hit: Hit,
                  ledger: list[LedgerEntry] | None = None) -> Reason:
    """`rule_reason` for the most common case, one activity: same result, less work."""
    value, factor, evidence, capped = _one(matcher, hit, ledger)
    at = hit[1].occurred_at
    detail = f"{matcher.activity_text}{evidence} {at.date().isoformat()}"
    if factor < 0.995:
        detail += f", {matcher.points_text} decayed x{factor:.2f}"
    if capped:
        detail += f" (capped at {matcher.max_points:g})"
    return Reason(matcher.rule_id, value, detail, at)


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
