"""Speed-to-lead SLA end to end: both sandbox CRMs on a clock the test moves through their
control API, the real clients, the whole pipeline (issue 21, item 4)."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.domain.config import AlertsConfig, LoadedConfig
from syncer.observe.metrics import SyncMetrics
from syncer.ops.alerts import Alerts, WebhookSender
from syncer.ops.report import format_report, owner_funnel
from syncer.run.pipeline import RunSummary
from syncer.store import routing as routing_store
from tests.conftest import (
    EXAMPLE_MODEL,
    NOW,
    Sandboxes,
    sandbox_config_data,
    sync_once,
    write_config,
)
from tests.sandbox_control import control
from tests.test_alerts import Receiver


def email(name: str) -> str:
    return f"{name}@syncer-sandbox.test"


DANA, MARCO, KEIKO, SAMUEL = (email(n) for n in ("dana.whitfield", "marco.bellini",
                                                  "keiko.arai", "samuel.osei"))
QUEUE_USER, RAFAEL = email("priya.raman"), email("rafael.duarte")
SLA_RULES = {"sla_reassign", "sla_queue", "sla_recycle", "sla_requalified"}


@contextmanager
def clocked_sandboxes(world: World) -> Iterator[Sandboxes]:
    """Both CRMs on a clock that starts at the world's NOW and moves only when told."""
    hubspot = HubSpotSandbox(world, clock=lambda: NOW)
    salesforce = SalesforceSandbox(world, clock=lambda: NOW)
    hubspot.start()
    salesforce.start()
    try:
        yield Sandboxes(world, hubspot, salesforce)
    finally:
        hubspot.stop()
        salesforce.stop()


def advance(boxes: Sandboxes, delta: timedelta) -> datetime:
    """Move both sandboxes' clocks through the control API; the time they now show."""
    shown = []
    for box in (boxes.hubspot, boxes.salesforce):
        assert isinstance(box, HubSpotSandbox | SalesforceSandbox)
        control(box, "clock", advance_seconds=delta.total_seconds())
        shown.append(box.now())
    assert shown[0] == shown[1]
    return shown[0]


def configure(tmp_path: Path, boxes: Sandboxes, monkeypatch: pytest.MonkeyPatch,
              sla: dict[str, Any], state_url: str) -> LoadedConfig:
    model: dict[str, Any] = yaml.safe_load(EXAMPLE_MODEL.read_text())
    model["qualification"] = {"mql_score": -1000}  # everyone qualifies
    model.pop("lifecycle", None)
    model["routing"] = {
        "account_match": {"enabled": False},
        "teams": [{"name": "sales", "reps": [
            {"email": DANA}, {"email": MARCO}, {"email": KEIKO, "daily_cap": 1},
            {"email": SAMUEL}]}],
        "out_of_office": [{"email": SAMUEL, "start": NOW.date().isoformat(),
                           "end": (NOW + timedelta(days=30)).date().isoformat()}],
        "sla": sla}
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(model))
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data = sandbox_config_data(boxes, state_url, monkeypatch)
    data["model"] = str(tmp_path / "model.yaml")
    return write_config(tmp_path / "syncer.yaml", data)


def rows_by_person(loaded: LoadedConfig) -> dict[str, list[dict[str, Any]]]:
    with Runtime(loaded) as runtime:
        rows = routing_store.assignment_rows(runtime.require_store())
    found: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for row in rows:
        found[row["person_key"]].append(row)
    return found


def sla_rows(loaded: LoadedConfig) -> list[dict[str, Any]]:
    return [r for rows in rows_by_person(loaded).values() for r in rows if r["rule"] in SLA_RULES]


def owners(boxes: Sandboxes, loaded: LoadedConfig) -> dict[str, dict[str, str | None]]:
    """connector -> person email -> owner email in that CRM now."""
    with Runtime(loaded, open_store=False) as runtime:
        users = {name: {o.owner_id: o.email for o in connector.owners()}
                 for name, connector in runtime.connectors.items()}
    return {
        "hubspot": {r["email"]: users["hubspot"].get(r.get("hubspot_owner_id") or "")
                    for r in boxes.hubspot.records()},
        "salesforce": {r["Email"]: users["salesforce"].get(r.get("OwnerId") or "")
                       for r in boxes.salesforce.records() if r.get("Email")}}


def quiet(summary: RunSummary) -> bool:
    return not summary.fields_written and not summary.owners_assigned


