"""Shared fields: which value wins when HubSpot and Salesforce disagree on a person field,
the base stored between syncs, and the config checks that keep syncer's own fields out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from syncer.domain.config import SharedField, parse_config, writeback_fields
from syncer.domain.config_base import ConfigError
from syncer.domain.types import Person
from syncer.run.field_policy import SharedWrites, settle_shared_fields
from syncer.store import shared_values
from syncer.store import tables as t
from syncer.store.repository import Store
from tests.conftest import EXAMPLE_CONFIG

HS, SF = "hubspot", "salesforce"
KINDS = {HS: "hubspot", SF: "salesforce"}
ORDER = (HS, SF)
CRM_FIELD = {HS: "jobtitle", SF: "Title"}
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
#: The stored base when the person was never synced with the field (no row).
FIRST_SYNC = "<no base yet>"
#: The expected new base when none is recorded (the stored one stays).
KEEP = "<base left as stored>"


def title(policy: str, name: str = "title") -> SharedField:
    return SharedField(name=name, policy=policy, fields=dict(CRM_FIELD))


def rec(record_id: str, value: str | None, minute: int | None) -> Person:
    """A record of HubSpot (ids hs-*) or Salesforce (sf-*) holding `value` as its title,
    modified at 10:<minute> (None: the CRM gave no time)."""
    connector = HS if record_id.startswith("hs") else SF
    return Person(source=connector, record_id=record_id,
                  object_type="contact" if connector == HS else "Lead",
                  email="ada@example.com",
                  updated_at=None if minute is None else T0 + timedelta(minutes=minute),
                  crm_values={CRM_FIELD[connector]: value})


def settle(policy: str, records: Sequence[Person], base: str | None,
           order: Sequence[str] = ORDER) -> SharedWrites:
    stored = {} if base == FIRST_SYNC else {"title": base}
    return settle_shared_fields([title(policy)], records, stored, KINDS, order)


def expected_writes(records: Sequence[Person], by_id: Mapping[str, str | None]
                    ) -> dict[tuple[str, str], dict[str, str | None]]:
    source = {r.record_id: r.source for r in records}
    return {(source[rid], rid): {CRM_FIELD[source[rid]]: value} for rid, value in by_id.items()}


# -- the matrix ----------------------------------------------------------------------------
# Each scenario: the stored base, then the person's records as just pulled. The edited side
# is deliberately NOT always the one modified last, so "changed since the last sync" and
# "modified last" cannot be confused.
SCENARIOS: dict[str, tuple[str | None, tuple[Person, ...]]] = {
    "only HubSpot edited": ("CTO", (rec("hs-1", "VP", 1), rec("sf-1", "CTO", 5))),
    "only Salesforce edited": ("CTO", (rec("hs-1", "CTO", 5), rec("sf-1", "VP", 1))),
    "both edited, HubSpot later": (
        "CTO", (rec("hs-1", "VP Sales", 5), rec("sf-1", "Head of IT", 1))),
    "both edited, Salesforce later": (
        "CTO", (rec("hs-1", "VP Sales", 1), rec("sf-1", "Head of IT", 5))),
    "HubSpot cleared it": ("CTO", (rec("hs-1", None, 1), rec("sf-1", "CTO", 5))),
    "first sync, both set": (
        FIRST_SYNC, (rec("hs-1", "VP Sales", 1), rec("sf-1", "Head of IT", 5))),
    "first sync, HubSpot blank": (
        FIRST_SYNC, (rec("hs-1", None, 5), rec("sf-1", "Head of IT", 1))),
    "duplicates in Salesforce": (
        "CTO", (rec("hs-1", "CTO", 1), rec("sf-1", "CTO", 2), rec("sf-2", "Head of IT", 3))),
    "blank duplicate in Salesforce": (
        "CTO", (rec("hs-1", "CTO", 1), rec("sf-1", "CTO", 2), rec("sf-2", None, 5))),
    "nothing changed": ("CTO", (rec("hs-1", "CTO", 1), rec("sf-1", " CTO ", 5))),
}

# scenario                          policy             writes {record: value}      new base
MATRIX: list[tuple[str, str, dict[str, str | None], str | None]] = [
    ("only HubSpot edited",           "hubspot_wins",    {"sf-1": "VP"},              "VP"),
    ("only HubSpot edited",           "salesforce_wins", {"hs-1": "CTO"},             "CTO"),
    ("only HubSpot edited",           "latest",          {"sf-1": "VP"},              "VP"),
    ("only HubSpot edited",           "fill_if_blank",   {},                          KEEP),
    ("only HubSpot edited",           "never",           {},                          KEEP),

    ("only Salesforce edited",        "hubspot_wins",    {"sf-1": "CTO"},             "CTO"),
    ("only Salesforce edited",        "salesforce_wins", {"hs-1": "VP"},              "VP"),
    ("only Salesforce edited",        "latest",          {"hs-1": "VP"},              "VP"),
    ("only Salesforce edited",        "fill_if_blank",   {},                          KEEP),
    ("only Salesforce edited",        "never",           {},                          KEEP),

    ("both edited, HubSpot later",    "hubspot_wins",    {"sf-1": "VP Sales"},        "VP Sales"),
    ("both edited, HubSpot later",    "salesforce_wins", {"hs-1": "Head of IT"},      "Head of IT"),
    ("both edited, HubSpot later",    "latest",          {"sf-1": "VP Sales"},        "VP Sales"),
    ("both edited, HubSpot later",    "fill_if_blank",   {},                          KEEP),
    ("both edited, HubSpot later",    "never",           {},                          KEEP),

    ("both edited, Salesforce later", "hubspot_wins",    {"sf-1": "VP Sales"},        "VP Sales"),
    ("both edited, Salesforce later", "salesforce_wins", {"hs-1": "Head of IT"},      "Head of IT"),
    ("both edited, Salesforce later", "latest",          {"hs-1": "Head of IT"},      "Head of IT"),
    ("both edited, Salesforce later", "fill_if_blank",   {},                          KEEP),
    ("both edited, Salesforce later", "never",           {},                          KEEP),

    # a blank on the winning side erases nothing; under latest the clearing is an edit
    ("HubSpot cleared it",            "hubspot_wins",    {},                          KEEP),
    ("HubSpot cleared it",            "salesforce_wins", {"hs-1": "CTO"},             "CTO"),
    ("HubSpot cleared it",            "latest",          {"sf-1": None},              None),
    ("HubSpot cleared it",            "fill_if_blank",   {"hs-1": "CTO"},             "CTO"),
    ("HubSpot cleared it",            "never",           {},                          KEEP),

    ("first sync, both set",          "hubspot_wins",    {"sf-1": "VP Sales"},        "VP Sales"),
    ("first sync, both set",          "salesforce_wins", {"hs-1": "Head of IT"},      "Head of IT"),
    ("first sync, both set",          "latest",          {"hs-1": "Head of IT"},      "Head of IT"),
    ("first sync, both set",          "fill_if_blank",   {},                          KEEP),
    ("first sync, both set",          "never",           {},                          KEEP),

    # no base: a blank is no clearing, even on the record modified last
    ("first sync, HubSpot blank",     "hubspot_wins",    {},                          KEEP),
    ("first sync, HubSpot blank",     "salesforce_wins", {"hs-1": "Head of IT"},      "Head of IT"),
    ("first sync, HubSpot blank",     "latest",          {"hs-1": "Head of IT"},      "Head of IT"),
    ("first sync, HubSpot blank",     "fill_if_blank",   {"hs-1": "Head of IT"},      "Head of IT"),
    ("first sync, HubSpot blank",     "never",           {},                          KEEP),

    # the Salesforce side speaks through its most recently modified record (sf-2)
    ("duplicates in Salesforce",      "hubspot_wins",    {"sf-2": "CTO"},             "CTO"),
    ("duplicates in Salesforce",      "salesforce_wins", {"hs-1": "Head of IT",
                                                          "sf-1": "Head of IT"},      "Head of IT"),
    ("duplicates in Salesforce",      "latest",          {"hs-1": "Head of IT",
                                                          "sf-1": "Head of IT"},      "Head of IT"),
    ("duplicates in Salesforce",      "fill_if_blank",   {},                          KEEP),
    ("duplicates in Salesforce",      "never",           {},                          KEEP),

    # a blank duplicate beside a filled one is "not filled yet", never a clearing
    ("blank duplicate in Salesforce", "hubspot_wins",    {"sf-2": "CTO"},             "CTO"),
    ("blank duplicate in Salesforce", "salesforce_wins", {"sf-2": "CTO"},             "CTO"),
    ("blank duplicate in Salesforce", "latest",          {"sf-2": "CTO"},             "CTO"),
    ("blank duplicate in Salesforce", "fill_if_blank",   {"sf-2": "CTO"},             "CTO"),
    ("blank duplicate in Salesforce", "never",           {},                          KEEP),

    ("nothing changed",               "hubspot_wins",    {},                          "CTO"),
    ("nothing changed",               "salesforce_wins", {},                          "CTO"),
    ("nothing changed",               "latest",          {},                          "CTO"),
    ("nothing changed",               "fill_if_blank",   {},                          "CTO"),
    ("nothing changed",               "never",           {},                          KEEP),
]


def _row_id(row: tuple[str, str, Any, Any]) -> str:
    return f"{row[0]} / {row[1]}"


def test_matrix_covers_every_policy_and_scenario() -> None:
    pairs = {(scenario, policy) for scenario, policy, _, _ in MATRIX}
    policies = ("hubspot_wins", "salesforce_wins", "latest", "fill_if_blank", "never")
    assert pairs == {(s, p) for s in SCENARIOS for p in policies}
    assert len(pairs) == len(MATRIX)


@pytest.mark.parametrize("row", MATRIX, ids=_row_id)
def test_policy_matrix(row: tuple[str, str, dict[str, str | None], str | None]) -> None:
    scenario, policy, writes, new_base = row
    base, records = SCENARIOS[scenario]
    settled = settle(policy, records, base)
    assert settled.writes == expected_writes(records, writes)
    assert settled.base == ({} if new_base == KEEP else {"title": new_base})
    # Every written record is a target of the field, and each write comes with a reason.
    assert settled.targets == ({"title": frozenset(settled.writes)} if writes else {})
    assert set(settled.reasons) == ({"title"} if writes else set())


@pytest.mark.parametrize("row", MATRIX, ids=_row_id)
def test_settling_is_stable(row: tuple[str, str, dict[str, str | None], str | None]) -> None:
    """Once the writes landed and the base is stored, the next sync writes nothing; and the
    order the records come in changes nothing."""
    scenario, policy, _, _ = row
    base, records = SCENARIOS[scenario]
    first = settle(policy, records, base)
    assert settle(policy, list(reversed(records)), base) == first
    landed = [replace(r, crm_values={**r.crm_values, **first.writes.get(
        (r.source, r.record_id), {})}, updated_at=T0 + timedelta(minutes=30)) for r in records]
    stored = first.base.get("title", base) if "title" in first.base else base
    again = settle(policy, landed, stored)
    assert again.writes == {}
    assert again.base == first.base


# -- rules beyond the matrix -------------------------------------------------------------------
def test_latest_tie_goes_to_the_connector_listed_first() -> None:
    records = (rec("hs-1", "VP Sales", 3), rec("sf-1", "Head of IT", 3))
    assert settle("latest", records, "CTO").writes == {(SF, "sf-1"): {"Title": "VP Sales"}}
    assert settle("latest", records, "CTO", order=(SF, HS)).writes == {
        (HS, "hs-1"): {"jobtitle": "Head of IT"}}


def test_latest_record_without_a_time_counts_as_oldest() -> None:
    records = (rec("hs-1", "VP Sales", None), rec("sf-1", "Head of IT", 0))
    assert settle("latest", records, "CTO").writes == {
        (HS, "hs-1"): {"jobtitle": "Head of IT"}}


def test_latest_agreed_blank_then_one_side_fills_it() -> None:
    settled = settle("latest", (rec("hs-1", None, 5), rec("sf-1", "CFO", 1)), None)
    assert settled.writes == {(HS, "hs-1"): {"jobtitle": "CFO"}}
    assert settled.base == {"title": "CFO"}


def test_latest_both_cleared_or_both_set_alike_needs_no_write() -> None:
    cleared = settle("latest", (rec("hs-1", "", 5), rec("sf-1", None, 1)), "CTO")
    assert (cleared.writes, cleared.base) == ({}, {"title": None})
    alike = settle("latest", (rec("hs-1", "CFO", 5), rec("sf-1", "CFO", 1)), "CTO")
    assert (alike.writes, alike.base) == ({}, {"title": "CFO"})


def test_latest_clearing_every_duplicate_is_a_clearing() -> None:
    records = (rec("hs-1", "CTO", 1), rec("sf-1", None, 2), rec("sf-2", None, 3))
    settled = settle("latest", records, "CTO")
    assert settled.writes == {(HS, "hs-1"): {"jobtitle": None}}
    assert settled.base == {"title": None}


def test_values_compare_trimmed_and_numbers_in_one_form() -> None:
    spec = SharedField(name="employees", policy="latest",
                       fields={HS: "employees_exact", SF: "NumberOfEmployees"})
    records = [replace(rec("hs-1", None, 1), crm_values={"employees_exact": "42"}),
               replace(rec("sf-1", None, 5), crm_values={"NumberOfEmployees": " 42.0 "})]
    settled = settle_shared_fields([spec], records, {}, KINDS, ORDER)
    assert settled.writes == {}
    assert settled.base == {"employees": "42.0"}  # the later record's text, compared as 42


def test_what_is_written_is_the_winning_text_trimmed_not_reformatted() -> None:
    records = (rec("hs-1", "  +44 20 7946 0000 ", 5), rec("sf-1", None, 1))
    assert settle("hubspot_wins", records, FIRST_SYNC).writes == {
        (SF, "sf-1"): {"Title": "+44 20 7946 0000"}}


def test_person_in_one_crm_only_is_left_alone() -> None:
    records = (rec("sf-1", "CTO", 1), rec("sf-2", None, 2))
    for policy in ("hubspot_wins", "salesforce_wins", "latest", "fill_if_blank"):
        assert settle(policy, records, FIRST_SYNC) == SharedWrites({}, {})


def test_record_pulled_without_the_field_takes_no_part() -> None:
    """Stored before the field was configured: its value is unknown, not blank."""
    unknown = replace(rec("sf-1", None, 5), crm_values={"Syncer_Score__c": "40"})
    for policy in ("hubspot_wins", "latest", "fill_if_blank"):
        assert settle(policy, (rec("hs-1", "CTO", 1), unknown), "CFO") == SharedWrites({}, {})
    # With a second Salesforce record that has it, the person is settled, the unknown skipped.
    settled = settle("hubspot_wins", (rec("hs-1", "CTO", 1), unknown, rec("sf-2", "CFO", 1)),
                     "CFO")
    assert settled.writes == {(SF, "sf-2"): {"Title": "CTO"}}


def test_crm_field_names_match_case_insensitively() -> None:
    """A connector keeps the first spelling configured (writeback_fields); the write uses
    the record's own key so the pipeline's diff sees the same field."""
    lower = replace(rec("sf-1", "CFO", 1), crm_values={"title": "CFO"})
    assert settle("hubspot_wins", (rec("hs-1", "CTO", 5), lower), "CFO").writes == {
        (SF, "sf-1"): {"title": "CTO"}}


def test_never_writes_nothing_even_when_the_values_are_there() -> None:
    records = (rec("hs-1", "CTO", 5), rec("sf-1", None, 1))
    assert settle("never", records, FIRST_SYNC) == SharedWrites({}, {})


def test_several_fields_merge_per_record_and_failed_writes_keep_the_old_base() -> None:
    phone = SharedField(name="phone", policy="salesforce_wins", fields={HS: "phone", SF: "Phone"})
    specs = [title("latest"), phone,
             SharedField(name="mobile", policy="fill_if_blank",
                         fields={HS: "mobilephone", SF: "MobilePhone"})]
    hubspot = Person(source=HS, record_id="hs-1", object_type="contact", email=None,
                     updated_at=T0 + timedelta(minutes=5),
                     crm_values={"jobtitle": "VP", "phone": "111", "mobilephone": "777"})
    salesforce = Person(source=SF, record_id="sf-1", object_type="Lead", email=None,
                        updated_at=T0, crm_values={"Title": "CTO", "Phone": "222",
                                                   "MobilePhone": None})
    base = {"title": "CTO", "phone": "222"}
    settled = settle_shared_fields(specs, [hubspot, salesforce], base, KINDS, ORDER)
    assert settled.writes == {(SF, "sf-1"): {"Title": "VP", "MobilePhone": "777"},
                              (HS, "hs-1"): {"phone": "222"}}
    assert settled.base == {"title": "VP", "phone": "222", "mobile": "777"}
    assert settled.reasons["title"].startswith("title: latest, hubspot record hs-1")
    assert settled.reasons["phone"].startswith("phone: salesforce_wins, from salesforce")
    assert settled.base_after() == settled.base
    # The Salesforce update failed: title and mobile keep their stored base, phone landed.
    assert settled.base_after([(SF, "sf-1")]) == {"phone": "222"}
    assert settled.base_after([(HS, "hs-1")]) == {"title": "VP", "mobile": "777"}


def test_a_failed_write_retried_with_the_old_base_settles_the_same_way() -> None:
    """Why the base must not advance past a failed write: with the new base the stale
    Salesforce value would look like a fresh edit and undo HubSpot's change."""
    records = (rec("hs-1", "VP", 1), rec("sf-1", "CTO", 5))
    first = settle("latest", records, "CTO")
    kept = first.base_after([(SF, "sf-1")]).get("title", "CTO")
    assert settle("latest", records, kept).writes == first.writes
    wrongly_advanced = settle("latest", records, "VP")
    assert wrongly_advanced.writes == {(HS, "hs-1"): {"jobtitle": "CTO"}}


