"""What the pages show: a synced state on every page, the audit log's keyset pages and
exports, and a discarded dead letter's audit rows (server-side, through TestClient)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncer.store import dead_letters
from syncer.store.audit import AuditFilter
from syncer.store.audit_pages import audit_page
from tests.conftest import NOW, Sandboxes, sync_once
from tests.sandbox_control import control
from tests.web.conftest import ADMIN, VIEWER, Admin, build_admin, csrf_of, sandbox_web_config


@pytest.fixture
def synced(sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Admin]:
    admin = build_admin(sandbox_web_config(sandboxes, tmp_path, monkeypatch))
    yield admin
    admin.store.close()


def test_every_page_shows_the_synced_state(synced: Admin, sandboxes: Sandboxes) -> None:
    leads = [r for r in sandboxes.salesforce.records() if r["type"] == "Lead"][:2]
    control(sandboxes.salesforce, "lock_rows", ids=[r["Id"] for r in leads])
    summary = sync_once(synced.loaded)
    client = synced.client(VIEWER)

    overview = client.get("/").text
    assert summary.run_id in overview and 'data-testid="open-letters">2<' in overview
    assert summary.run_id in client.get("/runs").text
    run = client.get(f"/runs/{summary.run_id}").text
    assert "locked or converted" in run and "partial" in run

    letters = client.get("/dead-letters").text
    assert "2 open dead letters" in letters and "UNABLE_TO_LOCK_ROW" in letters
    assert "disabled" in letters and "Retry selected" not in letters  # a viewer

    lead = leads[0]
    person = client.get("/person", params={"q": lead["Id"]}).text
    assert str(lead["Email"]).lower() in person and "Reasons" in person

    funnel = client.get("/funnel").text
    assert funnel.count("<svg") == 6 and "People by stage now" in funnel

    model = client.get("/model").text
    version = re.search(r'data-testid="active-version">([^<]+)<', model)
    assert version and version.group(1).startswith("default@")
    audit = client.get("/audit", params={"outcome": "failed"}).text
    assert audit.count('class="outcome-failed"') >= 2


def _fill_audit(admin: Admin, count: int) -> None:
    rows = [{"at": NOW, "run_id": f"run{i % 3}", "connector": "hubspot",
             "record_id": f"r{i}", "person_key": f"p{i}@example.com", "field": "score",
             "old_value": None, "new_value": str(i),
             "outcome": "failed" if i % 10 == 0 else "written", "error": None,
             "reasons": [], "model_version": "m@1"} for i in range(count)]
    with admin.store.transaction() as tx:
        admin.store.append_audit(tx, rows)


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r"<tr>\s*<td>(\d+)</td>", html)]


def test_audit_pages_follow_the_keyset_and_export_every_match(empty_admin: Admin) -> None:
    _fill_audit(empty_admin, 130)
    client = empty_admin.client(VIEWER)
    first = client.get("/audit").text
    assert _ids(first) == list(range(130, 80, -1))
    older = re.search(r'hx-get="(/audit\?before=(\d+)&amp;part=rows)"', first)
    assert older and older.group(2) == "81"
    second = client.get(older.group(1).replace("&amp;", "&"),
                        headers={"HX-Request": "true"}).text
    assert "<html" not in second and _ids(second) == list(range(80, 30, -1))
    third = client.get("/audit?before=31").text
    assert _ids(third) == list(range(30, 0, -1)) and "That is every matching row" in third

    failed = client.get("/audit", params={"outcome": "failed", "run": "run0"}).text
    assert _ids(failed) == [i + 1 for i in range(120, -1, -30)]

    exported = client.get("/audit/export", params={"format": "csv", "outcome": "failed"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(exported.text)))) == 13
    lines = client.get("/audit/export?format=jsonl").text.splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(1, 131))
    assert client.get("/audit/export?format=xml").status_code == 400
    assert client.get("/audit?since=yesterday").status_code == 400

    verify = client.get("/audit/verify", headers={"HX-Request": "true"}).text
    assert "chain OK" in verify and "130 rows verified" in verify


def test_a_discarded_dead_letter_leaves_an_audit_row_per_field(empty_admin: Admin) -> None:
    with empty_admin.store.transaction() as tx:
        dead_letters.park(tx, [{"connector": "salesforce", "record_id": "00Q1",
                                "object_type": "Lead", "person_key": "p@example.com",
                                "fields": {"Syncer_Score__c": "40", "Syncer_Stage__c": "MQL"},
                                "error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                "message": "no"}], NOW, "run1")
    (letter,) = dead_letters.open_letters(empty_admin.store)
    client = empty_admin.client(ADMIN)
    token = csrf_of(client.get("/dead-letters").text)
    response = client.post("/dead-letters/discard", data={"csrf": token, "id": str(letter.id)},
                           headers={"HX-Request": "true"})
    assert "discarded 1 dead letter" in response.text and "0 open dead letters" in response.text
    assert dead_letters.open_letters(empty_admin.store) == []
    rows = empty_admin.store.audit_rows(outcome="discarded")
    assert [(r["record_id"], r["field"], r["new_value"]) for r in rows] == [
        ("00Q1", "Syncer_Score__c", "40"), ("00Q1", "Syncer_Stage__c", "MQL")]
    assert all(f"discarded by {ADMIN} in the web admin" in r["error"] for r in rows)
    assert empty_admin.store.audit_log.verify().ok


def test_a_filter_no_index_narrows_reads_a_bounded_stretch_per_page(
        empty_admin: Admin) -> None:
    _fill_audit(empty_admin, 130)  # failed: ids 1, 11, ..., 121
    log, where = empty_admin.store.audit_log, AuditFilter(outcome="failed")
    pages, before = [], None
    while True:
        page = audit_page(log, where, before=before, window=40)
        pages.append(([row["id"] for row in page.rows], page.searched_down_to))
        if page.next_before is None:
            break
        before = page.next_before
    assert pages == [([121, 111, 101, 91], 91), ([81, 71, 61, 51], 51),
                     ([41, 31, 21, 11], 11), ([1], None)]
    # an index narrows a person's rows: no window, whatever its size
    person = audit_page(log, AuditFilter(person="p3@example.com"), window=1)
    assert [row["id"] for row in person.rows] == [4] and person.next_before is None
