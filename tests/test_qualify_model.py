"""The model schema: what loads, what is rejected, and whether the error tells an admin
where the problem is and how to fix it."""

from __future__ import annotations

import copy
import pathlib
import pickle
from datetime import UTC
from typing import Any

import pydantic
import pytest

from syncer.domain.types import ActivityType, Stage
from syncer.qualify import Model, ModelError, load_model, parse_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "model.example.yaml"

BASE: dict[str, Any] = {
    "name": "test",
    "fit": {
        "rules": [{"id": "vp", "field": "title", "contains": "vp", "points": 15}],
        "grades": [{"grade": "A", "min": 10}, {"grade": "B", "min": 0}],
    },
    "engagement": {
        "half_life_days": 30,
        "rules": [{"id": "pricing", "activity": "pricing_page_view", "points": 10}],
    },
    "qualification": {"mql_score": 20},
    "routing": {"reps": [{"email": "dana@example.com"}]},
}


def data(**changes: Any) -> dict[str, Any]:
    """BASE with dotted-path changes, e.g. data(**{"qualification.mql_score": "x"})."""
    result = copy.deepcopy(BASE)
    for path, value in changes.items():
        node: Any = result
        parts = [int(p) if p.isdigit() else p for p in path.split(".")]
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return result


def problems_of(raw: dict[str, Any]) -> ModelError:
    with pytest.raises(ModelError) as info:
        parse_model(raw, source="models/test.yaml")
    return info.value


