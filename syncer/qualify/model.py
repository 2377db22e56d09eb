"""The qualification model: the rules a revops admin writes in YAML, validated and compiled.

The model is data, not code: `load_model` turns YAML into a frozen `Model`, reporting every
problem at once with the file, the line, the path inside the file and a fix. Building a
`Model` also compiles it into a `Plan` (plan.py: regexes, lower-cased lookups, rules indexed
by activity type, decay as one function) so that scoring a profile does no parsing and
little allocation.

Sections (schema.py validates each; docs/model.md documents them):

- ``fit``: rules with one condition on a person attribute (``group`` makes a ladder, first
  match wins) and grade bands (A-D or any labels).
- ``engagement``: points per activity (``where`` on attributes, ``max_count``,
  ``max_points``, ``max_points_per`` a fixed window), inactivity rules (negative points
  after N days without engagement), decay (``half_life_days`` or ``decay_steps``), and the
  engagement bands a matrix uses.
- ``qualification``: ``mode: total`` (score, fit and engagement thresholds) or ``mode:
  matrix`` (fit grade x engagement band cells), plus hand-raises that make SQL.
- ``lifecycle``: subscriber activities, recycle rules (the only way back down the
  ladder), disqualify rules, whether disqualified is kept.
- ``routing``: routing_model.py (owned with routing.py).
- ``primary_score`` and ``scores``: the name of the score the sections above make (stage
  and owner follow it), and named scores beside it, e.g. one per product line
  (named_schema.py says what each inherits).

Every section forbids unknown keys, so a model written for a newer syncer fails loudly on
an older one instead of being half applied. Rules may read any person field (a mapped CRM
property), score a value by a points ``table`` or numeric ``bins``, and aggregate activities
over a window (``measure``): docs/model-language.md. Later: recycle rules on other
conditions than inactivity.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import pathlib
import typing
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, Field, StrictInt, ValidationError, model_validator

from syncer.domain.failures import BadInput
from syncer.qualify.conditions import NUMERIC_FIELDS, PERSON_FIELDS, Number, PersonField, Spec
from syncer.qualify.named_schema import (
    PRIMARY_SCORE,
    NamedEngagement,
    NamedFit,
    NamedScore,
    ScoreName,
    check_names,
    effective_engagement,
    effective_fit,
)
from syncer.qualify.plan import Plan, compile_plan
from syncer.qualify.routing_model import Routing
from syncer.qualify.schema import (
    ACTIVITY_TYPES,
    DEFAULT_HAND_RAISE,
    Band,
    DecayStep,
    DisqualifyRule,
    Engagement,
    EngagementRule,
    Fit,
    FitRule,
    GradeBand,
    Lifecycle,
    Qualification,
    RecycleRule,
    RuleId,
    WindowCap,
)

__all__ = [
    "ACTIVITY_TYPES", "DEFAULT_HAND_RAISE", "EXAMPLE", "NUMERIC_FIELDS", "PERSON_FIELDS",
    "Band", "DecayStep", "DisqualifyRule", "Engagement", "EngagementRule", "Fit", "FitRule",
    "GradeBand", "Lifecycle", "Model", "ModelError", "NamedEngagement", "NamedFit",
    "NamedScore", "Number", "PersonField", "Qualification", "RecycleRule", "Routing", "RuleId",
    "WindowCap", "load_model", "parse_model",
]

EXAMPLE = "config/model.example.yaml"
#: Lists of rules whose entries an error message names by `id`.
RULE_LISTS = ("rules", "recycle", "disqualify")


class ModelError(BadInput, ValueError):
    """The model file cannot be used. `problems` lists each one; the message holds them all."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        plural = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid qualification model {source} ({len(problems)} {plural}):\n"
                         f"{lines}")