def test_unworked_mqls_are_reassigned_once_then_queued_then_recycled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_url: str) -> None:
    world = World(seed=3, size=60, now=NOW)
    sla = {"work_within": "4h", "max_reassignments": 1, "then_queue": QUEUE_USER,
           "recycle_after": "3d", "recycle_to": "lead"}
    with clocked_sandboxes(world) as boxes:
        loaded = configure(tmp_path, boxes, monkeypatch, sla, state_url)
        sync_once(loaded, NOW)
        routed = {key: rows[0] for key, rows in rows_by_person(loaded).items()
                  if rows[0]["stage"] == "mql"}
        assert len(routed) >= 6
        first_day = collections.Counter(row["owner_email"] for row in routed.values())
        assert first_day[KEIKO] == 1 and first_day[SAMUEL] == 0  # capped, out of office
        people = {p.email: p for p in world.people()}
        hubspot_ids = {r["email"]: r["id"] for r in boxes.hubspot.records()}
        salesforce_ids = {r["Email"]: r["Id"] for r in boxes.salesforce.records()
                          if r.get("Email")}
        keys = sorted(routed)
        met = next(k for k in keys if people[k].in_salesforce)
        staged = next(k for k in keys if people[k].in_hubspot and k != met)
        handed = next(k for k in keys if people[k].in_hubspot and not people[k].in_salesforce
                      and k not in (met, staged))
        worked = {met, staged, handed}

        # Within the SLA: reps work three of them (stage moved on in either CRM, owner
        # changed by hand); nothing else happens.
        advance(boxes, timedelta(hours=1))
        # (the sandbox takes no Task inserts: a logged meeting is tested in test_sla_decision)
        control(boxes.salesforce, "edit", id=salesforce_ids[met],  # type: ignore[arg-type]
                field="Syncer_Stage__c", value="SAL")
        control(boxes.hubspot, "edit", id=hubspot_ids[staged],  # type: ignore[arg-type]
                field="lifecyclestage", value="salesqualifiedlead")
        with Runtime(loaded, open_store=False) as runtime:
            rafael_id = next(o.owner_id for o in runtime.connectors["hubspot"].owners()
                             if o.email == RAFAEL)
        control(boxes.hubspot, "edit", id=hubspot_ids[handed],  # type: ignore[arg-type]
                field="hubspot_owner_id", value=rafael_id)
        before = sync_once(loaded, advance(boxes, timedelta(hours=2, minutes=59)))
        assert sla_rows(loaded) == [] and before.owners_assigned == 0

        # One minute after the SLA: each unworked MQL reassigned exactly once.
        first_owner = {key: row["owner_email"] for key, row in routed.items()}
        breached = sync_once(loaded, advance(boxes, timedelta(minutes=1, seconds=1)))
        reassigned = {r["person_key"]: r for r in sla_rows(loaded)}
        assert set(reassigned) == set(routed) - worked
        for key, row in reassigned.items():
            assert row["rule"] == "sla_reassign", row
            assert row["owner_email"] not in (first_owner[key], KEIKO, SAMUEL)  # tried,
            assert row["reason"].startswith(f"SLA: {first_owner[key]} did not work this "
                                            "MQL within 4h")  # capped, away
        crm = owners(boxes, loaded)
        both = [k for k in reassigned if people[k].in_hubspot and people[k].in_salesforce]
        assert both
        for key in reassigned:
            for name in ("hubspot", "salesforce"):
                if key in crm[name]:
                    assert crm[name][key] == reassigned[key]["owner_email"], (name, key)
        assert crm["hubspot"][handed] == RAFAEL
        with Runtime(loaded) as runtime:
            store = runtime.require_store()
            audited = store.audit_rows(person_key=both[0], run_id=breached.run_id)
        owner_fields = {r["connector"]: r for r in audited if r["field"] in
                        ("hubspot_owner_id", "OwnerId")}
        assert set(owner_fields) == {"hubspot", "salesforce"}
        assert all(r["outcome"] == "written" for r in owner_fields.values()), owner_fields

        assert breached.stats()["sla"] == {"breaches": len(reassigned),
                                           "reassigned": len(reassigned)}
        metrics = SyncMetrics()
        with Runtime(loaded) as runtime:
            (record,) = runtime.require_store().runs(1, connector="hubspot", finished=True,
                                                     skipped=False)
        metrics.observe_run(record)
        assert f'syncer_sla_total{{event="reassigned"}} {float(len(reassigned))}' in \
            metrics.render().decode()
        with Receiver() as receiver, Runtime(loaded) as runtime:
            alerts = Alerts(AlertsConfig(), WebhookSender(receiver.url))
            alerts.after_run(runtime.require_store(), ["hubspot", "salesforce"])
            alerts.after_run(runtime.require_store(), ["salesforce"])  # the same run: once
            alerts.close()
        (text,) = receiver.texts()
        first = min(reassigned)
        assert text.startswith(f"syncer: {len(reassigned)} MQLs not worked within the "
                               "speed-to-lead SLA")
        assert (f"{first}: SLA: {first_owner[first]} did not work this MQL within 4h" in text
                and f"reassigned to {reassigned[first]['owner_email']}" in text)
        reason = {r["email"]: r["syncer_owner_reason"] for r in boxes.hubspot.records()}
        assert all(reason[k].startswith("SLA: ") for k in reassigned if k in reason)

        # A second sync without more time does nothing.
        again = sync_once(loaded, boxes.hubspot.now())
        assert quiet(again) and len(sla_rows(loaded)) == len(reassigned)

        # After the second owner's SLA too: max_reassignments is 1, so to the queue.
        sync_once(loaded, advance(boxes, timedelta(hours=4, minutes=1)))
        queued = [r for r in sla_rows(loaded) if r["rule"] == "sla_queue"]
        assert {r["person_key"] for r in queued} == set(reassigned)
        assert {r["owner_email"] for r in queued} == {QUEUE_USER}
        assert quiet(sync_once(loaded, advance(boxes, timedelta(minutes=1))))

        # After recycle_after: back to nurture, with the reason; worked people stay.
        sync_once(loaded, advance(boxes, timedelta(days=3)))
        recycled = {r["person_key"] for r in sla_rows(loaded) if r["rule"] == "sla_recycle"}
        assert recycled == set(reassigned)
        stages = {r["email"]: r for r in boxes.hubspot.records()}
        for key in recycled:
            if key in stages:
                assert stages[key]["lifecyclestage"] == "lead"
        assert all(r["rule"] not in SLA_RULES for k in worked
                   for r in rows_by_person(loaded)[k])
        # The next day everyone is re-decided: the recycled stay in nurture, writing nothing
        # new about it.
        moved = len(sla_rows(loaded))
        next_day = sync_once(loaded, advance(boxes, timedelta(days=1)))
        with Runtime(loaded) as runtime:
            rewritten = [r for r in runtime.require_store().audit_rows(run_id=next_day.run_id)
                         if r["person_key"] in recycled and r["field"] in
                         ("lifecyclestage", "Syncer_Stage__c", "hubspot_owner_id", "OwnerId")]
        assert rewritten == [] and len(sla_rows(loaded)) == moved
        everything = [r for rows in rows_by_person(loaded).values() for r in rows]

    # `syncer report`: each breach is the owner's who did not work the person then.
    expected = collections.Counter(first_owner[k] for k in reassigned)
    expected.update(reassigned[k]["owner_email"] for k in reassigned)
    expected[QUEUE_USER] += len(reassigned)  # recycled while with the queue
    funnel = owner_funnel(sorted(everything, key=lambda r: r["id"]), {})
    assert {f.owner: f.sla_breaches for f in funnel if f.sla_breaches} == expected
    assert "SLA missed" in format_report([], funnel)


