"""The qualification model: the rules a revops admin writes in YAML, validated and compiled.

The model is data, not code: `load_model` turns YAML into a frozen `Model`, reporting every
problem at once with the file, the line, the path inside the file and a fix. Building a
`Model` also compiles it into a `Plan` (regexes, lower-cased lookups, rules indexed by
activity type) so that scoring a profile does no parsing and little allocation.

Schema v1 and where later features go (every section forbids unknown keys, so a model
written for a newer syncer fails loudly on an older one instead of being half applied):

- ``fit.rules``: one condition per rule on a person attribute; ``group`` makes a ladder
  (first match wins). Later: lookup tables (``table:``) as one more operator.
- ``engagement.rules``: points per activity, recency decay, caps per rule. Later: stepwise
  decay (``engagement.decay.steps``, next to ``half_life_days``) and caps per time window
  (``max_points_per: {days: 30, points: 20}``) are new optional keys of a rule.
- ``qualification``: one MQL threshold plus hand-raise stages. Later: a fit x engagement
  ``matrix`` replaces the single threshold when present.
- ``lifecycle`` (not yet a section): v1 only enforces "never backwards"; recycle rules
  (MQL with no engagement for N days goes back to nurture) will live there.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import pathlib
import re
import typing
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from syncer.domain import ActivityType
from syncer.qualify.routing_model import Routing
from syncer.qualify.scoring import Plan, compile_plan

PERSON_FIELDS: tuple[str, ...] = (
    "title", "company", "industry", "employees", "country", "email", "first_name", "last_name",
)
NUMERIC_FIELDS: frozenset[str] = frozenset({"employees"})  # scoring.py assumes this set
ACTIVITY_TYPES: tuple[str, ...] = tuple(t.value for t in ActivityType)
DEFAULT_HAND_RAISE: tuple[ActivityType, ...] = (
    ActivityType.DEMO_REQUEST, ActivityType.CONTACT_SALES, ActivityType.PRICING_REQUEST,
)
EXAMPLE = "config/model.example.yaml"

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=64)]
PersonField = Literal[
    "title", "company", "industry", "employees", "country", "email", "first_name", "last_name"
]


class ModelError(ValueError):
    """The model file cannot be used. `problems` lists each one; the message holds them all."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        plural = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid qualification model {source} ({len(problems)} {plural}):\n"
                         f"{lines}")


