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

from syncer.domain import ActivityType, Stage
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
    assert model.engagement.half_life_days == 30
    assert {r.activity for r in model.engagement.rules if r.points < 0} == {
        ActivityType.UNSUBSCRIBE, ActivityType.EMAIL_BOUNCE}
    assert model.plan.assign_at is Stage.MQL


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


def test_unknown_person_field() -> None:
    message = str(problems_of(data(**{"fit.rules.0.field": "seniority"})))
    assert "fit.rules[0].field (rule 'vp')" in message
    assert "'title'" in message and "'employees'" in message
    assert "Fix: use one of the values listed" in message


def test_unknown_key_suggests_the_right_one() -> None:
    raw = data()
    raw["qualification"]["mql_treshold"] = 5
    message = str(problems_of(raw))
    assert "qualification.mql_treshold: is not a known setting" in message
    assert "did you mean `mql_score`?" in message
    assert "hand_raise_days" in message  # the allowed keys are listed


def test_missing_required_key() -> None:
    raw = data()
    del raw["qualification"]["mql_score"]
    message = str(problems_of(raw))
    assert "qualification.mql_score: is required but missing. Fix: add `mql_score:`" in message


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
    ({"contains": None, "min": 5}, "min/max apply only to employees"),
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
        "activity: webinar_attendance", "activity: webinar_attended")
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

    from connectors.sandbox_world import World
    from syncer.domain import Activity, Person, Profile
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
