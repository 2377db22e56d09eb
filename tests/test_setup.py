"""`syncer setup` against sandboxes started without syncer's fields, through the real
clients (hubspot-api-client's properties API, simple-salesforce's Tooling API)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.cli import main
from syncer.domain.config import LoadedConfig
from syncer.domain.connector import ConnectorError, ConnectorSettings, Sandbox
from syncer.domain.field_setup import FieldNeed, NoRight
from syncer.run.setup_fields import set_up
from tests.conftest import NOW, Sandboxes, sandbox_config_data, sync_once, write_config

#: what the example config maps on each CRM that is syncer's own (not standard)
HUBSPOT_CREATED = {"syncer_score", "syncer_fit_grade", "syncer_reasons", "syncer_owner_reason",
                   "syncer_fit", "syncer_engagement", "syncer_lead_routing_score",
                   "syncer_lead_routing_fit", "syncer_lead_routing_engagement",
                   "syncer_lead_routing_grade"}
SALESFORCE_FIELDS = {"Syncer_Stage__c", "Syncer_Score__c", "Syncer_Fit_Grade__c",
                     "Syncer_Reasons__c", "Syncer_Owner_Reason__c", "Syncer_Fit__c",
                     "Syncer_Engagement__c", "Syncer_Lead_Routing_Score__c",
                     "Syncer_Lead_Routing_Fit__c", "Syncer_Lead_Routing_Engagement__c",
                     "Syncer_Lead_Routing_Grade__c"}


def bare_sandboxes(can_customize: bool = True) -> Sandboxes:
    world = World(seed=7, size=120, now=NOW, syncer_fields=False)
    return Sandboxes(world, HubSpotSandbox(world),
                     SalesforceSandbox(world, can_customize=can_customize))


@pytest.fixture
def bare() -> Iterator[Sandboxes]:
    running = bare_sandboxes()
    hubspot: Sandbox = running.hubspot
    salesforce: Sandbox = running.salesforce
    hubspot.start()
    salesforce.start()
    try:
        yield running
    finally:
        hubspot.stop()
        salesforce.stop()


def config_for(sandboxes: Sandboxes, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    monkeypatch.delenv("SYNCER_CONFIG", raising=False)
    data = sandbox_config_data(sandboxes, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    return write_config(tmp_path / "syncer.yaml", data)


def setup(loaded: LoadedConfig, capsys: pytest.CaptureFixture[str], *flags: str
          ) -> tuple[int, str]:
    code = main(["setup", "--config", str(loaded.path), *flags])
    return code, capsys.readouterr().out


def hubspot_properties(sandbox: Sandbox) -> dict[str, Any]:
    assert isinstance(sandbox, HubSpotSandbox)
    return dict(sandbox.state.properties)


def salesforce_described(sandbox: Sandbox, object_name: str) -> set[str]:
    assert isinstance(sandbox, SalesforceSandbox)
    from connectors.sandbox.salesforce.schema import schema_for
    schema = schema_for(object_name)
    assert schema is not None
    return {f.name for f in schema.fields
            if sandbox.org.has_field(object_name, f.name)}


def test_setup_creates_exactly_the_missing_fields_then_nothing(
        bare: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    loaded = config_for(bare, tmp_path, monkeypatch)
    before = set(hubspot_properties(bare.hubspot))
    assert not HUBSPOT_CREATED & before
    assert not SALESFORCE_FIELDS & salesforce_described(bare.salesforce, "Lead")

    code, out = setup(loaded, capsys, "--dry-run")
    assert code == 0
    assert "hubspot: would create property group 'syncer'" in out
    assert "salesforce: would create Lead.Syncer_Stage__c (picklist)" in out
    assert "salesforce: would create Contact.Syncer_Score__c (number)" in out
    assert set(hubspot_properties(bare.hubspot)) == before  # a dry run creates nothing
    assert not SALESFORCE_FIELDS & salesforce_described(bare.salesforce, "Contact")

    code, out = setup(loaded, capsys)
    assert code == 0, out
    created = set(hubspot_properties(bare.hubspot)) - before
    assert created == HUBSPOT_CREATED  # lifecyclestage and hubspot_owner_id are HubSpot's
    assert f"created {len(HUBSPOT_CREATED) + 2 * len(SALESFORCE_FIELDS)} fields" in out
    properties = hubspot_properties(bare.hubspot)
    assert {p.group_name for n, p in properties.items() if n in created} == {"syncer"}
    assert (properties["syncer_score"].type, properties["syncer_score"].field_type) == (
        "number", "number")
    assert properties["syncer_reasons"].field_type == "textarea"
    assert properties["syncer_fit_grade"].type == "string"
    for object_name in ("Lead", "Contact"):
        assert salesforce_described(bare.salesforce, object_name) >= SALESFORCE_FIELDS
    assert "OwnerId" not in out and "lifecyclestage" not in out  # standard: never created

    code, out = setup(loaded, capsys)
    assert code == 0
    assert "hubspot: all 12 fields present" in out
    assert "salesforce: all 12 fields present" in out
    assert "created 0 fields" in out


def test_stage_becomes_an_enumeration_with_the_config_values(
        bare: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = sandbox_config_data(bare, f"sqlite:///{tmp_path / 'state.db'}", monkeypatch)
    data["connectors"][0]["fields"]["stage"] = "syncer_stage"
    loaded = write_config(tmp_path / "syncer.yaml", data)
    code, out = setup(loaded, capsys)
    assert code == 0, out
    stage = hubspot_properties(bare.hubspot)["syncer_stage"]
    assert (stage.type, stage.field_type) == ("enumeration", "select")
    assert [value for value, _ in stage.options] == [
        "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
        "customer"]
    assert [label for _, label in stage.options] == [
        "Subscriber", "Lead", "MQL", "SQL", "Opportunity", "Customer"]


def test_a_sync_before_setup_stops_and_names_it(
        bare: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One clear error, not a failed write per record."""
    loaded = config_for(bare, tmp_path, monkeypatch)
    with pytest.raises(ConnectorError, match=r"Fix: `syncer setup` creates"):
        sync_once(loaded)


