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

import hashlib
import itertools
import json
import pathlib
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated

import yaml
from pydantic import Field, StrictInt, ValidationError, model_validator

from syncer.domain.failures import BadInput
from syncer.qualify.conditions import NUMERIC_FIELDS, PERSON_FIELDS, Number, PersonField, Spec
from syncer.qualify.model_problems import EXAMPLE, problem, yaml_problem
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
    Engagement,
    EngagementRule,
    Fit,
    FitRule,
    GradeBand,
    RuleId,
    WindowCap,
)
from syncer.qualify.stage_schema import DisqualifyRule, Lifecycle, Qualification, RecycleRule

__all__ = [
    "ACTIVITY_TYPES", "DEFAULT_HAND_RAISE", "EXAMPLE", "NUMERIC_FIELDS", "PERSON_FIELDS",
    "Band", "DecayStep", "DisqualifyRule", "Engagement", "EngagementRule", "Fit", "FitRule",
    "GradeBand", "Lifecycle", "Model", "ModelError", "NamedEngagement", "NamedFit",
    "NamedScore", "Number", "PersonField", "Qualification", "RecycleRule", "Routing", "RuleId",
    "WindowCap", "load_model", "parse_model",
]



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

    def model_copy(self, *, update: Mapping[str, object] | None = None,
                   deep: bool = False) -> Model:
        """Copies are re-validated so that the cached plan and version match the content."""
        data = self.model_dump(by_alias=True, exclude_none=True)
        data.update(update or {})
        return Model.model_validate(data)

    def __deepcopy__(self, memo: dict[int, object] | None = None) -> Model:
        return self.model_copy()

    def __getstate__(self) -> dict[str, object]:
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
        raise ModelError(source, [yaml_problem(exc)]) from None
    finally:
        loader.dispose()
    return _parse(data, source, node)


def parse_model(data: Mapping[str, object], source: str = "<model>") -> Model:
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
        problems = [problem(err, data, node, Model) for err in exc.errors(include_url=False)]
        raise ModelError(source, problems) from None