# -- the store ---------------------------------------------------------------------------------
def test_store_round_trip_upsert_and_carry(state_url: str) -> None:
    store = Store.open(state_url)
    try:
        at = T0
        keys = [f"person{i:04d}@example.com" for i in range(1200)]  # several IN chunks
        with store.transaction() as connection:
            shared_values.save(store, connection, [
                row for key in keys for row in shared_values.rows(
                    key, {"title": f"title {key[6:10]}", "phone": None}, at)])
        loaded = shared_values.load(store, [*keys, "nobody@example.com"])
        assert loaded["person0000@example.com"] == {"title": "title 0000", "phone": None}
        assert loaded["person1199@example.com"] == {"title": "title 1199", "phone": None}
        assert loaded["nobody@example.com"] == {}
        assert len(loaded) == 1201

        # A sync's new base replaces the stored one; other fields stay.
        base = shared_values.load(store, ["person0001@example.com"])["person0001@example.com"]
        records = (rec("hs-1", "VP", 1), rec("sf-1", "title 0001", 5))
        settled = settle_shared_fields([title("latest")], records, base, KINDS, ORDER)
        assert settled.writes == {(SF, "sf-1"): {"Title": "VP"}}
        with store.transaction() as connection:
            shared_values.save(store, connection, shared_values.rows(
                "person0001@example.com", settled.base_after(), at + timedelta(hours=1)))
        assert shared_values.load(store, ["person0001@example.com"]) == {
            "person0001@example.com": {"title": "VP", "phone": None}}

        # Two people merge: a field only the leaving key has moves over, agreeing ones stay,
        # disagreeing ones are dropped (the merged person settles them as a first sync).
        with store.transaction() as connection:
            shared_values.save(store, connection, [
                *shared_values.rows("a@example.com", {"title": "CTO", "phone": "1",
                                                      "mobile": "7"}, at),
                *shared_values.rows("b@example.com", {"title": "CFO", "phone": "1.0"}, at)])
            shared_values.carry(connection, "a@example.com", "b@example.com")
            shared_values.carry(connection, "b@example.com", "b@example.com")  # no-op
        assert shared_values.load(store, ["a@example.com", "b@example.com"]) == {
            "a@example.com": {}, "b@example.com": {"phone": "1.0", "mobile": "7"}}
        with store.engine.connect() as connection:
            moved = connection.execute(select(t.shared_values.c.synced_at).where(
                t.shared_values.c.person_key == "b@example.com",
                t.shared_values.c.field == "mobile")).scalar_one()
        assert moved.replace(tzinfo=timezone.utc) == at  # carried as it was stored
    finally:
        store.close()


