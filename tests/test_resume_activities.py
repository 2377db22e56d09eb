"""A full sync killed in its activities goes on after its last committed activities page
(issue 18 item 8), as its people do (tests/test_resume_full_sync.py).

The sync runs as a `syncer sync --once` child, killed with SIGKILL while a chosen answer of
the sandbox is held back (computed, never delivered: every page before it is committed
then): part way through HubSpot's events, then, in the restart, part way through
Salesforce's CampaignMember pages. The two pulls run side by side (syncer/run/lanes.py), so
while one CRM's answer is held the other CRM's activity answers are kept back too (a gate),
whatever the machine's speed. The sandboxes' answers show which activity rows each run was
served: no row of a committed page is served again, and the CRMs and the stored activities
end as after an uninterrupted run.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from sqlalchemy import create_engine, delete, select, text

from connectors.hubspot.connector import HubSpotConnector
from connectors.retry import RetryPolicy
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.settings import HubSpotLimits, SalesforceLimits
from connectors.sandbox.world import World
from syncer.domain.connector import ConnectorError, ConnectorSettings
from syncer.store import full_pulls, tables
from syncer.store.full_pulls import ACTIVITY_COLUMNS, FullPullMark
from syncer.store.migrations import LATEST, migrate
from tests.conftest import NOW, Sandboxes
from tests.sandbox_control import result
from tests.test_kill_restart import state_of
from tests.test_resume_full_sync import (
    HoldPoint,
    configure,
    kill_when_held,
    mark_of,
    sync_process,
    world,
)

#: HubSpot events a page (the client asks 1,000; the log asks fewer, so 2,400 people's
#: events make about thirty pages); Salesforce pages queries by 200 (the sandbox's limit).
EVENTS_PAGE = 200
ACTIVITY_OBJECTS = frozenset({"CampaignMember", "Task", "Event", "Opportunity"})
NO_WAIT = RetryPolicy(attempts=4, initial=0.01, maximum=0.05, sleep=lambda _: None)


@dataclass(frozen=True)
class Answer:
    """One answer holding activity rows: which CRM, the request, the (kind, id) rows."""

    crm: str
    request: str
    rows: tuple[tuple[str, str], ...]


def activity_rows(crm: str, path: str, body: bytes) -> tuple[tuple[str, str], ...] | None:
    """The activity rows of an answer (HubSpot events; Salesforce CampaignMember, Task,
    Event and Opportunity rows of a query or a Composite), None for any other answer."""
    if crm == "hubspot":
        if not path.startswith("/events/v3/events"):
            return None
        return tuple(("event", str(e["id"])) for e in json.loads(body).get("results", []))
    if not (path.endswith("/composite") or "/query" in path):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    found: list[tuple[str, str]] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            kind = (value.get("attributes") or {}).get("type")
            if kind in ACTIVITY_OBJECTS and "Id" in value:
                found.append((str(kind), str(value["Id"])))
                return
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)
    walk(data)
    return tuple(found) or None


class Answers(HoldPoint):
    """Every activity answer the sandboxes delivered, in order; and a hold: the `at`-th
    activity answer of one CRM is computed but kept back until release() (the child waits
    for it alive, every page before it committed), then delivered to nobody. With a
    `gate`, every activity answer of the other CRM is kept back (and delivered to nobody)
    too until release()."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[Answer] = []
        self._armed: tuple[str, int] | None = None

    def arm(self, crm: str, at: int, *, gate: str | None = None) -> None:
        with self._lock:
            self._armed = (crm, at)
        self._rearm(gate)

    def _disarm(self) -> None:
        self._armed = None

    def mark(self) -> int:
        with self._lock:
            return len(self.delivered)

    def since(self, start: int, crm: str) -> list[Answer]:
        with self._lock:
            return [a for a in self.delivered[start:] if a.crm == crm]

    def attach(self, crm: str, sandbox: Any) -> None:
        app = sandbox._wsgi

        def answered(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            method, path = str(environ["REQUEST_METHOD"]), str(environ["PATH_INFO"])
            query = str(environ.get("QUERY_STRING", ""))
            if crm == "hubspot" and path.startswith("/events/v3/events"):
                query = re.sub(r"(^|&)limit=\d+", rf"\g<1>limit={EVENTS_PAGE}", query)
                environ["QUERY_STRING"] = query
            request = f"{method} {path}?{unquote_plus(query)}"
            if method == "POST" and path.endswith("/composite"):
                sent = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(sent)
                request += " " + unquote_plus(sent.decode())
            started: list[Any] = []
            body = b"".join(app(environ, lambda *args: started.append(args)))
            rows = activity_rows(crm, path, body)
            held = gated = False
            if rows is not None:
                with self._lock:
                    gated = self._gated == crm
                    if not gated and self._armed is not None and self._armed[0] == crm:
                        self._armed = (crm, self._armed[1] - 1)
                        held = self._armed[1] == 0
                    if not held and not gated:
                        self.delivered.append(Answer(crm, request, rows))
            if held:
                self._hold()
            elif gated:
                self._keep_back()
            start_response(*started[0])
            return [body]
        sandbox._wsgi = answered


@contextmanager
def answering_sandboxes(answers: Answers) -> Iterator[Sandboxes]:
    shared = world()
    boxes = Sandboxes(shared, HubSpotSandbox(shared, limits=HubSpotLimits(list_page_max=50)),
                      SalesforceSandbox(shared, limits=SalesforceLimits(query_batch=200)))
    for crm, box in (("hubspot", boxes.hubspot), ("salesforce", boxes.salesforce)):
        answers.attach(crm, box)
        box.start()
    try:
        yield boxes
    finally:
        boxes.hubspot.stop()
        boxes.salesforce.stop()


def kill_at(config: Path, answers: Answers, crm: str, at: int, *, state: Path,
            gate: str | None = None) -> None:
    """Kill a sync child while its `at`-th activity answer of `crm` is held back, once
    the activity pages before it are committed, every activity answer of `gate` kept back
    too. (The held answer is the `at`-th of the activity listing here: its first page,
    and Salesforce's first Composite, count as one each.)"""
    answers.arm(crm, at, gate=gate)

    def committed() -> bool:
        mark = mark_of(state, crm)
        return mark is not None and mark.activity_pages == at - 1
    kill_when_held(config, answers, committed)


def stored_activities(state: Path) -> set[tuple[object, ...]]:
    """Every stored activity row of the state database."""
    engine = create_engine(f"sqlite:///{state}")
    try:
        with engine.connect() as connection:
            a = tables.activities.c
            return {(r.connector, r.source_id, r.record_id, r.type, r.occurred_at,
                     json.dumps(r.attributes, sort_keys=True))
                    for r in connection.execute(select(a.connector, a.source_id, a.record_id,
                                                       a.type, a.occurred_at, a.attributes))}
    finally:
        engine.dispose()


def ids(answers: Iterable[Answer], kind: str | None = None) -> set[str]:
    return {i for a in answers for k, i in a.rows if kind is None or k == kind}


@pytest.mark.slow
def test_a_full_sync_killed_in_its_activities_reads_no_committed_page_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference_answers = Answers()
    with answering_sandboxes(reference_answers) as reference:
        config = configure(tmp_path / "reference.yaml", reference,
                           tmp_path / "reference.db", monkeypatch)
        assert sync_process(config).wait(timeout=600) == 0
        expected = state_of(reference)
    expected_activities = stored_activities(tmp_path / "reference.db")
    assert len(reference_answers.since(0, "hubspot")) > 10  # events pages of 200
    campaign_pages = [a for a in reference_answers.since(0, "salesforce")
                      if any(k == "CampaignMember" for k, _ in a.rows)]
    assert len(campaign_pages) > 6

    answers, state = Answers(), tmp_path / "killed.db"
    with answering_sandboxes(answers) as boxes:
        config = configure(tmp_path / "killed.yaml", boxes, state, monkeypatch)
        # 3 events pages committed, the 4th held; Salesforce's people pulled, its
        # activities kept back
        kill_at(config, answers, "hubspot", 4, state=state, gate="salesforce")
        assert not answers.since(0, "salesforce")
        first = answers.since(0, "hubspot")
        events_mark = mark_of(state, "hubspot")
        start = answers.mark()
        # the restart is killed in Salesforce's CampaignMembers (the Composite, their
        # first page and Task's, and 3 more pages committed, the 5th held) while
        # HubSpot's events, from the mark on, are kept back
        kill_at(config, answers, "salesforce", 5, state=state, gate="hubspot")
        second = {crm: answers.since(start, crm) for crm in ("hubspot", "salesforce")}
        campaign_mark = mark_of(state, "salesforce")
        start = answers.mark()
        assert sync_process(config).wait(timeout=600) == 0
        third = {crm: answers.since(start, crm) for crm in ("hubspot", "salesforce")}
        got = state_of(boxes)
        left = mark_of(state, "hubspot"), mark_of(state, "salesforce")

    assert isinstance(events_mark, FullPullMark) and events_mark.pulled
    assert (events_mark.activity_pages, events_mark.activities_done) == (3, False)
    assert (events_mark.activities_position or "").startswith("events:")
    assert len(first) == 3
    committed_events = ids(first)
    # The last run went on from the mark's cursor: no committed events page again.
    assert not second["hubspot"]
    hubspot_restart = third["hubspot"]
    assert f"after={(events_mark.activities_position or '').partition(':')[2]}" \
        in hubspot_restart[0].request
    assert not committed_events & ids(hubspot_restart)
    assert ids(first) | ids(hubspot_restart) == ids(reference_answers.since(0, "hubspot"))

    assert isinstance(campaign_mark, FullPullMark) and campaign_mark.pulled
    assert (campaign_mark.activity_pages, campaign_mark.activities_done) == (4, False)
    position = campaign_mark.activities_position or ""
    assert position.startswith("CampaignMember:")
    committed_members = ids(second["salesforce"], "CampaignMember")
    assert len(committed_members) == 4 * 200
    assert position.rsplit(":", 1)[1] in committed_members  # the last committed row
    restart = third["salesforce"]
    assert f"Id > '{position.rsplit(':', 1)[1]}'" in restart[0].request
    assert not committed_members & ids(restart), "a committed CampaignMember page came again"
    assert committed_members | ids(restart, "CampaignMember") == ids(campaign_pages,
                                                                     "CampaignMember")
    # The last run read each HubSpot events page left exactly once.
    assert len(hubspot_restart) == len(reference_answers.since(0, "hubspot")) - len(first)

    assert got == expected
    assert stored_activities(state) == expected_activities
    assert left == (None, None)  # the full sync is over: nothing left to resume


# -- positions, in-process, with rows that share a stamp --------------------------------

SALES_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def salesforce_pages(box: SalesforceSandbox) -> SalesforceConnector:
    return SalesforceConnector(ConnectorSettings(
        name="sf", kind="salesforce", base_url=box.base_url,
        credentials=dict(box.credentials), writeback_fields=("Syncer_Stage__c",),
        ca_file=box.ca_file, timeout_seconds=10.0, options={"page_size": 200}), retry=NO_WAIT)


def hubspot_pages(box: HubSpotSandbox) -> HubSpotConnector:
    return HubSpotConnector(ConnectorSettings(
        name="hubspot", kind="hubspot", base_url=box.base_url,
        credentials=dict(box.credentials), writeback_fields=("lifecyclestage",),
        timeout_seconds=10.0, options={"retry_policy": NO_WAIT, "engagements": True,
                                       "events_page_size": 100, "search_cap": 400}))


@contextmanager
def connector_with_sales_activity(kind: str, count: int = 450) -> Iterator[Any]:
    """A connector on a sandbox where reps logged `count` calls or meetings: Salesforce's
    meetings (Events) share one CreatedDate (the clock stands still), so only the Id
    orders them; HubSpot's calls come a second apart past the search cap (400 here)."""
    clock = {"now": SALES_NOW}
    box: Any
    if kind == "salesforce":
        box = SalesforceSandbox(World(seed=5, size=120, now=SALES_NOW),
                                clock=lambda: clock["now"])
    else:
        box = HubSpotSandbox(World(seed=4, size=120, now=SALES_NOW),
                             clock=lambda: clock["now"], requests_per_10s=None,
                             search_requests_per_second=None)
    box.start()
    try:
        people = [r for r in box.records() if kind == "hubspot"
                  or (r["type"] in ("Lead", "Contact") and not r.get("IsConverted"))]
        for n in range(count):
            record = people[n % 7]
            result(box, "log_activity", id=str(record["Id" if kind == "salesforce" else "id"]),
                   kind="meeting" if kind == "salesforce" else "call",
                   owner="dana.whitfield@syncer-sandbox.test")
            if kind == "hubspot":
                clock["now"] += timedelta(seconds=1)
        connector = salesforce_pages(box) if kind == "salesforce" else hubspot_pages(box)
        try:
            yield connector
        finally:
            connector.close()
    finally:
        box.stop()


@pytest.mark.parametrize("kind", ["hubspot", "salesforce"])
def test_activity_pages_from_a_position_go_on_with_the_next_page(kind: str) -> None:
    with connector_with_sales_activity(kind) as connector:
        since = SALES_NOW - timedelta(days=365)
        flat = [a.source_id for page in connector.activities(since) for a in page]
        pages = [([a.source_id for a in page], position)
                 for page, position in connector.activity_pages(since, None)]
        assert [i for page, _ in pages for i in page] == flat
        # (a call whose stamp the search restarts from, past its cap, comes twice)
        assert len(set(flat)) > 450 and pages[-1][1] is None
        assert all(position is not None for _, position in pages[:-1])
        inside = [position for _, position in pages if position and ":" in position]
        if kind == "salesforce":  # pages inside the meetings, which share one stamp
            assert sum(p.startswith("Event:") for p in inside) >= 2
            assert len({p.partition(":")[2].rpartition(":")[0]
                        for p in inside if p.startswith("Event:")}) == 1
        else:  # events pages, then calls past the cap: a search from a later stamp
            assert sum(p.startswith("events:") for p in inside) >= 2
            assert any(p.startswith("engagements:0:") and not p.endswith(since.isoformat())
                       for p in inside)
        for cut in range(1, len(pages)):
            rest = [a.source_id for page, _ in connector.activity_pages(since,
                                                                      pages[cut - 1][1])
                    for a in page]
            assert rest == [i for page, _ in pages[cut:] for i in page], pages[cut - 1][1]


@pytest.mark.parametrize("kind, position", [
    ("salesforce", "Lead:2026-01-01T00:00:00+00:00:00Q1"), ("salesforce", "Task:yesterday:1"),
    ("hubspot", "engagements:9:0:2026-01-01T00:00:00+00:00"), ("hubspot", "calls")])
def test_a_position_the_connector_never_gives_is_refused(kind: str, position: str) -> None:
    with connector_with_sales_activity(kind, count=0) as connector, \
            pytest.raises(ConnectorError, match="position"):
        next(iter(connector.activity_pages(SALES_NOW, position)))


def test_schema_21_gives_a_schema_20_mark_its_activities_columns(tmp_path: Path) -> None:
    """A full sync left unfinished by a syncer before schema 21 resumes its people as it
    was, and its activities from the start of their window."""
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        migrate(engine)
        with engine.begin() as connection:  # the table as schema 19 made it
            for name in ACTIVITY_COLUMNS:
                connection.execute(text(f"ALTER TABLE full_pulls DROP COLUMN {name}"))
            connection.execute(delete(tables.schema_version))  # a fresh state is at LATEST
            connection.execute(tables.schema_version.insert(),
                               [{"version": 20, "applied_at": NOW}])
            connection.execute(text(
                "INSERT INTO full_pulls (connector, position, pulled, pages, records, "
                "started_at) VALUES ('hubspot', '1234', 0, 7, 700, '2026-12-01 10:00:00')"))
        assert migrate(engine) == LATEST
        with engine.connect() as connection:
            found = full_pulls.mark(connection, "hubspot")
        assert found is not None
        assert (found.position, found.pages, found.records) == ("1234", 7, 700)
        assert (found.activities_since, found.activities_position, found.activities_done,
                found.activity_pages, found.activities) == (None, None, False, 0, 0)
        with engine.begin() as connection:  # and it keeps what the activities pull saves
            full_pulls.save(connection, "hubspot", found.after_activities("events:abc", 3))
        with engine.connect() as connection:
            again = full_pulls.mark(connection, "hubspot")
        assert again is not None
        assert (again.activities_position, again.activity_pages, again.activities,
                again.activities_done) == ("events:abc", 1, 3, False)
    finally:
        engine.dispose()