def test_marks_are_read_ahead_in_pages_and_due_people_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from syncer.qualify.routing_model import Routing
    from syncer.run import sla as run_sla
    from syncer.store.repository import Store

    store = Store.open(f"sqlite:///{tmp_path / 'marks.db'}")
    counts = {"a@x.test": 1, "b@x.test": 4, "c@x.test": 2, "d@x.test": 1, "e@x.test": 3}
    rows = [{"person_key": key, "owner_email": f"o{n}@x.test", "team": "sales",
             "rule": "round_robin" if n == 0 else "sla_reassign", "reason": "r",
             "stage": "mql", "qualified_at": NOW, "run_id": "r", "owner_written_at": None,
             "assigned_at": NOW + timedelta(hours=4 * n) + timedelta(minutes=i)}
            for i, (key, count) in enumerate(counts.items()) for n in range(count)]
    with store.transaction() as tx:
        routing_store.save_assignments(tx, rows)
    routing = Routing.model_validate({"reps": [{"email": "o0@x.test"}], "sla": {
        "work_within": "4h", "max_reassignments": 5, "then_queue": "q@x.test"}})
    monkeypatch.setattr(run_sla, "PAGE", 3)
    review = run_sla.SlaReview(store, routing, NOW + timedelta(hours=4, minutes=3), "r2")
    for key, count in counts.items():
        marks = review.marks_of(key)
        assert [m.owner for m in marks] == [f"o{n}@x.test" for n in range(count)], key
    # due: the SLA of the last owner ran out in the last day (a: 04:00, d: 04:03)
    assert review.due_keys() == ["a@x.test", "d@x.test"]
    store.close()