def matrix_cells(cells: tuple[str, ...], grades: list[str], bands: list[str]
                 ) -> list[tuple[str, str]]:
    """Split each cell ("A2") into (fit grade, engagement band); ValueError naming the bad
    cells and every valid one when a cell matches no pair, or two."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    for g, b in itertools.product(grades, bands):
        pairs.setdefault(f"{g}{b}", []).append((g, b))
    ambiguous = sorted(c for c, found in pairs.items() if len(found) > 1 and c in cells)
    if ambiguous:
        raise ValueError(f"qualification.matrix: cell(s) {', '.join(ambiguous)} can be read as "
                         "more than one grade and band. Fix: rename grades or bands so that "
                         "no grade+band spells another")
    unknown = [c for c in cells if c not in pairs]
    if unknown:
        raise ValueError(f"qualification.matrix: unknown cell(s) {', '.join(unknown)}: a cell "
                         "is a fit grade followed by an engagement band. Fix: use cells such "
                         f"as {', '.join(list(pairs)[:12])}")
    return [pairs[c][0] for c in cells]


def _monotone(cells: set[tuple[str, str]], grades: list[str], bands: list[str]) -> None:
    """A better grade or band must never stop a person from qualifying: more engagement or a
    better fit lowering the stage is always a mistake in the matrix."""
    for g, b in sorted(cells):
        gi, bi = grades.index(g), bands.index(b)
        missing = [f"{grades[i]}{b}" for i in range(gi) if (grades[i], b) not in cells]
        missing += [f"{g}{bands[i]}" for i in range(bi) if (g, bands[i]) not in cells]
        if missing:
            raise ValueError(f"qualification.matrix lists {g}{b} but not {', '.join(missing)}: "
                             "a better fit grade or engagement band would qualify less. Fix: "
                             f"add {', '.join(missing)}")


#: (path, default) of settings added after v2 of the model format (see Model.version).
_LATER_DEFAULTS: tuple[tuple[tuple[str, ...], object], ...] = (
    (("primary_score",), PRIMARY_SCORE),
    (("scores",), []),
    (("qualification", "hysteresis"), 0.0),
)


class Model(Spec):
    """A validated, immutable qualification model (see the module docstring for the schema)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    description: str = ""
    fit: Fit
    engagement: Engagement = Engagement()
    qualification: Qualification
    lifecycle: Lifecycle = Lifecycle()
    routing: Routing = Routing()
    #: the name of the score the top-level fit and engagement make (stage and owner follow it)
    primary_score: ScoreName = PRIMARY_SCORE
    #: named scores beside the primary one (named_schema.py)
    scores: tuple[NamedScore, ...] = ()
    #: what `syncer model calibrate` learned this model from (information only: rows,
    #: split, AUC on the held-out part); scoring never reads it
    calibration: dict[str, str | StrictInt | float | bool] | None = None

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
                             if k not in ("plan", "version", "matrix_cells",
                                          "score_sections")}
        return state

    @model_validator(mode="after")
    def _consistent(self) -> Model:
        """Checks that need two sections: windows, the matrix, what counts as engagement."""
        days = self.qualification.hand_raise_days
        if days is not None and days > self.engagement.lookback_days:
            raise ValueError(f"qualification.hand_raise_days ({days:g}) is longer than "
                             f"engagement.lookback_days ({self.engagement.lookback_days:g}). "
                             "Fix: lower hand_raise_days or raise lookback_days")
        if self.qualification.mode == "matrix":
            if self.engagement.bands is None:
                raise ValueError("qualification.mode is matrix but engagement.bands is "
                                 "missing. Fix: add engagement bands best first, e.g. bands: "
                                 "[{band: '1', min: 40}, {band: '2', min: 15}, {band: '3', "
                                 "min: -1000}]")
            self.matrix_cells  # noqa: B018 (validates the cells)
        needs = [f"engagement.rules ({r.id})" for r in self.engagement.rules
                 if r.inactive_days is not None]
        needs += [f"lifecycle.recycle ({r.id})" for r in self.lifecycle.recycle]
        if needs and not self.engagement.engaged():
            raise ValueError(f"{', '.join(needs)} measure time since the last engagement, "
                             "but nothing counts as engagement: no rule gives positive "
                             "points. Fix: add positive engagement rules or list "
                             "engagement.engaged_activities")
        check_names(self.primary_score, self.scores)
        for index, (named, _, engagement) in enumerate(self.score_sections):
            if engagement is None:
                continue
            quiet = [r.id for r in engagement.rules if r.inactive_days is not None]
            if quiet and not engagement.engaged():
                raise ValueError(f"scores[{index}] ({named.name}).engagement.rules "
                                 f"({', '.join(quiet)}) measure time since the last "
                                 "engagement, but nothing counts as engagement for this "
                                 "score. Fix: list its engagement.engaged_activities, or add "
                                 "positive rules")
        # Compile eagerly, after every check: a model that loads is a model that scores.
        self.plan  # noqa: B018
        self.version  # noqa: B018
        return self

    @cached_property
    def matrix_cells(self) -> tuple[tuple[str, str], ...]:
        """The qualifying (fit grade, engagement band) pairs of a matrix model."""
        cells = self.qualification.matrix
        if cells is None or self.engagement.bands is None:
            return ()
        grades = [b.grade for b in self.fit.grades]
        bands = [b.band for b in self.engagement.bands]
        parsed = matrix_cells(cells, grades, bands)
        _monotone(set(parsed), grades, bands)
        return tuple(parsed)

    @cached_property
    def score_sections(self) -> tuple[tuple[NamedScore, Fit | None, Engagement | None], ...]:
        """Each named score with the fit and engagement sections it runs (None: the
        primary's, reused as is; see named_schema.py for what is inherited)."""
        return tuple((named, effective_fit(self.fit, named.fit),
                      effective_engagement(self.engagement, named.engagement))
                     for named in self.scores)

    @cached_property
    def version(self) -> str:
        """`name@hash` of the canonical JSON of the content (defaults filled in, unset
        optional keys left out): the same rules always give the same version. Settings
        added after a model format was published are left out while at their defaults,
        so upgrading syncer does not change the version of a model that does not use
        them (and writing such a default explicitly is the same model)."""
        content = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        for path, default in _LATER_DEFAULTS:
            *parents, key = path
            section = content
            for parent in parents:
                section = section.get(parent, {})
            if section.get(key) == default:
                section.pop(key)
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
    score = _score_name(data, loc)
    if score:
        where += f" (score '{score}')"
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
        if loc[depth - 1] in RULE_LISTS and isinstance(loc[depth], int):
            item: Any = data
            try:
                for part in loc[:depth + 1]:
                    item = item[part]
            except (KeyError, IndexError, TypeError):
                return None
            rule_id = item.get("id") if isinstance(item, dict) else None
            return str(rule_id) if rule_id is not None else None
    return None


def _score_name(data: object, loc: tuple[Any, ...]) -> str | None:
    """The `name` of the named score an error is in (`scores[2]...`)."""
    if len(loc) < 2 or loc[0] != "scores" or not isinstance(loc[1], int):
        return None
    scores = data.get("scores") if isinstance(data, dict) else None
    if not isinstance(scores, list) or not 0 <= loc[1] < len(scores):
        return None
    item = scores[loc[1]]
    name = item.get("name") if isinstance(item, dict) else None
    return str(name) if name is not None else None


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