# -- the config --------------------------------------------------------------------------------
def config_data(shared: list[dict[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["shared_fields"] = shared
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, Path("syncer.yaml"))
    return raised.value.problems


def test_example_shared_fields_block_is_valid_once_uncommented() -> None:
    lines = EXAMPLE_CONFIG.read_text().splitlines()
    start = lines.index("# shared_fields:")
    block = [line[2:] for line in lines[start:] if line.startswith("# ")]
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data.update(yaml.safe_load("\n".join(block)))
    loaded = parse_config(data, Path("syncer.yaml"))
    assert [(s.name, s.policy) for s in loaded.config.shared_fields] == [
        ("title", "latest"), ("phone", "salesforce_wins")]
    hubspot, salesforce = loaded.config.connectors
    assert writeback_fields(loaded, hubspot)[-2:] == ("jobtitle", "phone")
    assert writeback_fields(loaded, salesforce)[-2:] == ("Title", "Phone")


def test_never_fields_are_not_read_or_written() -> None:
    loaded = parse_config(config_data([{"name": "title", "policy": "never",
                                        "fields": dict(CRM_FIELD)}]), Path("syncer.yaml"))
    for connector in loaded.config.connectors:
        assert CRM_FIELD[connector.name] not in writeback_fields(loaded, connector)


@pytest.mark.parametrize("crm", ["Syncer_Score__c", "syncer_score__c", "OwnerId"])
def test_a_field_syncer_decides_is_refused(crm: str) -> None:
    found = problems(config_data([{"name": "score", "policy": "latest",
                                   "fields": {HS: "jobtitle", SF: crm}}]))
    assert len(found) == 1
    assert ("syncer.yaml: (top level): shared_fields[0] (name: score).fields.salesforce: "
            f"{crm} holds what syncer decides (connectors[].fields); it is syncer's, not "
            "shared. Fix: remove it from shared_fields") in found[0]


def test_a_named_score_field_is_refused_too() -> None:
    data = config_data([{"name": "fit", "policy": "hubspot_wins",
                         "fields": {HS: "syncer_fit", SF: "Title"}}])
    data["connectors"][0]["fields"]["scores"] = {"fit": {"score": "syncer_fit"}}
    assert "fields.hubspot: syncer_fit holds what syncer decides" in problems(data)[0]


def test_unknown_connector_is_named_with_the_known_ones() -> None:
    found = problems(config_data([{"name": "title", "policy": "latest",
                                   "fields": {HS: "jobtitle", "marketo": "title"}}]))
    assert ("shared_fields[0] (name: title).fields.marketo: no connector of that name. "
            "Fix: use one of hubspot, salesforce") in found[0]


def two_salesforce_orgs(shared: list[dict[str, Any]]) -> dict[str, Any]:
    data = config_data(shared)
    data["connectors"].append({**data["connectors"][1], "name": "salesforce_eu"})
    return data


@pytest.mark.parametrize(("policy", "fields", "kind"), [
    ("hubspot_wins", {SF: "Title", "salesforce_eu": "Title"}, "hubspot"),
    ("salesforce_wins", {SF: "Title", "salesforce_eu": "Title"}, "salesforce"),
    ("salesforce_wins", {HS: "jobtitle", "salesforce_eu": "Title"}, None),
])
def test_wins_policy_needs_exactly_one_connector_of_its_kind(
        policy: str, fields: dict[str, str], kind: str | None) -> None:
    data = two_salesforce_orgs([{"name": "title", "policy": policy, "fields": fields}])
    if kind is None:  # one salesforce connector among the fields: valid
        assert parse_config(data, Path("syncer.yaml")).config.shared_fields[0].policy == policy
        return
    found = problems(data)
    assert (f"shared_fields[0] (name: title).policy: {policy} needs exactly one {kind} "
            "connector in `fields`. Fix: add it or use latest") in found[0]


def test_every_shared_field_problem_is_reported_at_once() -> None:
    found = problems(config_data([
        {"name": "title", "policy": "latest", "fields": {HS: "jobtitle", SF: "Title"}},
        {"name": "title", "policy": "latest", "fields": {HS: "lifecyclestage", "x": "y"}},
    ]))
    joined = "\n".join(found)
    assert "shared_fields[1] (name: title): repeated name. Fix: list each field once" in joined
    assert "shared_fields[1] (name: title).fields.hubspot: lifecyclestage holds" in joined
    assert "shared_fields[1] (name: title).fields.x: no connector of that name" in joined


@pytest.mark.parametrize(("entry", "where", "says"), [
    ({"name": "title", "policy": "newest", "fields": dict(CRM_FIELD)},
     "shared_fields[0] (name: title).policy", "'hubspot_wins'"),
    ({"name": "title", "policy": "latest", "fields": {HS: "jobtitle"}},
     "shared_fields[0] (name: title).fields", "at least 2"),
    ({"name": "Job Title", "policy": "latest", "fields": dict(CRM_FIELD)},
     "shared_fields[0] (name: Job Title).name", "Fix: use lowercase letters"),
])
def test_shape_errors_name_the_shared_field(entry: dict[str, Any], where: str,
                                            says: str) -> None:
    found = problems(config_data([entry]))
    assert any(where in p and says in p for p in found), found