def _activity_type(value: object) -> ActivityType:
    """Validate one activity type name, naming the valid ones (and the likely one) if wrong."""
    if isinstance(value, ActivityType):
        return value
    if isinstance(value, str) and value in ACTIVITY_TYPES:
        return ActivityType(value)
    guess = difflib.get_close_matches(str(value), ACTIVITY_TYPES, n=1)
    hint = f" (did you mean '{guess[0]}'?)" if guess else ""
    raise ValueError(f"unknown activity type {value!r}. Fix: use one of: "
                     f"{', '.join(ACTIVITY_TYPES)}{hint}")


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FitRule(_Spec):
    """Points for who the person is. Exactly one condition operator per rule.

    Text comparisons ignore case and surrounding spaces; `regex` is searched (not
    anchored) ignoring case; `min`/`max` are inclusive; `email_domain_in` also matches
    subdomains. A condition on a missing value never fires, except `missing: true`.
    """

    id: RuleId
    field: PersonField
    equals: str | int | None = None
    in_: tuple[str | int, ...] | None = Field(default=None, alias="in", min_length=1)
    contains: tuple[str, ...] | None = Field(default=None, min_length=1)
    regex: str | None = None
    at_least: int | None = Field(default=None, alias="min", strict=True)
    at_most: int | None = Field(default=None, alias="max", strict=True)
    email_domain_in: tuple[str, ...] | None = Field(default=None, min_length=1)
    missing: bool | None = Field(default=None, strict=True)
    points: Number
    group: str | None = None
    description: str = ""

    @field_validator("equals", mode="before")
    @classmethod
    def _scalar(cls, value: object) -> object:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise ValueError(f"must be text or a whole number, got {value!r}. Fix: write "
                             "one value; for several use `in: [a, b]`")
        return value

    @field_validator("in_", mode="before")
    @classmethod
    def _scalars(cls, value: object) -> object:
        if isinstance(value, list):
            for item in value:
                cls._scalar(item)
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

    @model_validator(mode="after")
    def _one_condition(self) -> FitRule:
        present = [name for name, value in (
            ("equals", self.equals), ("in", self.in_), ("contains", self.contains),
            ("regex", self.regex), ("min/max", self.at_least if self.at_least is not None
                                    else self.at_most),
            ("email_domain_in", self.email_domain_in), ("missing", self.missing),
        ) if value is not None]
        if len(present) != 1:
            found = ", ".join(present) if present else "none"
            raise ValueError(f"a fit rule needs exactly one condition, found: {found}. Fix: "
                             "use one of equals, in, contains, regex, min/max, "
                             "email_domain_in, missing (split it into several rules)")
        numeric = self.field in NUMERIC_FIELDS
        values = [self.equals] if self.equals is not None else list(self.in_ or ())
        if numeric and present[0] in ("contains", "regex", "email_domain_in"):
            raise ValueError(f"`{present[0]}` does not apply to the number field "
                             f"'{self.field}'. Fix: use min/max, equals, in or missing")
        if numeric and any(not isinstance(v, int) for v in values):
            raise ValueError(f"'{self.field}' is a number. Fix: compare with whole numbers")
        if not numeric and any(not isinstance(v, str) for v in values):
            raise ValueError(f"'{self.field}' is text. Fix: quote the values")
        if present[0] == "min/max" and not numeric:
            raise ValueError(f"min/max apply only to employees, not '{self.field}'. Fix: "
                             "use equals, in, contains or regex")
        if present[0] == "email_domain_in" and self.field != "email":
            raise ValueError("email_domain_in applies only to field 'email'. Fix: set "
                             "`field: email`")
        if (self.at_least is not None and self.at_most is not None
                and self.at_least > self.at_most):
            raise ValueError(f"min {self.at_least} is above max {self.at_most}. Fix: swap them")
        return self


class GradeBand(_Spec):
    grade: Annotated[str, Field(min_length=1, max_length=8)]
    min: Number