def write(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "model.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- the shipped model


def test_example_model_loads_with_the_sandbox_reps() -> None:
    model = load_model(EXAMPLE)
    assert model.name == "default"
    assert model.version.startswith("default@") and len(model.version) == len("default@") + 12
    emails = [rep.email for rep in model.routing.reps]
    assert len(emails) == 8 and "olga.petrova@syncer-sandbox.test" in emails
    assert sorted(rep.weight for rep in model.routing.reps) == [1, 1, 1, 1, 1, 1, 2, 2]
    assert model.plan.assign_at is Stage.MQL


def test_example_model_uses_the_lifecycle_features_admins_expect() -> None:
    model = load_model(EXAMPLE)
    engagement, lifecycle = model.engagement, model.lifecycle
    assert engagement.decay_steps is not None and engagement.half_life_days is None
    assert [s.factor for s in engagement.decay_steps] == [1.0, 0.7, 0.4, 0.2]
    negatives = {r.activity for r in engagement.rules if r.points is not None and r.points < 0}
    assert negatives == {ActivityType.UNSUBSCRIBE, ActivityType.EMAIL_BOUNCE,
                         ActivityType.PAGE_VIEW, None}  # careers pages; None: inactivity
    assert ActivityType.EMAIL_OPEN not in engagement.engaged()
    assert [(r.from_, r.inactive_days, r.to) for r in lifecycle.recycle] == [
        (("mql",), 90.0, "recycled")]
    competitor = lifecycle.disqualify[0]
    assert competitor.id == "competitor"
    assert competitor.email_domain_in == ("leadscorely.com", "routewise.io")
    assert lifecycle.keep_disqualified is True
    assert ActivityType.NEWSLETTER_SIGNUP in lifecycle.subscriber_activities
    assert model.qualification.mode == "total" and model.qualification.mql_score == 25
    # Useful without firmographics (issue 14): where people came from and how much they
    # read count, as a table and bins.
    assert {r.id: r.valued_kind() for r in model.fit.rules}["lead_source"] == "table"
    kinds = {r.id: r.kind() for r in engagement.rules}
    assert kinds["time_on_site"] == "field" and kinds["frequent_visitor"] == "aggregate"


def test_version_depends_on_content_only() -> None:
    first, second = parse_model(data()), parse_model(copy.deepcopy(BASE))
    assert first.version == second.version
    reordered = dict(reversed(list(BASE.items())))
    assert parse_model(reordered).version == first.version
    # Writing a default explicitly is the same model.
    assert parse_model(data(**{"engagement.lookback_days": 180})).version == first.version
    changed = parse_model(data(**{"qualification.mql_score": 21}))
    assert changed.version != first.version and changed.version.startswith("test@")


def test_same_file_same_version(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, EXAMPLE.read_text(encoding="utf-8"))
    assert load_model(path).version == load_model(EXAMPLE).version


def test_model_is_immutable_and_copies_are_revalidated() -> None:
    model = parse_model(data())
    with pytest.raises(pydantic.ValidationError):
        setattr(model, "name", "other")  # noqa: B010 (frozen: must raise)
    copied = model.model_copy(update={"name": "other"})
    assert copied.version.startswith("other@") and copied.plan is not model.plan
    with pytest.raises(pydantic.ValidationError):
        model.model_copy(update={"name": "bad name"})


def test_model_survives_pickle_and_deepcopy() -> None:
    """Workers in other processes (procrastinate) may receive the model pickled."""
    model = load_model(EXAMPLE)
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert clone == model and clone.version == model.version
        assert [m.rule_id for m in clone.plan.fit] == [m.rule_id for m in model.plan.fit]


def test_contains_accepts_one_text_or_a_list() -> None:
    one = parse_model(data())
    many = parse_model(data(**{"fit.rules.0.contains": ["vp", "vice president"]}))
    assert one.fit.rules[0].contains == ("vp",)
    assert many.fit.rules[0].contains == ("vp", "vice president")


def test_all_operators_are_accepted() -> None:
    rules = [
        {"id": "a", "field": "industry", "equals": "Software", "points": 1},
        {"id": "b", "field": "country", "in": ["US", "UK"], "points": 1},
        {"id": "c", "field": "title", "regex": r"\bvp\b", "points": 1},
        {"id": "d", "field": "employees", "min": 50, "max": 500, "points": 1},
        {"id": "e", "field": "employees", "min": 500, "points": 1},
        {"id": "f", "field": "email", "email_domain_in": ["gmail.com"], "points": -5},
        {"id": "g", "field": "company", "missing": True, "points": -2},
        {"id": "h", "field": "employees", "in": [1, 2], "points": 1},
    ]
    model = parse_model(data(**{"fit.rules": rules}))
    assert [m.rule_id for m in model.plan.fit] == [f"fit.{r['id']}" for r in rules]


# ---------------------------------------------------------------- error messages


def test_unknown_activity_type_lists_valid_ones_and_a_guess() -> None:
    error = problems_of(data(**{"engagement.rules.0.activity": "pricing_view"}))
    message = str(error)
    assert "models/test.yaml" in message
    assert "engagement.rules[0].activity (rule 'pricing')" in message
    assert "unknown activity type 'pricing_view'" in message
    assert "Fix: use one of:" in message and "webinar_attendance" in message
    assert "did you mean 'pricing_page_view'?" in message


def test_bad_threshold_type() -> None:
    message = str(problems_of(data(**{"qualification.mql_score": "high"})))
    assert "models/test.yaml" in message
    assert "qualification.mql_score: input should be a valid number, got 'high'" in message
    assert "Fix: write a plain number without quotes" in message


def test_threshold_rejects_booleans_and_quoted_numbers() -> None:
    assert "qualification.mql_score" in str(problems_of(data(**{"qualification.mql_score": True})))
    assert "qualification.mql_score" in str(problems_of(data(**{"qualification.mql_score": "60"})))


def test_a_field_name_must_be_a_lower_case_name() -> None:
    """Any lower-case name is a field (a mapped CRM property); a column title as written in
    a spreadsheet is refused with the fix."""
    message = str(problems_of(data(**{"fit.rules.0.field": "Job Title"})))
    assert "fit.rules[0].field (rule 'vp')" in message
    assert "Fix: use letters, digits" in message


def test_a_non_standard_field_is_a_property_and_text_rules_on_standard_fields_stay_text() -> None:
    assert parse_model(data(**{"fit.rules.0.field": "seniority"})).fit.rules[0].field == \
        "seniority"
    message = str(problems_of(data(**{"fit.rules.0.field": "title", "fit.rules.0.contains": None,
                                      "fit.rules.0.min": 3})))
    assert "min/max compare numbers; 'title' is text" in message


def test_unknown_key_suggests_the_right_one() -> None:
    raw = data()
    raw["qualification"]["mql_treshold"] = 5
    message = str(problems_of(raw))
    assert "qualification.mql_treshold: is not a known setting" in message
    assert "did you mean `mql_score`?" in message
    assert "hand_raise_days" in message  # the allowed keys are listed


def test_missing_required_key() -> None:
    raw = data()
    del raw["fit"]["grades"]
    message = str(problems_of(raw))
    assert "fit.grades: is required but missing. Fix: add `grades:`" in message


def test_total_mode_needs_mql_score() -> None:
    raw = data()
    del raw["qualification"]["mql_score"]
    message = str(problems_of(raw))
    assert "qualification: `mql_score` is required with `mode: total` (the default)" in message
    assert "Fix: add `mql_score: 30` under qualification, or set `mode: matrix`" in message


def test_every_problem_is_reported_at_once() -> None:
    error = problems_of(data(**{"qualification.mql_score": "x",
                                "engagement.rules.0.activity": "nope",
                                "routing.reps.0.weight": 0}))
    assert len(error.problems) == 3
    assert "(3 problems)" in str(error)
    assert any("routing.reps[0].weight" in p and ">= 1" in p for p in error.problems)


@pytest.mark.parametrize(("rule", "expected"), [
    ({"contains": "vp", "regex": "vp"}, "exactly one condition, found: contains, regex"),
    ({"contains": None}, "exactly one condition, found: none"),
    ({"contains": None, "min": 5}, "min/max compare numbers; 'title' is text"),
    ({"field": "company", "contains": None, "email_domain_in": ["x.com"]},
     "email_domain_in applies only to field 'email'"),
    ({"field": "employees", "contains": "5"}, "`contains` does not apply to the number field"),
    ({"field": "employees", "contains": None, "min": 500, "max": 50}, "min 500 is above max 50"),
    ({"field": "employees", "contains": None, "equals": "big"}, "'employees' is a number"),
    ({"contains": None, "in": ["a", 5]}, "'title' is text"),
    ({"contains": None, "regex": "(vp"}, "regex does not compile"),
    ({"contains": ["vp", ""]}, "every `contains` entry must be non-empty text"),
    ({"contains": None, "missing": "yes"}, "input should be a valid boolean"),
    ({"id": "has space"}, "string should match pattern"),
])
def test_fit_rule_validation(rule: dict[str, Any], expected: str) -> None:
    base = dict(BASE["fit"]["rules"][0], **rule)
    message = str(problems_of(data(**{"fit.rules": [{k: v for k, v in base.items()
                                                      if v is not None}]})))
    assert "fit.rules[0]" in message
    assert expected in message
    assert "Fix:" in message


@pytest.mark.parametrize(("changes", "path", "expected"), [
    ({"fit.grades": [{"grade": "B", "min": 0}, {"grade": "A", "min": 10}]}, "fit",
     "strictly falling"),
    ({"fit.grades": []}, "fit.grades", "must list at least 1 item(s)"),
    ({"fit.rules": [BASE["fit"]["rules"][0]] * 2}, "fit", "duplicate fit rule id: vp"),
    ({"engagement.rules.0.max_count": 0}, "engagement.rules[0].max_count", ">= 1"),
    ({"engagement.rules.0.max_points": -5}, "engagement.rules[0].max_points", "> 0"),
    ({"engagement.half_life_days": 0}, "engagement.half_life_days", "> 0"),
    ({"qualification.hand_raise": ["demo_request", "demo_call"]},
     "qualification.hand_raise", "unknown activity type 'demo_call'"),
    ({"qualification.hand_raise_days": 365}, "(top level)", "longer than"),
    ({"routing.assign_at": "sal"}, "routing.assign_at", "'mql' or 'sql'"),
    ({"routing.reps": [{"email": "a@x.io"}, {"email": "A@x.io"}]}, "routing",
     "duplicate rep email: a@x.io"),
    ({"routing.reps.0.email": "dana"}, "routing.reps[0].email", "full email address"),
    ({"name": "my model"}, "name", "string should match pattern"),
])
def test_section_validation(changes: dict[str, Any], path: str, expected: str) -> None:
    message = str(problems_of(data(**changes)))
    assert f"{path}" in message and expected in message and "Fix:" in message


def test_missing_file_names_the_file_and_the_example(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert str(path) in str(info.value)
    assert "file not found. Fix:" in str(info.value)
    assert "config/model.example.yaml" in str(info.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("name: x\nfit:\n  grades: [{grade: A, min: 0}]\n  rules: - id: a\n",
     "line 4, column 10: not valid YAML (sequence entries are not allowed here)"),
    ("name: x\nfit:\n  grades:\n\t- grade: A\n", ("line 4, column 1: not valid YAML (found "
     "character '\\t' that cannot start any token")),
    ('name: "x\nfit: 1\n', "while scanning a quoted scalar started at line 1"),
])
def test_bad_yaml_gives_the_line(tmp_path: pathlib.Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ModelError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert "Fix: check the indentation (spaces, not tabs)" in message


def test_empty_or_scalar_file_is_rejected(tmp_path: pathlib.Path) -> None:
    for text in ("", "just text\n"):
        with pytest.raises(ModelError, match="must be a YAML mapping"):
            load_model(write(tmp_path, text))


def test_validation_errors_in_a_file_carry_line_numbers(tmp_path: pathlib.Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "activity: webinar_attendance", "activity: webinar_attended", 1)
    lines = text.splitlines()
    line = next(n for n, value in enumerate(lines, 1) if "webinar_attended" in value)
    with pytest.raises(ModelError) as info:
        load_model(write(tmp_path, text))
    (problem,) = info.value.problems
    assert problem.startswith(f"line {line}, engagement.rules[")
    assert "(rule 'webinar_attendance')" in problem
    assert "did you mean 'webinar_attendance'?" in problem
    assert info.value.source == str(tmp_path / "model.yaml")


def test_unknown_key_line_points_at_the_key(tmp_path: pathlib.Path) -> None:
    text = "name: t\nfit:\n  grades: [{grade: A, min: 0}]\nqualification:\n" \
           "  mql_score: 5\n  min_fits: 3\n"
    with pytest.raises(ModelError) as info:
        load_model(write(tmp_path, text))
    (problem,) = info.value.problems
    assert problem.startswith("line 6, qualification.min_fits")
    assert "did you mean `min_fit`?" in problem


def test_model_error_is_a_value_error() -> None:
    assert issubclass(ModelError, ValueError)
    assert isinstance(parse_model(data()), Model)


def test_example_model_qualifies_a_plausible_share_of_the_sandbox_world() -> None:
    """The shipped thresholds are tuned so that 10-25% of the sandbox people become MQL."""
    from datetime import datetime

    from connectors.sandbox.world import World
    from syncer.domain.types import Activity, Person, Profile
    from syncer.qualify import qualify

    now = datetime(2026, 10, 5, 12, tzinfo=UTC)
    model = load_model(EXAMPLE)
    stages = []
    for p in World(1, 2000, now).people():
        record = Person("hubspot", str(p.index), "contact", p.email, p.first_name,
                        p.last_name, p.title, p.company, p.industry, p.employees, p.country)
        activities = tuple(Activity(a.channel, f"{p.index}-{n}", str(p.index), a.type,
                                    a.occurred_at, a.detail)
                           for n, a in enumerate(p.activities))
        stages.append(qualify(Profile(p.email, (record,), activities), model, now).stage)
    mql_share = stages.count(Stage.MQL) / len(stages)
    assert 0.10 <= mql_share <= 0.25
    assert 0.01 <= stages.count(Stage.SQL) / len(stages) <= 0.10


# ---------------------------------------------------------------- later features: errors

INACTIVE = {"id": "quiet", "inactive_days": 60, "points": -5}
BANDS = [{"band": "1", "min": 20}, {"band": "2", "min": 5}, {"band": "3", "min": -100}]


def matrix(cells: list[Any], bands: list[dict[str, Any]] | None = None,
           **qualification: Any) -> dict[str, Any]:
    raw = data(**{"qualification": {"mode": "matrix", "matrix": cells, **qualification}})
    raw["engagement"]["bands"] = BANDS if bands is None else bands
    return raw


@pytest.mark.parametrize(("changes", "path", "expected"), [
    # engagement rules: activity or inactivity, and what goes with each
    ({"engagement.rules.0.activity": None}, "engagement.rules[0] (rule 'pricing')",
     "needs exactly one of `activity` (points per activity), `inactive_days`"),
    ({"engagement.rules.0.inactive_days": 30}, "engagement.rules[0]",
     "needs exactly one of `activity`"),
    ({"engagement.rules": [dict(INACTIVE, points=5)]}, "engagement.rules[0] (rule 'quiet')",
     "an inactivity rule must give negative points, got 5. Fix: write e.g. `points: -10`"),
    ({"engagement.rules": [dict(INACTIVE, max_points=5, where={"url": "x"})]},
     "engagement.rules[0]", "where, max_points do not apply to an inactivity rule"),
    ({"engagement.rules": [dict(INACTIVE), {"id": "x", "activity": "email_open",
                                            "points": -1}]},
     "(top level)", "engagement.rules (quiet) measure time since the last engagement, but "
     "nothing counts as engagement"),
    ({"engagement.rules.0.inactive_days": 0, "engagement.rules.0.activity": None},
     "engagement.rules[0].inactive_days", "> 0"),
    # caps
    ({"engagement.rules.0.max_count": 2,
      "engagement.rules.0.max_points_per": {"days": 7, "points": 10}},
     "engagement.rules[0]", "use `max_count` or `max_points_per`, not both"),
    ({"engagement.rules.0.max_points_per": {"days": 0, "points": 10}},
     "engagement.rules[0].max_points_per.days", "> 0"),
    ({"engagement.rules.0.max_points_per": {"days": 7}},
     "engagement.rules[0].max_points_per.points", "is required but missing"),
    ({"engagement.rules.0.max_points_per": {"days": 7, "points": 3, "weeks": 1}},
     "engagement.rules[0].max_points_per.weeks", "remove it or use one of: days, points"),
    # decay
    ({"engagement.decay_steps": [{"max_age_days": 7, "factor": 1}]}, "engagement",
     "give `half_life_days` or `decay_steps`, not both"),
    ({"engagement.half_life_days": None,
      "engagement.decay_steps": [{"max_age_days": 30, "factor": 1},
                                 {"max_age_days": 7, "factor": 0.5}]},
     "engagement", "decay_steps must have strictly rising max_age_days (got [30.0, 7.0])"),
    ({"engagement.half_life_days": None,
      "engagement.decay_steps": [{"max_age_days": 7, "factor": 0.5},
                                 {"max_age_days": 30, "factor": 0.8}]},
     "engagement", "decay_steps factors must not rise with age (got [0.5, 0.8])"),
    ({"engagement.half_life_days": None,
      "engagement.decay_steps": [{"max_age_days": 7, "factor": 1.5}]},
     "engagement.decay_steps[0].factor", "<= 1"),
    ({"engagement.half_life_days": None, "engagement.decay_steps": []},
     "engagement.decay_steps", "must list at least 1 item(s)"),
    # what counts as engagement, bands
    ({"engagement.engaged_activities": ["page_view", "web_visit"]},
     "engagement.engaged_activities", "unknown activity type 'web_visit'"),
    ({"engagement.bands": [{"band": "1", "min": 0}, {"band": "2", "min": 5}]},
     "engagement", "engagement bands must be listed from best to worst"),
    ({"engagement.bands": [{"band": "1", "min": 5}, {"band": "1", "min": 0}]},
     "engagement", "duplicate engagement band: 1"),
    # qualification modes
    ({"qualification.mode": "points"}, "qualification.mode", "'total' or 'matrix'"),
    ({"qualification.matrix": ["A1"]}, "qualification",
     "`matrix` is only used with `mode: matrix`"),
    ({"qualification": {"mode": "matrix", "matrix": ["A1"], "mql_score": 5, "min_fit": 1}},
     "qualification", "mql_score, min_fit not used with `mode: matrix`"),
    ({"qualification": {"mode": "matrix"}}, "qualification",
     "`mode: matrix` needs `matrix`: the cells that qualify"),
    ({"qualification": {"mode": "matrix", "matrix": ["A1"]}}, "(top level)",
     "qualification.mode is matrix but engagement.bands is missing"),
    # lifecycle
    ({"lifecycle": {"subscriber_activities": ["newsletter"]}},
     "lifecycle.subscriber_activities", "did you mean 'newsletter_signup'?"),
    ({"lifecycle": {"recycle": [{"id": "r", "from": ["mql"], "inactive_days": 90,
                                 "to": "mql"}]}}, "lifecycle.recycle[0].to (rule 'r')",
     "input should be 'subscriber', 'lead' or 'recycled'"),
    ({"lifecycle": {"recycle": [{"id": "r", "from": ["sql"], "inactive_days": 90,
                                 "to": "lead"}]}}, "lifecycle.recycle[0].from[0] (rule 'r')",
     "input should be 'lead', 'recycled' or 'mql'"),
    ({"lifecycle": {"recycle": [{"id": "r", "from": ["lead", "mql"], "inactive_days": 90,
                                 "to": "recycled"}]}}, "lifecycle.recycle[0] (rule 'r')",
     "`to: recycled` is not earlier in the funnel than lead"),
    ({"lifecycle": {"recycle": [{"id": "r", "from": [], "inactive_days": 90,
                                 "to": "lead"}]}}, "lifecycle.recycle[0].from",
     "must list at least 1 item(s)"),
    ({"lifecycle": {"recycle": [{"id": "r", "from": ["mql"], "inactive_days": -1,
                                 "to": "lead"}]}}, "lifecycle.recycle[0].inactive_days", "> 0"),
    ({"lifecycle": {"recycle": [{"id": "r", "from": ["mql"], "inactive_days": 9,
                                 "to": "lead"}] * 2}}, "lifecycle", "duplicate recycle rule id: r"),
    ({"lifecycle": {"recycle": [{"id": "r", "form": ["mql"], "inactive_days": 9,
                                 "to": "lead"}]}}, "lifecycle.recycle[0].form",
     "did you mean `from`?"),
    ({"lifecycle": {"disqualify": [{"id": "d"}]}}, "lifecycle.disqualify[0] (rule 'd')",
     "a disqualify rule needs exactly one of `field` (with one condition, as in fit rules) "
     "or `activity`"),
    ({"lifecycle": {"disqualify": [{"id": "d", "field": "email", "activity": "email_bounce",
                                    "email_domain_in": ["x.io"]}]}}, "lifecycle.disqualify[0]",
     "needs exactly one of `field`"),
    ({"lifecycle": {"disqualify": [{"id": "d", "activity": "email_bounce", "missing": True}]}},
     "lifecycle.disqualify[0]", "an activity disqualify rule takes no person condition"),
    ({"lifecycle": {"disqualify": [{"id": "d", "field": "email", "where": {"a": "b"},
                                    "email_domain_in": ["x.io"]}]}},
     "lifecycle.disqualify[0]", "`where` applies only with `activity`"),
    ({"lifecycle": {"disqualify": [{"id": "d", "field": "title"}]}}, "lifecycle.disqualify[0]",
     "a disqualify rule needs exactly one condition, found: none"),
    ({"lifecycle": {"disqualify": [{"id": "d", "field": "company",
                                    "email_domain_in": ["x.io"]}]}}, "lifecycle.disqualify[0]",
     "email_domain_in applies only to field 'email'"),
    ({"lifecycle": {"disqualify": [{"id": "d", "activity": "bounce"}]}},
     "lifecycle.disqualify[0].activity (rule 'd')", "unknown activity type 'bounce'"),
    ({"lifecycle": {"disqualify": [{"id": "d", "activity": "email_bounce"}] * 2}},
     "lifecycle", "duplicate disqualify rule id: d"),
    ({"lifecycle": {"keep_disqualified": "yes"}}, "lifecycle.keep_disqualified",
     "write true or false"),
])
def test_later_feature_validation(changes: dict[str, Any], path: str, expected: str) -> None:
    raw = data(**{k: v for k, v in changes.items() if v is not None})
    for key, value in changes.items():
        if value is None:  # None means: remove the key
            node: Any = raw
            parts = [int(p) if p.isdigit() else p for p in key.split(".")]
            for part in parts[:-1]:
                node = node[part]
            del node[parts[-1]]
    message = str(problems_of(raw))
    assert f"{path}:" in message or f"{path} " in message, message
    assert expected in message, message
    assert "Fix:" in message


@pytest.mark.parametrize(("cells", "bands", "expected"), [
    (["A1", "A4"], None, "qualification.matrix: unknown cell(s) A4: a cell is a fit grade "
     "followed by an engagement band. Fix: use cells such as A1, A2, A3, B1"),
    (["A2"], None, "qualification.matrix lists A2 but not A1: a better fit grade or "
     "engagement band would qualify less. Fix: add A1"),
    (["A1", "B1", "B2"], None, "lists B2 but not A2"),
    (["A11"], [{"band": "1", "min": 9}, {"band": "11", "min": 5}],
     "lists A11 but not A1"),  # cells split on the defined bands: A + 11
])
def test_matrix_cells_are_checked(cells: list[str], bands: list[dict[str, Any]] | None,
                                  expected: str) -> None:
    message = str(problems_of(matrix(cells, bands)))
    assert expected in message and "Fix:" in message


def test_ambiguous_matrix_cells_are_rejected() -> None:
    raw = matrix(["AB1"], bands=[{"band": "B1", "min": 5}, {"band": "1", "min": 0}])
    raw["fit"]["grades"] = [{"grade": "AB", "min": 10}, {"grade": "A", "min": 0}]
    message = str(problems_of(raw))
    assert "cell(s) AB1 can be read as more than one grade and band" in message


def test_matrix_accepts_numbers_and_text_for_bands() -> None:
    model = parse_model(matrix(["A1", "A2", "B1"], bands=[
        {"band": 1, "min": 20}, {"band": 2, "min": 5}, {"band": 3, "min": -100}]))
    assert model.matrix_cells == (("A", "1"), ("A", "2"), ("B", "1"))
    assert model.plan.matrix == frozenset(model.matrix_cells)
    assert model.plan.bands == (("1", 20.0), ("2", 5.0), ("3", -100.0))


def test_later_features_load_and_compile() -> None:
    raw = matrix(["A1", "A2", "B1"])
    raw["engagement"].pop("half_life_days")
    raw["engagement"]["decay_steps"] = [{"max_age_days": 7, "factor": 1},
                                        {"max_age_days": 30, "factor": 0.5}]
    raw["engagement"]["rules"] += [
        {"id": "clicks", "activity": "email_click", "points": 2,
         "max_points_per": {"days": 7, "points": 4}, "max_points": 10},
        dict(INACTIVE)]
    raw["lifecycle"] = {
        "subscriber_activities": ["newsletter_signup", "email_open"],
        "recycle": [{"id": "cold", "from": ["mql"], "inactive_days": 60, "to": "recycled"},
                    {"id": "colder", "from": ["recycled"], "inactive_days": 120, "to": "lead"}],
        "disqualify": [{"id": "rival", "field": "email", "email_domain_in": ["rival.io"]},
                       {"id": "bounced", "activity": "email_bounce",
                        "where": {"reason": "hard"}}],
        "keep_disqualified": False}
    model = parse_model(raw)
    plan = model.plan
    assert [m.rule_id for m in plan.inactivity] == ["engagement.quiet"]
    assert [(m.rule_id, m.target) for m in plan.recycle] == [
        ("lifecycle.recycle.cold", Stage.RECYCLED), ("lifecycle.recycle.colder", Stage.LEAD)]
    assert plan.disqualify_fields == ("email",)
    assert plan.disqualify_activities == {ActivityType.EMAIL_BOUNCE}
    assert plan.engaged == {ActivityType.PRICING_PAGE_VIEW, ActivityType.EMAIL_CLICK}
    assert plan.tracks_engagement and plan.keep_disqualified is False
    clicks = next(m for m in plan.engagement if m.rule_id == "engagement.clicks")
    assert clicks.window == 7 * 86_400 and clicks.window_points == 4
    assert clicks.horizon == 30 * 86_400  # beyond the last step positive points stop
    # Defaults written out give the same version; a lifecycle change gives another.
    again = parse_model({**raw, "lifecycle": {**raw["lifecycle"]}})
    assert again.version == model.version
    changed = dict(raw, lifecycle=dict(raw["lifecycle"], keep_disqualified=True))
    assert parse_model(changed).version != model.version


def test_lifecycle_rule_errors_in_a_file_name_the_rule_and_line(tmp_path: pathlib.Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("      to: recycled",
                                                       "      to: nurture")
    line = next(n for n, value in enumerate(text.splitlines(), 1) if "to: nurture" in value)
    with pytest.raises(ModelError) as info:
        load_model(write(tmp_path, text))
    (problem,) = info.value.problems
    assert problem.startswith(f"line {line}, lifecycle.recycle[0].to (rule 'stale_mql'): ")
    assert "input should be 'subscriber', 'lead' or 'recycled', got 'nurture'" in problem
    assert "Fix: use one of the values listed" in problem


def test_stage_ranks_keep_the_funnel_order() -> None:
    ladder = [Stage.SUBSCRIBER, Stage.LEAD, Stage.MQL, Stage.SAL, Stage.SQL,
              Stage.OPPORTUNITY, Stage.CUSTOMER]
    assert [s.rank for s in ladder] == sorted(s.rank for s in ladder)
    assert Stage.DISQUALIFIED.rank < Stage.SUBSCRIBER.rank
    assert Stage.LEAD.rank < Stage.RECYCLED.rank < Stage.MQL.rank


@pytest.mark.parametrize(("changes", "path", "expected"), [
    ({"fit.grades": [{"grade": "A", "min": 10}, {"grade": "A", "min": 0}]}, "fit",
     "duplicate grade: A"),
    ({"engagement.rules": [BASE["engagement"]["rules"][0]] * 2}, "engagement",
     "duplicate engagement rule id: pricing"),
    ({"fit": [1, 2]}, "fit", "must be a mapping (key: value lines), got list"),
    ({"engagement.rules": "pricing"}, "engagement.rules", "must be a list, got 'pricing'"),
    ({"engagement.rules.0.where": {"url": ""}}, "engagement.rules[0].where.url",
     "string should have at least 1 character"),
    ({"fit.grades.0.grade": "EXCELLENT!"}, "fit.grades[0].grade",
     "string should have at most 8 characters"),
])
def test_shape_errors_name_the_path_and_a_fix(changes: dict[str, Any], path: str,
                                              expected: str) -> None:
    message = str(problems_of(data(**changes)))
    assert f"{path}" in message and expected in message and "Fix:" in message


def test_a_file_that_is_not_text_is_reported(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_bytes(b"name: \xff\xfe\x00binary")
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert "cannot read the file (UnicodeDecodeError). Fix: make it a readable UTF-8 text " \
           "file" in str(info.value)
