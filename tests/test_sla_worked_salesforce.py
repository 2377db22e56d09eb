"""Speed-to-lead SLA with logged sales activity (issue 20, item 2): the owner logs a call
on a routed MQL through the Salesforce sandbox's control API, the whole pipeline pulls it
with who logged it, and the MQL counts as worked; a call by another rep does not; a closed
deal lands on the person as an outcome."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.cli.runtime import Runtime
from syncer.domain.types import ActivityType
from tests.conftest import NOW, sync_once
from tests.sandbox_control import result
from tests.test_sla_sync import (
    QUEUE_USER,
    advance,
    clocked_sandboxes,
    configure,
    rows_by_person,
    sla_rows,
)


def log_call(box: SalesforceSandbox, record_id: str, owner: str) -> str:
    return str(result(box, "log_activity", id=record_id, kind="call", owner=owner)["id"])


def test_a_call_by_the_owner_is_work_a_call_by_someone_else_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_url: str) -> None:
    world = World(seed=3, size=60, now=NOW)
    sla = {"work_within": "4h", "max_reassignments": 1, "then_queue": QUEUE_USER}
    with clocked_sandboxes(world) as boxes:
        salesforce = boxes.salesforce
        assert isinstance(salesforce, SalesforceSandbox)
        loaded = configure(tmp_path, boxes, monkeypatch, sla, state_url)
        sync_once(loaded, NOW)
        routed = {key: rows[0]["owner_email"] for key, rows in rows_by_person(loaded).items()
                  if rows[0]["stage"] == "mql"}
        live = {r["Email"]: r["Id"] for r in salesforce.records()
                if r["type"] in ("Lead", "Contact") and r.get("Email")
                and not r.get("IsConverted")}
        worked, other = sorted(k for k in routed if k in live)[:2]
        reps = {str(u["Email"]) for u in salesforce.org.rows("User") if u.get("IsActive")}
        stranger = sorted(reps - {routed[other], QUEUE_USER,
                                  "integration@syncer-sandbox.test"})[0]

        contact = next(k for k in sorted(routed) if k in live and k not in (worked, other)
                       and live[k].startswith("003"))
        advance(boxes, timedelta(hours=1))
        call = log_call(salesforce, live[worked], routed[worked])
        log_call(salesforce, live[other], stranger)
        deal = result(salesforce, "close_deal", id=live[contact], won=True, amount=5000)
        sync_once(loaded, advance(boxes, timedelta(hours=3, minutes=1)))

        reassigned = {r["person_key"] for r in sla_rows(loaded) if r["rule"] == "sla_reassign"}
        assert other in reassigned and worked not in reassigned
        with Runtime(loaded) as runtime:
            _, activities = runtime.require_store().load_people([worked])[worked]
        (logged,) = [a for a in activities if a.source_id == call]
        assert (logged.type, logged.actor) == (ActivityType.CALL, routed[worked])
        # A closed-won deal on a Contact is an outcome on that person, and work by its
        # owner (the Opportunity's owner is the Contact's).
        assert contact not in reassigned
        with Runtime(loaded) as runtime:
            _, activities = runtime.require_store().load_people([contact])[contact]
        won = [a for a in activities if a.source_id == f"{deal['id']}:closed"]
        assert [a.type for a in won] == [ActivityType.OPPORTUNITY_WON]
        assert won[0].attributes["amount"] == "5000.00"