def test_a_sync_after_setup_writes_the_new_fields(
        bare: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    loaded = config_for(bare, tmp_path, monkeypatch)
    assert setup(loaded, capsys)[0] == 0
    summary = sync_once(loaded)
    assert not sum(summary.failures.values()), summary.failures
    assert isinstance(bare.hubspot, HubSpotSandbox)
    assert isinstance(bare.salesforce, SalesforceSandbox)
    scored = [r for r in bare.hubspot.changed_records()
              if r.get("syncer_score") not in (None, "")]
    assert scored and all(r.get("syncer_reasons") for r in scored)
    leads = [r for r in bare.salesforce.changed_records()
             if r.get("Syncer_Score__c") is not None]
    assert leads and any(r.get("Syncer_Stage__c") for r in leads)
    assert all(r.get("Syncer_Reasons__c") for r in leads)


def test_a_salesforce_user_without_the_right_gets_the_metadata_to_deploy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    running = bare_sandboxes(can_customize=False)
    running.hubspot.start()
    running.salesforce.start()
    try:
        loaded = config_for(running, tmp_path, monkeypatch)
        code, out = setup(loaded, capsys)
        assert code == 1
        assert "not allowed to create Lead.Syncer_Score__c" in out
        assert "INSUFFICIENT_ACCESS" in out
        assert "force-app/main/default/objects/Lead/fields/Syncer_Score__c.field-meta.xml" in out
        assert "<type>Number</type>" in out and "<precision>18</precision>" in out
        assert "<type>Picklist</type>" in out and "<label>SAL</label>" in out
        assert not SALESFORCE_FIELDS & salesforce_described(running.salesforce, "Lead")
        assert "hubspot: created syncer_score" not in out  # HubSpot's are created...
        assert set(hubspot_properties(running.hubspot)) >= HUBSPOT_CREATED
    finally:
        running.hubspot.stop()
        running.salesforce.stop()


def settings_of(sandbox: Sandbox) -> ConnectorSettings:
    return ConnectorSettings(name=sandbox.kind, kind=sandbox.kind, base_url=sandbox.base_url,
                             credentials=dict(sandbox.credentials), ca_file=sandbox.ca_file)


def test_hubspot_sandbox_answers_property_creates_as_hubspot_does(bare: Sandboxes) -> None:
    """201 and then listed; 409 for a taken name or group; 400 for what HubSpot refuses."""
    from hubspot import HubSpot  # type: ignore[import-untyped]
    from hubspot.crm.properties import (  # type: ignore[import-untyped]
        PropertyCreate,
        PropertyGroupCreate,
    )
    from hubspot.crm.properties.exceptions import ApiException  # type: ignore[import-untyped]

    client = HubSpot(access_token=bare.hubspot.credentials["access_token"],
                     host=bare.hubspot.base_url, retry=False)
    core, groups = client.crm.properties.core_api, client.crm.properties.groups_api
    assert core.get_all("contacts").results  # HubSpot's own properties are there

    def refused(call: Any) -> tuple[int, str]:
        with pytest.raises(ApiException) as info:
            call()
        return int(info.value.status), json.loads(info.value.body)["category"]

    text = PropertyCreate(name="syncer_x", label="X", type="string", field_type="text",
                          group_name="syncer")
    assert refused(lambda: core.create("contacts", text)) == (400, "VALIDATION_ERROR")
    groups.create("contacts", PropertyGroupCreate(name="syncer", label="Syncer"))
    assert refused(lambda: groups.create("contacts", PropertyGroupCreate(
        name="syncer", label="Syncer"))) == (409, "OBJECT_ALREADY_EXISTS")
    created = core.create("contacts", text)
    assert (created.name, created.type, created.field_type) == ("syncer_x", "string", "text")
    assert "syncer_x" in {p.name for p in core.get_all("contacts").results}
    assert core.get_by_name("contacts", "syncer_x").group_name == "syncer"
    assert refused(lambda: core.create("contacts", text)) == (409, "OBJECT_ALREADY_EXISTS")
    for bad in (PropertyCreate(name="hs_mine", label="X", type="string", field_type="text",
                               group_name="syncer"),
                PropertyCreate(name="syncer_y", label="Y", type="number", field_type="text",
                               group_name="syncer"),
                PropertyCreate(name="syncer_z", label="Z", type="enumeration",
                               field_type="select", group_name="syncer")):
        assert refused(lambda bad=bad: core.create("contacts", bad)) == (400, "VALIDATION_ERROR")


def test_salesforce_sandbox_answers_tooling_creates_as_salesforce_does(bare: Sandboxes) -> None:
    """201 and then in describe; DUPLICATE_DEVELOPER_NAME; FIELD_INTEGRITY_EXCEPTION."""
    from connectors.salesforce.fields import SalesforceFields

    admin = SalesforceFields(settings_of(bare.salesforce))

    def post(full_name: str, metadata: dict[str, Any]) -> Any:
        return admin._call("tooling", lambda sf: sf.toolingexecute(
            "sobjects/CustomField", method="POST",
            data={"FullName": full_name, "Metadata": metadata}))

    try:
        with pytest.raises(ConnectorError, match="FIELD_INTEGRITY_EXCEPTION"):
            post("Lead.Syncer_Fit_Grade__c", {"type": "Text", "label": "Grade"})  # no length
        with pytest.raises(ConnectorError, match="FIELD_INTEGRITY_EXCEPTION"):
            post("Lead.Syncer_Stage__c", {"type": "Picklist", "label": "Stage"})  # no values
        assert "syncer_fit_grade__c" not in admin.present("Lead")
        answer = post("Lead.Syncer_Fit_Grade__c",
                      {"type": "Text", "label": "Grade", "length": 8})
        assert answer["success"] is True and answer["id"].startswith("00N")
        assert "syncer_fit_grade__c" in admin.present("Lead")
        assert "syncer_fit_grade__c" not in admin.present("Contact")  # per object
        with pytest.raises(ConnectorError, match="DUPLICATE_DEVELOPER_NAME"):
            post("Lead.Syncer_Fit_Grade__c", {"type": "Text", "label": "Grade", "length": 8})
    finally:
        admin.close()


class FakeAdmin:
    """A CRM with `fields`, refusing every create with NoRight when `refuse`."""

    objects: tuple[str, ...] = ("contacts",)

    def __init__(self, fields: set[str], refuse: bool = False) -> None:
        self.fields, self.refuse = fields, refuse
        self.created: list[str] = []

    def present(self, object_name: str) -> set[str]:
        return set(self.fields)

    def creatable(self, name: str) -> bool:
        return not name.startswith("hs_")

    def prepare(self, dry_run: bool) -> list[str]:
        if self.refuse:
            raise NoRight("no scope", "GROUP")
        return []

    def create(self, object_name: str, need: FieldNeed) -> None:
        self.created.append(need.name)

    def definition(self, object_name: str, need: FieldNeed) -> str:
        return f"DEF {need.name}"

    def close(self) -> None:
        pass


def test_a_missing_standard_field_is_a_typo_to_fix_never_created() -> None:
    admin = FakeAdmin({"lifecyclestage"})
    needs = [FieldNeed("hs_lead_statuz", "text", "x", "x"), FieldNeed("syncer_a", "number",
                                                                        "a", "a")]
    report = set_up(admin, "hubspot", needs, dry_run=False)
    assert admin.created == ["syncer_a"]
    assert report.problems == ["hubspot: contacts has no field hs_lead_statuz, and it is not "
                               "a custom field setup may create. Fix: check its spelling in "
                               "the config"]


def test_without_the_right_for_the_group_every_definition_goes_to_the_admin() -> None:
    admin = FakeAdmin(set(), refuse=True)
    needs = [FieldNeed("syncer_a", "number", "a", "a"), FieldNeed("syncer_b", "text", "b", "b")]
    report = set_up(admin, "hubspot", needs, dry_run=False)
    assert not admin.created
    assert report.for_admin == {"property group": "GROUP", "contacts.syncer_a": "DEF syncer_a",
                                "contacts.syncer_b": "DEF syncer_b"}
