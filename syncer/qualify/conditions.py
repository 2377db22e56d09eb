"""Conditions and valued rules: the parts of the model language that look at one value.

A *condition* (PersonCondition) tests one value with exactly one operator: a person field
in a fit or disqualify rule, an activity attribute in a `where`, or a number an
aggregate computed. A *valued rule* (ValueRule) turns one value into points in one of
three ways: a condition with `points`, a points `table` (value -> points, with a default
and points for a missing value) or `bins` (ranges of a number). Fit rules, person rules
in engagement and aggregates are valued rules; docs/model-language.md documents them.

The field a rule names is any lower-case name: the standard person attributes
(STANDARD_FIELDS) are typed (employees is a number, the rest text) and checked as such;
any other name is a mapped property (a CRM field, a history column) whose type is only
known when a value arrives, so numbers are parsed where a rule compares numbers.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated

from pydantic import BaseModel as _Base
from pydantic import ConfigDict, Field, StrictBool, StrictInt, field_validator

PERSON_FIELDS: tuple[str, ...] = (
    "title", "company", "industry", "employees", "country", "email", "first_name", "last_name",
)
#: The standard person attributes (domain.Person's own fields).
STANDARD_FIELDS: frozenset[str] = frozenset(PERSON_FIELDS)
NUMERIC_FIELDS: frozenset[str] = frozenset({"employees"})
#: Standard fields that hold text: numeric operators (min/max, bins) make no sense on them.
TEXT_FIELDS: frozenset[str] = STANDARD_FIELDS - NUMERIC_FIELDS

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
#: A number as written: an int stays an int, so models written before floats were
#: accepted keep their canonical form (and their version).
Amount = StrictInt | Number
FieldName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
PersonField = FieldName


class Spec(_Base):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _scalar(value: object) -> object:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
        raise ValueError(f"must be text or a number, got {value!r}. Fix: write one value; "
                         "for several use `in: [a, b]`")
    return value


class PersonCondition(Spec):
    """One condition on one value: exactly one operator, optionally negated by `not`.

    Text comparisons ignore case and surrounding spaces; `regex` is searched (not
    anchored) ignoring case; `min`/`max` are inclusive and read the value as a number;
    `email_domain_in` also matches subdomains. A condition on a missing value never
    holds, negated or not, except `missing: true`.
    """

    field: FieldName | None = None
    equals: str | StrictInt | Number | None = None
    in_: tuple[str | StrictInt | Number, ...] | None = Field(default=None, alias="in",
                                                             min_length=1)
    contains: tuple[str, ...] | None = Field(default=None, min_length=1)
    regex: str | None = None
    at_least: Amount | None = Field(default=None, alias="min")
    at_most: Amount | None = Field(default=None, alias="max")
    email_domain_in: tuple[str, ...] | None = Field(default=None, min_length=1)
    missing: StrictBool | None = None
    negate: StrictBool | None = Field(default=None, alias="not")

    @field_validator("equals", mode="before")
    @classmethod
    def _one(cls, value: object) -> object:
        return _scalar(value)

    @field_validator("in_", mode="before")
    @classmethod
    def _scalars(cls, value: object) -> object:
        if isinstance(value, list):
            for item in value:
                _scalar(item)
        return value

    @field_validator("contains", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list) and any(not isinstance(i, str) or not i.strip()
                                           for i in items):
            raise ValueError("every `contains` entry must be non-empty text. Fix: quote "
                             "numbers and remove empty entries")
        return items

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}. Fix: check brackets and "
                                 "escape special characters such as '.' as '\\.'") from None
        return value

    def operators(self) -> list[str]:
        missing = self.missing if isinstance(self.missing, bool) else None
        return [name for name, value in (
            ("equals", self.equals), ("in", self.in_), ("contains", self.contains),
            ("regex", self.regex), ("min/max", self.at_least if self.at_least is not None
                                    else self.at_most),
            ("email_domain_in", self.email_domain_in), ("missing", missing),
        ) if value is not None]

    def check_condition(self, what: str, field: str | None = None) -> None:
        """Exactly one operator, and one that fits the field's type (`field` None: an
        activity attribute or a computed number, whose type is known only at run time)."""
        present = self.operators()
        if len(present) != 1:
            found = ", ".join(present) if present else "none"
            raise ValueError(f"{what} needs exactly one condition, found: {found}. Fix: "
                             "use one of equals, in, contains, regex, min/max, "
                             "email_domain_in, missing (split it into several rules)")
        operator = present[0]
        if operator == "missing" and self.negate is not None:
            raise ValueError("`not` does not combine with `missing`. Fix: write "
                             "`missing: false` for 'is present'")
        values = [self.equals] if self.equals is not None else list(self.in_ or ())
        if field in NUMERIC_FIELDS:
            if operator in ("contains", "regex", "email_domain_in"):
                raise ValueError(f"`{operator}` does not apply to the number field "
                                 f"'{field}'. Fix: use min/max, equals, in or missing")
            if any(not isinstance(v, int) for v in values):
                raise ValueError(f"'{field}' is a number. Fix: compare with whole numbers")
        if field in TEXT_FIELDS:
            if any(not isinstance(v, str) for v in values):
                raise ValueError(f"'{field}' is text. Fix: quote the values")
            if operator == "min/max":
                raise ValueError(f"min/max compare numbers; '{field}' is text. Fix: use "
                                 "equals, in, contains or regex")
        if operator == "email_domain_in" and field != "email":
            raise ValueError("email_domain_in applies only to field 'email'. Fix: set "
                             "`field: email`")
        if (self.at_least is not None and self.at_most is not None
                and self.at_least > self.at_most):
            raise ValueError(f"min {self.at_least} is above max {self.at_most}. Fix: swap them")


class Bin(Spec):
    """One range of a number: values below `below` (and from the previous bin's `below`
    up) get `points`; the last bin has no `below` and takes everything above."""

    below: Amount | None = None
    points: Amount


class Evidence(Spec):
    """What stands behind a table entry or bin: people with that value and how many of
    them converted (written by `syncer model calibrate`; scoring ignores it)."""

    people: int = Field(ge=0, strict=True)
    converted: int = Field(ge=0, strict=True)


class ValueRule(PersonCondition):
    """A rule that turns one value into points: a condition with `points`, a `table`
    (value -> points; `default` for values not listed, `missing` for no value) or `bins`
    (`missing` for no value or not a number). In a table or bins rule `missing` is points;
    in a condition it is the operator `missing: true/false`."""

    points: Number | None = None
    table: dict[str, Amount] | None = Field(default=None, min_length=1)
    default: Amount | None = None
    bins: tuple[Bin, ...] | None = Field(default=None, min_length=1)
    missing: StrictBool | StrictInt | Number | None = None  # type: ignore[assignment]
    evidence: dict[str, Evidence] | None = None

    @field_validator("table", mode="before")
    @classmethod
    def _keys(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        keys: dict[str, object] = {}
        for key, points in value.items():
            if isinstance(key, bool):
                raise ValueError(f"the table key {str(key).lower()} was read by YAML as "
                                 "true/false (YAML turns yes, no, on, off into booleans). "
                                 "Fix: quote it, e.g. 'yes': 5")
            if key is None or not str(key).strip():
                raise ValueError("a table key is empty. Fix: write the value it stands for; "
                                 "points for no value go in `missing:`")
            keys[str(key)] = points
        lowered = [" ".join(k.replace("_", " ").lower().split()) for k in keys]
        twice = sorted({k for k in lowered if lowered.count(k) > 1})
        if twice:
            raise ValueError(f"table keys differ only in case, spaces or '_': "
                             f"{', '.join(twice)}. Fix: keep one of each (keys compare "
                             "ignoring case, and '_' as a space)")
        return keys

    def valued_kind(self) -> str:
        """"table", "bins" or "condition"."""
        return "table" if self.table is not None else "bins" if self.bins is not None \
            else "condition"

    def check_rule(self, what: str, field: str | None) -> None:
        """The rule is exactly one of condition + points, table, or bins."""
        kind = self.valued_kind()
        if kind == "condition":
            if self.missing is not None and not isinstance(self.missing, bool):
                raise ValueError(f"`missing: {self.missing:g}` gives points only in a "
                                 "`table` or `bins` rule; in a condition it is the operator "
                                 "`missing: true/false`. Fix: use a table, or true/false")
            if self.default is not None:
                raise ValueError("`default` belongs to a `table`. Fix: remove it")
            if self.points is None:
                raise ValueError(f"{what} needs `points` (or a `table` / `bins` that give "
                                 "their own). Fix: add e.g. `points: 10`")
            self.check_condition(what, field)
            return
        if self.table is not None and self.bins is not None:
            raise ValueError(f"{what} has both `table` and `bins`. Fix: keep one")
        extra = self.operators() + (["points"] if self.points is not None else [])
        if self.negate is not None:
            extra.append("not")
        if extra:
            raise ValueError(f"a `{kind}` gives its own points; {', '.join(extra)} do not "
                             f"apply. Fix: remove them, or split the rule")
        if isinstance(self.missing, bool):
            raise ValueError(f"in a `{kind}`, `missing` is the points for no value, got "
                             f"{str(self.missing).lower()}. Fix: write a number, e.g. "
                             "`missing: -5`")
        if self.bins is not None:
            if self.default is not None:
                raise ValueError("`default` belongs to a `table`; in `bins` the last bin "
                                 "(without `below`) takes every larger value. Fix: remove it")
            if field in TEXT_FIELDS:
                raise ValueError(f"bins score a number; '{field}' is text. Fix: use a "
                                 "`table`, or a field that holds a number")
            check_bins(self.bins)


def check_bins(bins: tuple[Bin, ...]) -> None:
    """Every bin but the last has `below`, rising; the last has none."""
    edges = [b.below for b in bins]
    if edges[-1] is not None:
        raise ValueError(f"the last bin must have no `below` (it takes every value from "
                         f"{edges[-1]:g} up). Fix: add a last bin such as `{{points: 0}}`")
    if any(e is None for e in edges[:-1]):
        raise ValueError("only the last bin may leave out `below`. Fix: give every other "
                         "bin its upper edge")
    rising = [float(e) for e in edges[:-1] if e is not None]
    if any(a >= b for a, b in itertools.pairwise(rising)):
        raise ValueError(f"bins must be listed with strictly rising `below` (got {rising}). "
                         "Fix: order them from the smallest values up")