class Fit(_Spec):
    rules: tuple[FitRule, ...] = ()
    grades: tuple[GradeBand, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Fit:
        _unique([r.id for r in self.rules], "fit rule id")
        _unique([b.grade for b in self.grades], "grade")
        mins = [b.min for b in self.grades]
        if any(a <= b for a, b in itertools.pairwise(mins)):
            raise ValueError("grades must be listed from best to worst with strictly falling "
                             f"`min` (got {mins}). Fix: reorder the bands; a fit below the "
                             "last band's min still gets the last grade")
        return self


class EngagementRule(_Spec):
    """Points per activity of one type. Rules are cumulative: an activity matching two
    rules scores in both. `where` requires each attribute to contain the text (ignoring
    case). `max_count` counts only the most recent N; `max_points` caps the rule's total
    (its absolute value for a negative rule)."""

    id: RuleId
    activity: ActivityType
    where: dict[str, Annotated[str, Field(min_length=1)]] | None = None
    points: Number
    max_count: int | None = Field(default=None, ge=1, strict=True)
    max_points: Number | None = Field(default=None, gt=0)
    description: str = ""

    @field_validator("activity", mode="before")
    @classmethod
    def _known_activity(cls, value: object) -> ActivityType:
        return _activity_type(value)


class Engagement(_Spec):
    half_life_days: Number | None = Field(default=None, gt=0)
    lookback_days: Number = Field(default=180.0, gt=0)
    rules: tuple[EngagementRule, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> Engagement:
        _unique([r.id for r in self.rules], "engagement rule id")
        return self


class Qualification(_Spec):
    """MQL needs the score and, when set, a minimum fit and a minimum engagement (so a
    perfect-fit person who never engaged is not marketing-qualified). A hand-raise within
    `hand_raise_days` (default: the engagement lookback) makes the person SQL."""

    mql_score: Number
    min_fit: Number | None = None
    min_engagement: Number | None = None
    hand_raise: tuple[ActivityType, ...] = DEFAULT_HAND_RAISE
    hand_raise_days: Number | None = Field(default=None, gt=0)

    @field_validator("hand_raise", mode="before")
    @classmethod
    def _types(cls, value: object) -> object:
        return [_activity_type(v) for v in value] if isinstance(value, list) else value


def _unique(values: list[str], what: str) -> None:
    seen = sorted({v for v in values if values.count(v) > 1})
    if seen:
        raise ValueError(f"duplicate {what}: {', '.join(seen)}. Fix: make each one unique")


class Model(_Spec):
    """A validated, immutable qualification model (see the module docstring for the schema)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    description: str = ""
    fit: Fit
    engagement: Engagement = Engagement()
    qualification: Qualification
    routing: Routing = Routing()

    def model_post_init(self, context: Any, /) -> None:
        # Compile eagerly: a model that loads is a model that scores.
        self.plan  # noqa: B018
        self.version  # noqa: B018

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Model:
        """Copies are re-validated so that the cached plan and version match the content."""
        data = self.model_dump(by_alias=True, exclude_none=True)
        data.update(update or {})
        return Model.model_validate(data)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Model:
        return self.model_copy()

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle the content only; the compiled plan (closures) is rebuilt on first use."""
        state = super().__getstate__()
        state["__dict__"] = {k: v for k, v in state["__dict__"].items()
                             if k not in ("plan", "version")}
        return state

    @model_validator(mode="after")
    def _windows(self) -> Model:
        days = self.qualification.hand_raise_days
        if days is not None and days > self.engagement.lookback_days:
            raise ValueError(f"qualification.hand_raise_days ({days:g}) is longer than "
                             f"engagement.lookback_days ({self.engagement.lookback_days:g}). "
                             "Fix: lower hand_raise_days or raise lookback_days")
        return self

    @cached_property
    def version(self) -> str:
        """`name@hash` of the canonical JSON of the content (defaults filled in, unset
        optional keys left out): the same rules always give the same version."""
        content = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)
        return f"{self.name}@{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"

    @cached_property
    def plan(self) -> Plan:
        """The compiled form the core runs (cached: plain attribute access after the
        first use, which matters at tens of thousands of profiles per second)."""
        return compile_plan(self)


# ---------------------------------------------------------------- loading and errors


def load_model(path: str | pathlib.Path) -> Model:
    """Read and validate a model file; every problem is reported in one ModelError."""
    source = str(path)
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(source, [(f"file not found. Fix: check the path, or copy {EXAMPLE} "
                                  "there and adapt it")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(source, [(f"cannot read the file ({exc.__class__.__name__}). Fix: "
                                  "make it a readable UTF-8 text file")]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ModelError(source, [_yaml_problem(exc)]) from None
    finally:
        loader.dispose()
    return _parse(data, source, node)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where the YAML broke, what the parser expected, and where the open construct began."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        problem += f" {context}"
        if context_mark is not None and (mark is None or context_mark.line != mark.line):
            problem += f" started at line {context_mark.line + 1}"
    return (f"{where}not valid YAML ({problem}). Fix: check the indentation (spaces, not "
            "tabs), quotes and brackets around that line")


def parse_model(data: dict[str, Any], source: str = "<model>") -> Model:
    """Validate a model given as a dict (as `load_model` does after reading YAML)."""
    return _parse(data, source, None)


def _parse(data: object, source: str, node: yaml.Node | None) -> Model:
    if not isinstance(data, dict):
        raise ModelError(source, [("the model must be a YAML mapping with name, fit, "
                                  f"engagement, qualification and routing. Fix: start "
                                  f"from {EXAMPLE}")])
    try:
        return Model.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err, data, node) for err in exc.errors(include_url=False)]
        raise ModelError(source, problems) from None


def _problem(err: Mapping[str, Any], data: object, node: yaml.Node | None) -> str:
    loc = tuple(err["loc"])
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    line = _line(node, loc)
    where = (f"line {line}, " if line else "") + (path or "(top level)")
    rule_id = _rule_id(data, loc)
    if rule_id:
        where += f" (rule '{rule_id}')"
    message = str(err["msg"]).removeprefix("Value error, ")
    if "Fix:" not in message:
        message = f"{_what(err)}. Fix: {_fix(err, loc)}"
    return f"{where}: {message}"


def _what(err: Mapping[str, Any]) -> str:
    kind, got = err["type"], err.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known setting"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, got {shown}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping (key: value lines), got {shown}"
    if kind == "too_short":
        return f"must list at least {err.get('ctx', {}).get('min_length', 1)} item(s)"
    bound = _bound(err)
    if bound:
        return f"must be {bound}, got {shown}"
    return f"{err['msg'].lower().replace('tuple', 'list')}, got {shown}"


def _fix(err: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    kind = err["type"]
    key = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "missing":
        return f"add `{key}:` here (see {EXAMPLE})"
    if kind == "too_short":
        return f"add an entry (see {EXAMPLE})"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        guess = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
        hint = f"did you mean `{guess[0]}`? " if guess else ""
        return f"{hint}remove it or use one of: {', '.join(allowed)}"
    if kind in ("float_type", "int_type", "int_from_float", "finite_number"):
        return "write a plain number without quotes, e.g. 15"
    if kind == "bool_type":
        return "write true or false"
    if kind in ("tuple_type", "list_type"):
        return "write a YAML list: [a, b] or one '- item' per line"
    if kind == "string_pattern_mismatch" and key == "email":
        return "write a full email address such as dana.whitfield@example.com"
    if kind == "string_pattern_mismatch":
        return ("use letters, digits, '_' or '-' (and '.' in a name), starting with a "
                "letter or digit")
    if kind == "literal_error":
        return "use one of the values listed"
    if _bound(err):
        return f"use a number {_bound(err)}"
    return f"compare with {EXAMPLE}"


def _bound(err: Mapping[str, Any]) -> str:
    """">= 1" for a greater_than_equal error with ge=1, and so on; "" for other errors."""
    ctx = err.get("ctx") or {}
    for key, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if key in ctx and err["type"] in ("greater_than", "greater_than_equal", "less_than",
                                          "less_than_equal"):
            return f"{symbol} {ctx[key]}"
    return ""


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping at `loc` accepts, found by walking the schema classes."""
    cls: Any = Model
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for n, f in cls.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        cls = next((a for a in _flatten(field.annotation)
                    if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if cls is None:
            return []
    return [f.alias or n for n, f in cls.model_fields.items()]


def _flatten(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    return [annotation] if not args else [a for arg in args for a in _flatten(arg)]


def _rule_id(data: object, loc: tuple[Any, ...]) -> str | None:
    """The `id` of the rule an error is in, so the admin can find it by name."""
    for depth in range(len(loc) - 1, 0, -1):
        if loc[depth - 1] == "rules" and isinstance(loc[depth], int):
            item: Any = data
            try:
                for part in loc[:depth + 1]:
                    item = item[part]
            except (KeyError, IndexError, TypeError):
                return None
            rule_id = item.get("id") if isinstance(item, dict) else None
            return str(rule_id) if rule_id is not None else None
    return None


def _line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node on `loc` (for a missing key: its parent)."""
    if node is None:
        return None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1
