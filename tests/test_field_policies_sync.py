"""Field ownership end to end: the same person field edited in HubSpot and/or Salesforce
between two real syncs ends up as each policy documents, in both sandbox CRMs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.world import IN_HUBSPOT, IN_SALESFORCE
from syncer.domain.config import LoadedConfig
from syncer.store.repository import Store
from tests.conftest import Sandboxes, sandbox_config_data, sync_once, write_config
from tests.sandbox_control import control

#: (policy, scenario) -> (HubSpot title, Salesforce title) after the second sync.
#: Scenario "both": HubSpot set to "VP Sales", then Salesforce (later) to "Head of RevOps".
#: Scenario "hubspot": only HubSpot set to "VP Sales". "cleared": Salesforce cleared.
ORIGINAL = "<original>"
EXPECTED: dict[tuple[str, str], tuple[str | None, str | None]] = {
    ("hubspot_wins", "both"): ("VP Sales", "VP Sales"),
    ("salesforce_wins", "both"): ("Head of RevOps", "Head of RevOps"),
    ("latest", "both"): ("Head of RevOps", "Head of RevOps"),
    ("fill_if_blank", "both"): ("VP Sales", "Head of RevOps"),
    ("never", "both"): ("VP Sales", "Head of RevOps"),
    ("hubspot_wins", "hubspot"): ("VP Sales", "VP Sales"),
    ("salesforce_wins", "hubspot"): (ORIGINAL, ORIGINAL),
    ("latest", "hubspot"): ("VP Sales", "VP Sales"),
    ("fill_if_blank", "hubspot"): ("VP Sales", ORIGINAL),
    ("never", "hubspot"): ("VP Sales", ORIGINAL),
    ("hubspot_wins", "cleared"): (ORIGINAL, ORIGINAL),
    ("salesforce_wins", "cleared"): (ORIGINAL, None),  # a blank winner erases nothing
    ("latest", "cleared"): (None, None),  # clearing is an edit, and it is propagated
    ("fill_if_blank", "cleared"): (ORIGINAL, ORIGINAL),
    ("never", "cleared"): (ORIGINAL, None),
}


def configure(tmp_path: Path, boxes: Sandboxes, state_url: str,
              monkeypatch: pytest.MonkeyPatch, policy: str) -> LoadedConfig:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(boxes, state_url, monkeypatch)
    data["shared_fields"] = [{"name": "title", "policy": policy,
                              "fields": {"hubspot": "jobtitle", "salesforce": "Title"}}]
    return write_config(tmp_path / "syncer.yaml", data)


def pair(boxes: Sandboxes) -> tuple[dict[str, Any], dict[str, Any]]:
    """A person in both CRMs with a title on both sides (the same one, from the world)."""
    both = IN_HUBSPOT | IN_SALESFORCE
    for index in range(boxes.world.size):
        person = boxes.world.person(index)
        if boxes.world.flags(index) & both != both or not person.title:
            continue
        email = person.email.lower()
        hubspot = next(r for r in boxes.hubspot.records() if r["email"].lower() == email)
        salesforce = next(r for r in boxes.salesforce.records()
                          if (r.get("Email") or "").lower() == email)
        return hubspot, salesforce
    raise AssertionError("no person in both CRMs")


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("policy", "scenario"), sorted(EXPECTED))
def test_each_policy_settles_edits_as_documented(
        tmp_path: Path, sandboxes: Sandboxes, state_url: str,
        monkeypatch: pytest.MonkeyPatch, policy: str, scenario: str) -> None:
    loaded = configure(tmp_path, sandboxes, state_url, monkeypatch, policy)
    hubspot, salesforce = pair(sandboxes)
    original = hubspot["jobtitle"]
    assert salesforce["Title"] == original
    sync_once(loaded)  # both sides agree: the base is recorded

    time.sleep(1.1)  # edits land after the first run, in distinct seconds
    if scenario in ("both", "hubspot"):
        control(sandboxes.hubspot, "edit", id=hubspot["id"], field="jobtitle", value="VP Sales")  # type: ignore[arg-type]
    if scenario == "both":
        time.sleep(1.1)
        control(sandboxes.salesforce, "edit", id=salesforce["Id"],  # type: ignore[arg-type]
                field="Title", value="Head of RevOps")
    if scenario == "cleared":
        control(sandboxes.salesforce, "edit", id=salesforce["Id"], field="Title", value=None)  # type: ignore[arg-type]
    second = sync_once(loaded)

    want_hubspot, want_salesforce = (original if v == ORIGINAL else v
                                     for v in EXPECTED[(policy, scenario)])
    assert (sandboxes.hubspot.record(hubspot["id"]).get("jobtitle") or None) == want_hubspot
    assert (sandboxes.salesforce.record(salesforce["Id"]).get("Title") or None) == \
        want_salesforce
    store = Store.open(loaded.state_url)
    try:
        title_writes = [r for r in store.audit_rows(run_id=second.run_id, outcome="written")
                        if r["field"] in ("jobtitle", "Title")]
    finally:
        store.close()
    changed = {("hubspot", want_hubspot != (
        "VP Sales" if scenario in ("both", "hubspot") else original)),
        ("salesforce", want_salesforce != (
            "Head of RevOps" if scenario == "both"
            else None if scenario == "cleared" else original))}
    assert {r["connector"] for r in title_writes} == {c for c, did in changed if did}
    for row in title_writes:  # each write says which side won and why
        assert any(r["rule_id"] == "shared.title" for r in row["reasons"])

    third = sync_once(loaded)  # settled: nothing left to write, nothing flapping back
    assert third.fields_written.total() == 0
