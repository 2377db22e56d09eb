"""History files: reading any CSV, its errors, the time split and the column mapping."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from syncer.domain.types import ActivityType
from syncer.qualify.learn import (
    HistoryError,
    history_rows,
    load_mapping,
    read_history,
    split_history,
)
from syncer.qualify.learn.history import field_name
from syncer.qualify.learn.mapping import parse_mapping

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "history.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


SMALL = """\ufeffLead Number,Lead Source,TotalVisits,Country,Converted,Last Activity,Email
30,Google,3,India,1,Email Opened,a@example.com
10,select,,India,0,Unsubscribed,
20,Reference,7.5,NA,yes,Email Bounced,
"""


@pytest.mark.parametrize(("header", "field"), [
    ("Lead Source", "lead_source"), ("TotalVisits", "totalvisits"),
    ("  What is your current occupation? ", "what_is_your_current_occupation"),
    ("2nd source", "f_2nd_source"), ("Page Views / Visit", "page_views_visit"),
])
def test_column_names_become_field_names(header: str, field: str) -> None:
    assert field_name(header) == field


def test_rows_are_ordered_by_the_time_column_and_missing_tokens_are_none(
        tmp_path: Path) -> None:
    history = read_history(write(tmp_path, SMALL), "Converted", "Lead Number")
    assert history.ids == ("10", "20", "30")
    assert history.outcomes == (False, True, True)
    assert not history.dated
    source = history.column("lead_source")
    assert source.header == "Lead Source"
    assert source.cells == (None, "Reference", "Google")  # "select" is missing
    assert history.column("Country").cells == ("India", None, "India")


def test_rows_become_profiles_with_properties_standard_fields_and_keys(
        tmp_path: Path) -> None:
    history = read_history(write(tmp_path, SMALL), "Converted", "Lead Number")
    rows = history_rows(history, range(3))
    first, _, last = rows
    person = last.profile.records[0]
    assert (person.source, person.record_id, person.object_type) == ("history", "30",
                                                                     "history")
    assert person.email == "a@example.com" and last.profile.key == "a@example.com"
    assert first.profile.key == "history:10"
    assert person.country == "India"                    # a standard field: the attribute
    assert person.properties["totalvisits"] == 3.0      # numbers become floats
    assert person.properties["lead_source"] == "Google"
    assert "lead_number" not in person.properties and "converted" not in person.properties
    assert "lead_source" not in first.profile.records[0].properties  # missing: left out
    assert last.as_of == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_bad_outcome_names_the_line_the_column_the_value_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "id,won\n1,yes\n2,maybe\n")
    with pytest.raises(HistoryError) as error:
        read_history(path, "won")
    message = str(error.value)
    assert "line 3" in message and "'won'" in message and "'maybe'" in message
    assert "Fix:" in message


def test_unknown_column_lists_the_columns_and_guesses(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"'Convrted' is not in the file \(did you mean "
                                           r"'Converted'\?\)"):
        read_history(write(tmp_path, SMALL), "Convrted")


@pytest.mark.parametrize(("text", "expected"), [
    ("", "the file is empty"), ("id,won\n", "no rows"), ("id,won\n1,1,extra\n", "line 2"),
])
def test_empty_or_broken_files_say_so(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(HistoryError, match=expected):
        read_history(write(tmp_path, text), "won")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="file not found"):
        read_history(tmp_path / "nope.csv", "won")


def test_dates_order_rows_and_are_their_scoring_instant(tmp_path: Path) -> None:
    path = write(tmp_path, "id,when,won\na,2026-03-02,1\nb,2026-01-05T10:00:00Z,0\n"
                           "c,2026-02-01,0\nd,2026-04-01,1\n")
    history = read_history(path, "won", "when")
    assert history.dated and history.ids == ("b", "c", "a", "d")
    assert history.instants[0] == datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
    split = split_history(history, "2026-03-01")
    assert (split.train, split.test) == ((0, 1), (2, 3))
    with pytest.raises(HistoryError, match="ISO date"):
        split_history(history, "640000")


def test_bad_time_values_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "id,when,won\na,2026-03-02,1\nb,last week,0\n")
    with pytest.raises(HistoryError, match=r"line 3, column 'when': 'last week'"):
        read_history(path, "won", "when")


def test_test_fraction_takes_the_newest_rows(tmp_path: Path) -> None:
    text = "id,won\n" + "".join(f"{i},{i % 2}\n" for i in range(10))
    history = read_history(write(tmp_path, text), "won")
    split = split_history(history, test_fraction=0.3)
    assert split.test == (7, 8, 9) and len(split.train) == 7
    with pytest.raises(HistoryError, match="--split-at needs --time"):
        split_history(history, "5")
    with pytest.raises(HistoryError, match="test part empty"):
        split_history(read_history(write(tmp_path, "id,n,won\n1,1,1\n2,2,0\n"), "won", "n"),
                      "100")


def test_mapping_renames_recodes_and_makes_activities(tmp_path: Path) -> None:
    history = read_history(write(tmp_path, SMALL), "Converted", "Lead Number")
    mapping = parse_mapping({
        "columns": {"Lead Source": "source", "TotalVisits": "visits"},
        "values": {"Lead Source": {"google": "Google Ads"}},
        "activities": {"Last Activity": {"Email Bounced": "email_bounce",
                                         "Unsubscribed": "unsubscribe"}},
        "flags": {"Country": {"india": "page_view"}},
    })
    first, second, third = history_rows(history, range(3), mapping)
    assert third.profile.records[0].properties["source"] == "Google Ads"
    assert third.profile.records[0].properties["visits"] == 3.0
    # the column's own name stays readable, so a model learned from the file scores too
    assert third.profile.records[0].properties["lead_source"] == "Google"  # not recoded
    assert third.profile.records[0].properties["totalvisits"] == 3.0
    assert [a.type for a in first.profile.activities] == [ActivityType.PAGE_VIEW,
                                                          ActivityType.UNSUBSCRIBE]
    assert [a.type for a in second.profile.activities] == [ActivityType.EMAIL_BOUNCE]
    assert second.profile.activities[0].occurred_at == second.as_of


def test_mapping_errors_name_the_entry(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="not an activity type"):
        parse_mapping({"activities": {"Last Activity": {"x": "telepathy"}}})
    with pytest.raises(HistoryError, match="unknown section"):
        parse_mapping({"colums": {}})
    with pytest.raises(HistoryError, match="not a field name"):
        parse_mapping({"columns": {"Lead Source": "Lead Source"}})
    history = read_history(write(tmp_path, SMALL), "Converted", "Lead Number")
    with pytest.raises(HistoryError, match="'Nope' is not in the file"):
        history_rows(history, [0], parse_mapping({"columns": {"Nope": "source"}}))


def test_the_shipped_xeducation_mapping_loads() -> None:
    mapping = load_mapping(REPO / "config/examples/xeducation-columns.yaml")
    assert mapping.columns["Lead Source"] == "source"
    assert "sms sent" not in mapping.activities["Last Activity"]
    assert mapping.activities["Do Not Email"]["yes"] is ActivityType.UNSUBSCRIBE


def test_long_headers_are_cut_to_the_longest_field_name() -> None:
    name = field_name("How did you hear about us " * 5)
    assert len(name) <= 64 and not name.endswith("_")


def test_rows_sharing_a_time_stay_on_one_side_of_the_split(tmp_path: Path) -> None:
    days = ["2026-01-01"] * 4 + ["2026-01-02"] * 4 + ["2026-01-03"] * 2
    text = "id,day,won\n" + "".join(f"{i},{d},{i % 2}\n" for i, d in enumerate(days))
    history = read_history(write(tmp_path, text), "won", "day")
    split = split_history(history, test_fraction=0.3)      # 7 / 3 would cut a day
    assert (len(split.train), len(split.test)) == (4, 6)
