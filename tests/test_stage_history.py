"""The stage history and the funnel report read from it: which rows one decision appends
and why (with decisions from the real core), the funnel's figures on a history worked out
by hand, and the store round trip (append, carry on a merge, read back, `syncer report`)
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncer.cli import main
from syncer.domain.types import Activity, ActivityType, Decision, Person, Profile, Stage
from syncer.ops.funnel import Funnel, format_funnel, funnel, funnel_json
from syncer.ops.report import format_report, in_period, overall_speed, speed_to_lead
from syncer.qualify import Model, parse_model, qualify
from syncer.store import stage_history
from syncer.store import tables as t
from syncer.store.repository import Store
from syncer.store.stage_history import StageChange, transitions

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY = "kim@acme.example"
A = ActivityType


# ------------------------------------------------------------ transitions (pure)
def the_model() -> Model:
    return parse_model({
        "name": "history",
        "fit": {"rules": [{"id": "vp_title", "field": "title", "contains": "vp",
                           "points": 20}],
                "grades": [{"grade": "A", "min": 20}, {"grade": "B", "min": -100}]},
        "engagement": {"half_life_days": 30, "rules": [
            {"id": "pricing_page", "activity": "pricing_page_view", "points": 12},
            {"id": "demo_request", "activity": "demo_request", "points": 40}]},
        "qualification": {"mql_score": 30},
        "lifecycle": {
            "recycle": [{"id": "stale_mql", "from": ["mql"], "inactive_days": 90,
                         "to": "recycled"}],
            "disqualify": [{"id": "competitor", "field": "email",
                            "email_domain_in": ["rival.example"]}]},
        "routing": {"reps": [{"email": "dana@x.test"}]},
    })


MODEL = the_model()


def act(kind: ActivityType, at: datetime) -> Activity:
    return Activity(source="hubspot", source_id=f"{kind.value}-{at.isoformat()}",
                    record_id="101", type=kind, occurred_at=at)


def decide(at: datetime, *activities: Activity, current: Stage | None = None,
           email: str = KEY) -> Decision:
    record = Person(source="hubspot", record_id="101", object_type="contact", email=email,
                    title="VP Marketing")
    return qualify(Profile(key=KEY, records=(record,), activities=activities,
                           current_stage=current), MODEL, at)


def only(rows: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(rows) == 1, rows
    return rows[0]


def test_first_decision_is_one_row_from_none_citing_the_threshold() -> None:
    mql = decide(T0, act(A.PRICING_PAGE_VIEW, T0))
    row = only(transitions(None, mql, None, T0, "run1"))
    assert row == {"person_key": KEY, "from_stage": None, "to_stage": "mql", "at": T0,
                   "cause": "scoring", "model_version": MODEL.version, "run_id": "run1",
                   "detail": "stage.mql: score 32 >= 30"}


def test_an_unchanged_stage_appends_nothing_even_when_the_score_moves() -> None:
    first = decide(T0, act(A.PRICING_PAGE_VIEW, T0))
    later = decide(T0 + timedelta(days=1), act(A.PRICING_PAGE_VIEW, T0),
                   act(A.PRICING_PAGE_VIEW, T0 + timedelta(days=1)), current=Stage.MQL)
    assert later.stage is Stage.MQL and later.score != first.score
    assert transitions(first, later, None, T0 + timedelta(days=1), "run2") == []


def test_recycled_then_qualified_again_is_a_second_mql_row() -> None:
    seen = [act(A.PRICING_PAGE_VIEW, T0)]
    first = decide(T0, *seen)
    quiet = T0 + timedelta(days=100)
    recycled = decide(quiet, *seen, current=Stage.MQL)
    back = quiet + timedelta(days=1)
    seen.append(act(A.PRICING_PAGE_VIEW, back))
    again = decide(back, *seen, current=Stage.RECYCLED)
    rows = [*transitions(None, first, None, T0, "r1"),
            *transitions(first, recycled, None, quiet, "r2"),
            *transitions(recycled, again, None, back, "r3")]
    assert [(r["from_stage"], r["to_stage"], r["cause"]) for r in rows] == [
        (None, "mql", "scoring"), ("mql", "recycled", "recycle"),
        ("recycled", "mql", "scoring")]
    assert rows[1]["detail"].startswith(
        "lifecycle.recycle.stale_mql: MQL -> RECYCLED: no engagement for 90+ days")


def test_hand_raise_cause_cites_the_activity() -> None:
    lead = decide(T0)
    assert lead.stage is Stage.LEAD
    sql = decide(T0 + timedelta(days=2), act(A.DEMO_REQUEST, T0 + timedelta(days=1)),
                 current=Stage.LEAD)
    row = only(transitions(lead, sql, None, T0 + timedelta(days=2), "r"))
    assert (row["from_stage"], row["to_stage"], row["cause"], row["detail"]) == (
        "lead", "sql", "hand_raise", "stage.sql: hand-raise: demo_request 2026-06-02")


def test_a_stage_a_rep_set_in_the_crm_is_cause_crm() -> None:
    mql = decide(T0, act(A.PRICING_PAGE_VIEW, T0))
    # The rep accepted the lead in the CRM: the profile's current stage is their SAL.
    sal = decide(T0 + timedelta(hours=3), act(A.PRICING_PAGE_VIEW, T0), current=Stage.SAL)
    row = only(transitions(mql, sal, Stage.SAL, T0 + timedelta(hours=3), "r"))
    assert (row["from_stage"], row["to_stage"], row["cause"], row["detail"]) == (
        "mql", "sal", "crm", "SAL set in the CRM (scoring alone: MQL)")


def test_scoring_gets_the_credit_when_it_reaches_the_crm_stage_on_its_own() -> None:
    lead = decide(T0)
    mql = decide(T0 + timedelta(days=1), act(A.PRICING_PAGE_VIEW, T0), current=Stage.MQL)
    assert only(transitions(lead, mql, Stage.MQL, T0, "r"))["cause"] == "scoring"


def test_disqualify_cause_and_an_explicit_cause() -> None:
    mql = decide(T0, act(A.PRICING_PAGE_VIEW, T0))
    out = decide(T0, act(A.PRICING_PAGE_VIEW, T0), current=Stage.MQL,
                 email="kim@rival.example")
    row = only(transitions(mql, out, None, T0, "r"))
    assert (row["to_stage"], row["cause"]) == ("disqualified", "disqualify")
    assert row["detail"].startswith("lifecycle.disqualify.competitor: disqualified: email")
    # Held at a stage that came from neither scoring nor the CRM (a merge): say so.
    held = decide(T0, act(A.PRICING_PAGE_VIEW, T0), current=Stage.SQL)
    assert only(transitions(mql, held, None, T0, "r"))["cause"] == "lifecycle"
    assert only(transitions(mql, held, None, T0, "r", cause="merge"))["cause"] == "merge"
    with pytest.raises(ValueError, match="timezone-aware"):
        transitions(None, mql, None, T0.replace(tzinfo=None), "r")


# ------------------------------------------------------------ funnel (pure)
def day(month: int, number: int) -> datetime:
    return datetime(2026, month, number, 12, 0, tzinfo=UTC)


SINCE, UNTIL = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
L, M, S, Q = Stage.LEAD, Stage.MQL, Stage.SAL, Stage.SQL
OP, C, R, D = Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.RECYCLED, Stage.DISQUALIFIED
#: person -> [(stage entered, when)]; worked through in test_funnel_figures_by_hand
PATHS: dict[str, list[tuple[Stage, datetime]]] = {
    "a": [(L, day(9, 20)), (M, day(10, 2)), (S, day(10, 4)), (Q, day(10, 8)), (OP, day(10, 20))],
    "b": [(M, day(10, 3)), (R, day(10, 13)), (M, day(10, 20)), (Q, day(10, 22))],
    "c": [(M, day(10, 5)), (D, day(10, 6))],
    "d": [(L, day(10, 1)), (Q, day(10, 10))],
    "e": [(M, day(9, 10)), (S, day(10, 2)), (Q, day(11, 5))],
    "f": [(M, day(10, 30)), (Q, day(11, 2))],
    "g": [(M, day(8, 1)), (R, day(9, 1)), (M, day(10, 10)), (Q, day(10, 12)), (C, day(10, 25))],
}


def history_rows(paths: dict[str, list[tuple[Stage, datetime]]]) -> list[dict[str, Any]]:
    rows = []
    for key, path in sorted(paths.items()):
        before: Stage | None = None
        for stage, at in path:
            rows.append({"person_key": key, "from_stage": before.value if before else None,
                         "to_stage": stage.value, "at": at, "cause": "scoring",
                         "model_version": "m@1", "run_id": "r", "detail": None})
            before = stage
    return rows


def changes(paths: dict[str, list[tuple[Stage, datetime]]]) -> list[StageChange]:
    return [StageChange(id=n, person_key=r["person_key"],
                        from_stage=Stage(r["from_stage"]) if r["from_stage"] else None,
                        to_stage=Stage(r["to_stage"]), at=r["at"], cause=r["cause"],
                        model_version="m@1", run_id="r", detail=None)
            for n, r in enumerate(history_rows(paths), start=1)]


def figures(result: Funnel) -> dict[str, Any]:
    return {
        "steps": {s.stage.value: (s.entries, s.people, s.of_mql, s.of_mql_people,
                                  s.from_previous) for s in result.steps if s.used},
        "times": {t.stage.value: (t.entries, t.re_entries, t.closed, t.open, t.median, t.p90)
                  for t in result.times}}


def check_hand_worked(result: Funnel) -> None:
    """MQL entries in October: a, b, c, b again, g (again: MQL in August), f -> 6 entries,
    5 people. Reached (before the next MQL entry, before Nov 1): a -> opportunity, b's first
    -> nothing (recycled), c -> nothing, b's second -> SQL, g -> customer, f -> nothing
    (its SQL is in November). d went lead -> SQL (a hand-raise): outside the cohort."""
    assert (result.mql_entries, result.mql_people, result.bypassed_mql) == (6, 5, 1)
    got = figures(result)
    assert got["steps"] == {
        "sal": (3, 3, 3 / 6, 3 / 5, 3 / 6),
        "sql": (3, 3, 3 / 6, 3 / 5, 1.0),
        "opportunity": (2, 2, 2 / 6, 2 / 5, 2 / 3),
        "customer": (1, 1, 1 / 6, 1 / 5, 1 / 2)}
    days = [timedelta(days=n) for n in range(14)]
    assert got["times"] == {
        # stays 2, 10, 1, 2, 2 days (f still open): nearest-rank median 2, p90 10
        "mql": (6, 2, 5, 1, days[2], days[10]),
        "sal": (2, 0, 1, 1, days[4], days[4]),  # a 4 days; e open (its SQL is in November)
        "sql": (4, 0, 2, 2, days[12], days[13]),  # a 12, g 13; b and d open
        "opportunity": (1, 0, 0, 1, None, None),
        "customer": (1, 0, 0, 1, None, None)}


def test_funnel_figures_by_hand() -> None:
    result = funnel(changes(PATHS), SINCE, UNTIL)
    check_hand_worked(result)
    text = format_funnel(result)
    assert "MQL entries: 6 (5 people, 2 re-entries)" in text
    assert "  SQL                 3     50%   100%       3        60%" in text
    assert "entered SAL or later without being MQL (hand-raises, sales): 1" in text
    # Rows from `until` on are never counted, whoever passes them in: to Oct 21 noon, b's
    # second MQL entry (Oct 20) has not reached SQL (Oct 22) nor g customer (Oct 25).
    early = funnel(changes(PATHS), SINCE, day(10, 21))
    assert (early.mql_entries, early.steps[1].entries, early.steps[3].entries) == (5, 2, 0)


def test_a_stage_nobody_uses_is_left_out_not_divided_by() -> None:
    no_sal = {key: [(stage, at) for stage, at in path if stage is not S]
              for key, path in PATHS.items()}
    result = funnel(changes(no_sal), SINCE, UNTIL)
    sal, sql = result.steps[0], result.steps[1]
    assert (sal.used, sal.of_mql, sal.from_previous) == (False, None, None)
    assert (sql.entries, sql.from_previous) == (3, 3 / 6)  # over MQL entries, not over SAL
    assert [t.stage for t in result.times] == [M, Q, OP, C]
    text = format_funnel(result)
    assert "SAL          not used (no one has ever entered it)" in text
    assert json.loads(json.dumps(funnel_json(result)))["steps"][0] == {
        "stage": "sal", "used": False, "entries": None, "people": None, "of_mql": None,
        "of_mql_people": None, "from_previous": None}


def test_a_period_without_mql_entries_shows_no_ratios() -> None:
    result = funnel(changes(PATHS), day(11, 10), day(11, 20))
    assert (result.mql_entries, result.mql_people) == (0, 0)
    assert all(s.of_mql is None and s.from_previous is None for s in result.steps)
    assert "(no one entered MQL in the period)" in format_funnel(result)
    assert "(no stage history yet)" in format_funnel(funnel([], None, UNTIL))


# ------------------------------------------------------------ store round trip
def test_append_carry_and_read_the_funnel_back(state_url: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    store = Store.open(state_url)
    try:
        with store.transaction() as tx:
            stage_history.append(tx, history_rows(PATHS))
            # A duplicate of "a" found later: its own history, then merged into "a".
            stage_history.append(tx, history_rows(
                {"a-dup": [(L, day(9, 1)), (M, day(9, 5)), (R, day(9, 15))]}))
            stage_history.append(tx, [])
        before = [(c.to_stage, c.at) for c in stage_history.history(store, "a")]
        with store.transaction() as tx:
            assert stage_history.carry(tx, "a-dup", "a") == 3
            assert stage_history.carry(tx, "a", "a") == 0
        assert stage_history.history(store, "a-dup") == []
        merged = stage_history.history(store, "a")
        assert [(c.to_stage, c.at) for c in merged] == sorted(
            [*before, (L, day(9, 1)), (M, day(9, 5)), (R, day(9, 15))],
            key=lambda pair: pair[1])
        assert all(c.at.tzinfo is not None for c in merged)
        assert merged[0].from_stage is None and merged[1].from_stage is Stage.LEAD
        assert stage_history.stages_used(store) == {L, M, S, Q, OP, C, R, D}
        rows = stage_history.period_rows(store, SINCE, UNTIL)
        assert {r.person_key for r in rows} == set(PATHS)  # e and g: rows in the period
        assert all(r.at < UNTIL for r in rows)
        result = funnel(rows, SINCE, UNTIL, stage_history.stages_used(store))
        # a's MQL in September (from the merged duplicate) makes October's a re-entry.
        assert result.mql_entries == 6
        assert next(t for t in result.times if t.stage is M).re_entries == 3
        with store.transaction() as tx:
            tx.execute(t.assignments.insert(), [{
                "person_key": "a", "owner_email": "dana@x.test", "team": "global",
                "rule": "round_robin", "reason": "rr", "stage": "mql",
                "qualified_at": day(10, 2), "assigned_at": day(10, 2),
                "owner_written_at": day(10, 2) + timedelta(minutes=7), "run_id": "r"}])
    finally:
        store.close()
    assert main(["report", "--state", state_url, "--since", "2026-10-01",
                 "--until", "2026-11-01", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["period"] == {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
    assert (report["funnel"]["mql_entries"], report["funnel"]["mql_people"]) == (6, 5)
    assert report["funnel"]["steps"][1]["of_mql"] == 0.5
    assert report["speed_to_lead"][0] == {"team": "global", "people": 1,
                                          "median_seconds": 420.0, "p90_seconds": 420.0}
    assert report["owners"] == [{"owner": "dana@x.test", "assigned": 1, "mqls": 1,
                                 "now_sql_or_later": 0, "mql_to_sql": 0.0}]
    # A period before the assignment: no speed to lead, no owners, no MQL entries.
    assert main(["report", "--state", state_url, "--until", "2026-09-01"]) == 0
    text = capsys.readouterr().out
    assert "(no owner written yet)" in text and "(no assignments yet)" in text
    assert main(["report", "--state", state_url, "--since", "2026-11-01",
                 "--until", "2026-10-01"]) == 2
    assert "must be before --until" in capsys.readouterr().err


def test_period_rows_without_since_reads_everyone(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        with store.transaction() as tx:
            stage_history.append(tx, history_rows(PATHS))
        rows = stage_history.period_rows(store, None, UNTIL)
        check_hand_worked(funnel(rows, SINCE, UNTIL, stage_history.stages_used(store)))
    finally:
        store.close()


def test_speed_to_lead_of_a_period_and_over_all_teams() -> None:
    def row(team: str, qualified: datetime, minutes: int | None) -> dict[str, Any]:
        return {"person_key": f"{team}{qualified:%d}", "owner_email": "dana@x.test",
                "team": team, "rule": "round_robin", "stage": "mql", "qualified_at": qualified,
                "owner_written_at": None if minutes is None
                else qualified + timedelta(minutes=minutes)}

    rows = [row("emea", day(9, 30), 1), row("emea", day(10, 1), 10),
            row("emea", day(10, 2), 30), row("amer", day(10, 3), 20),
            row("amer", day(10, 4), None), row("amer", day(11, 1), 5)]
    kept = in_period(rows, SINCE, UNTIL)  # qualified in October only
    assert [r["qualified_at"] for r in kept] == [day(10, n) for n in (1, 2, 3, 4)]
    assert in_period(rows, None, None) == rows
    overall = overall_speed(kept)
    assert overall is not None and (overall.people, overall.median, overall.p90) == (
        3, timedelta(minutes=20), timedelta(minutes=30))
    assert overall_speed(kept[3:]) is None
    text = format_report(speed_to_lead(kept), [], overall)
    assert "(all teams)                        3     20m00s     30m00s" in text
    # One team: its own line says it all.
    assert "(all teams)" not in format_report(speed_to_lead(kept[:2]), [],
                                              overall_speed(kept[:2]))


def test_merged_histories_entering_the_same_stage_twice_make_one_entry() -> None:
    # Two records of one person both became MQL before they were merged (carry): the
    # second row is not a new entry, and the stay runs from the first to the SQL.
    result = funnel(changes({"kim": [(M, day(10, 2)), (M, day(10, 5)), (Q, day(10, 9))]}),
                    SINCE, UNTIL)
    assert (result.mql_entries, result.steps[1].entries) == (1, 1)
    mql = result.times[0]
    assert (mql.entries, mql.re_entries, mql.closed, mql.median) == (
        1, 0, 1, timedelta(days=7))
