"""Compiled tests of one value: person conditions, points tables, bins, `where` tests.

Each builder runs once per rule when a model is compiled and returns a closure that does
one cheap comparison per call; the closures are pure functions of the value, which is
what lets the fit memo and the `where` memo (plan.py) remember their answers per value.

A condition's closure returns how the value matched (the text a Reason shows) or None; a
valued rule's closure returns (points, how) or None when the rule gives nothing (zero
points write no Reason and no ledger line).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Mapping

from syncer.qualify.conditions import NUMERIC_FIELDS, PersonCondition, ValueRule

#: A compiled condition: how the value matched (for the Reason), or None.
PersonTest = Callable[[object], str | None]
#: A compiled valued rule: (points, how the value earned them), or None for nothing.
Valued = Callable[[object], tuple[float, str] | None]
#: A compiled `where` entry: does this attribute value (None: absent) pass?
AttrTest = Callable[[str | None], bool]
#: (attribute, test) pairs of one `where`, sorted by attribute.
WhereTests = tuple[tuple[str, AttrTest], ...]


def as_number(value: object) -> float | None:
    """The value as a number, or None when it is not one (text that does not parse, a
    boolean, NaN): a property's type is only known when its value arrives."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def as_text(value: object) -> str:
    """How a value compares as text: booleans as true/false, whole numbers without '.0'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def plain(number: float) -> float | int:
    """Whole numbers as ints, so a Reason reads "3 >= 3", not "3.0 >= 3"."""
    return int(number) if number.is_integer() else number


def shown(value: object) -> str:
    """A value as a Reason quotes it: text in quotes, numbers as they are."""
    return repr(value) if isinstance(value, str) else as_text(value)


def person_test(rule: PersonCondition) -> PersonTest:
    """The closure for one condition (negated when the rule says `not`); a missing value
    (None) never passes, except `missing: true`."""
    test = _positive_test(rule)
    if not rule.negate:
        return test

    def negated(v: object) -> str | None:
        if v is None or test(v) is not None:
            return None
        return f"{shown(v)} does not match (not)"
    return negated


def _positive_test(rule: PersonCondition) -> PersonTest:
    if rule.missing is not None and isinstance(rule.missing, bool):
        want_missing = rule.missing
        return lambda v: ("is missing" if v is None else None) if want_missing else (
            None if v is None else "is present")
    if rule.at_least is not None or rule.at_most is not None:
        return _range_test(rule)
    if rule.email_domain_in is not None:
        return _domain_test(rule.email_domain_in)
    if rule.regex is not None:
        pattern, source = re.compile(rule.regex, re.IGNORECASE), rule.regex
        return lambda v: (f"{shown(v)} matches /{source}/"
                          if v is not None and pattern.search(as_text(v)) else None)
    if rule.contains is not None:
        needles = tuple(n.strip().lower() for n in rule.contains)

        def contains(v: object) -> str | None:
            if v is not None:
                text = as_text(v).lower()
                for needle in needles:
                    if needle in text:
                        return f"{shown(v)} contains '{needle}'"
            return None
        return contains
    wanted = [rule.equals] if rule.equals is not None else list(rule.in_ or ())
    if rule.field in NUMERIC_FIELDS:
        numbers = frozenset(w for w in wanted if isinstance(w, int))
        return lambda v: f"{v} is listed" if isinstance(v, int) and v in numbers else None
    return _listed_test(wanted)


def _range_test(rule: PersonCondition) -> PersonTest:
    low = rule.at_least if rule.at_least is not None else -math.inf
    high = rule.at_most if rule.at_most is not None else math.inf
    bounds = (f">= {rule.at_least}" if rule.at_most is None
              else f"<= {rule.at_most}" if rule.at_least is None
              else f"in {rule.at_least}..{rule.at_most}")

    def in_range(v: object) -> str | None:
        number = v if isinstance(v, int) and not isinstance(v, bool) else as_number(v)
        if number is None or not low <= number <= high:
            return None
        return f"{as_text(v)} {bounds}"
    return in_range


def _domain_test(listed: tuple[str, ...]) -> PersonTest:
    domains = frozenset(d.strip().lower().lstrip("@") for d in listed)
    suffixes = tuple("." + d for d in domains)

    def email_domain(v: object) -> str | None:
        if not isinstance(v, str):
            return None
        domain = v.rpartition("@")[2].strip().lower()
        hit = domain in domains or domain.endswith(suffixes)
        return f"domain {domain} is listed" if hit else None
    return email_domain


def _listed_test(wanted: list[str | int | float]) -> PersonTest:
    """equals / in: text ignoring case and spaces; numbers also as numbers ("5" == 5.0)."""
    texts = frozenset(str(w).strip().lower() for w in wanted if isinstance(w, str))
    numbers = frozenset(float(w) for w in wanted if not isinstance(w, str))
    if not numbers:
        return lambda v: (f"{v!r} is listed"
                          if isinstance(v, str) and v.strip().lower() in texts else None)

    def listed(v: object) -> str | None:
        if v is None:
            return None
        if as_text(v).strip().lower() in texts or as_number(v) in numbers:
            return f"{shown(v)} is listed"
        return None
    return listed


def valued_rule(rule: ValueRule) -> Valued:
    """The closure of a valued rule: a table, bins, or a condition with points."""
    if rule.table is not None:
        return _table(rule.table, rule.default, rule.missing)
    if rule.bins is not None:
        missing = rule.missing if not isinstance(rule.missing, bool) else None
        return bins_scorer([(b.below, b.points) for b in rule.bins], missing)
    test, points = person_test(rule), float(rule.points or 0.0)

    def condition(v: object) -> tuple[float, str] | None:
        how = test(v)
        return None if how is None or points == 0.0 else (points, how)
    return condition


def table_key(value: object) -> str:
    """How table keys and values compare: ignoring case, surrounding spaces, and '_'
    against ' ' (HubSpot's PAID_SEARCH is Salesforce's "Paid Search")."""
    return " ".join(as_text(value).replace("_", " ").lower().split())


def _table(table: Mapping[str, float], default: float | None,
           missing: float | bool | None) -> Valued:
    entries = {table_key(key): (float(points), key) for key, points in table.items()}
    otherwise = float(default or 0.0)
    absent = float(missing) if missing is not None and not isinstance(missing, bool) \
        else otherwise

    def lookup(v: object) -> tuple[float, str] | None:
        if v is None:
            return (absent, "is missing") if absent else None
        hit = entries.get(table_key(v))
        if hit is not None:
            return (hit[0], f"{shown(v)} in the table") if hit[0] else None
        return (otherwise, f"{shown(v)} not in the table (default)") if otherwise else None
    return lookup


def bins_scorer(bins: list[tuple[float | None, float]], missing: float | None) -> Valued:
    """Points for a number by ranges: the first bin whose `below` it is under, else the
    last bin; `missing` (default 0) for no value or a value that is not a number."""
    edges = [float(below) for below, _ in bins if below is not None]
    points = [float(p) for _, p in bins]
    absent = float(missing or 0.0)

    def binned(v: object) -> tuple[float, str] | None:
        number = as_number(v)
        if number is None:
            how = "is missing" if v is None else f"{shown(v)} is not a number"
            return (absent, how) if absent else None
        at = bisect.bisect_right(edges, number)
        if not points[at]:
            return None
        if at == len(edges):
            return points[at], f"{as_text(v)} >= {edges[-1]:g}" if edges else as_text(v)
        low = f"{edges[at - 1]:g} <= " if at else ""
        return points[at], f"{low}{as_text(v)} < {edges[at]:g}"
    return binned


def where_tests(where: Mapping[str, object] | None) -> WhereTests:
    """Compile a `where`: a text is "contains" (ignoring case), a condition is tested as
    above on the attribute's value ("" counts as missing)."""
    tests: list[tuple[str, AttrTest]] = []
    for key, wanted in sorted((where or {}).items()):
        if isinstance(wanted, str):
            tests.append((key, _contains(wanted.strip().lower())))
        else:
            assert isinstance(wanted, PersonCondition)
            tests.append((key, _attribute(person_test(wanted))))
    return tuple(tests)


def _contains(needle: str) -> AttrTest:
    return lambda value: value is not None and needle in value.lower()


def _attribute(test: PersonTest) -> AttrTest:
    return lambda value: test(None if value == "" else value) is not None
