"""Benchmark of the web admin's audit page on a large audit log (issue 19: a filtered page of
1,000,000 rows in under 200 ms).

    .venv/bin/python -m bench.web_audit_bench [--rows N] [--keep PATH] [--repeat R]

Fills a SQLite state with N chained audit rows (AuditLog.append in transactions of 10,000,
as syncs write them: 5 fields per record, 10,000 rows per run, one row in 1,000 failed),
then times GET /audit through the whole web stack (FastAPI, session check, the keyset
query of syncer/store/audit_pages.py, Jinja2 rendering of 50 rows) for each filter the
page offers, and the store query alone. Median and worst of R requests after one warm-up.
`--keep PATH` keeps the filled database there and reuses it on the next run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from syncer.domain.config import EXAMPLE_CONFIG, load_config
from syncer.store.audit import AuditFilter
from syncer.store.audit_pages import audit_page
from syncer.store.repository import Store
from syncer.store.web_users import add_user, user_count
from syncer.web.app import create_app
from syncer.web.auth import hash_password

START = datetime(2026, 1, 1, tzinfo=UTC)
FIELDS = ("lifecyclestage", "syncer_score", "syncer_fit_grade", "hubspot_owner_id",
          "syncer_reasons")
REASONS = [{"rule_id": "fit.seniority", "points": 15.0, "detail": "VP title +15",
            "evidence_at": None},
           {"rule_id": "engagement.demo_request", "points": 40.0,
            "detail": "demo request 2026-11-02 +40", "evidence_at": "2026-11-02T10:00:00+00:00"}]


def batch(start: int, count: int) -> list[dict[str, Any]]:
    return [{"at": START + timedelta(seconds=i), "run_id": f"run{i // 10_000:06d}",
             "connector": "hubspot" if i % 3 else "salesforce",
             "record_id": str(100_000 + i // 5), "person_key": f"p{i // 5}@example.com",
             "field": FIELDS[i % 5], "old_value": None if i % 7 == 0 else str(i % 90),
             "new_value": str(i % 100), "outcome": "failed" if i % 1000 == 0 else "written",
             "error": "UNABLE_TO_LOCK_ROW" if i % 1000 == 0 else None,
             "model_version": "example@3f2a9c", "reasons": REASONS}
            for i in range(start, start + count)]


def fill(store: Store, rows: int) -> float:
    began = time.perf_counter()
    have = store.audit_log.head().last_id
    for start in range(have, rows, 10_000):
        with store.transaction() as tx:
            store.append_audit(tx, batch(start, min(10_000, rows - start)))
    return time.perf_counter() - began


def filters(rows: int) -> list[tuple[str, dict[str, str]]]:
    middle = START + timedelta(seconds=rows // 2)
    return [
        ("newest page, no filter", {}),
        ("person (email)", {"person": f"p{rows // 10}@example.com"}),
        ("person (record id)", {"person": str(100_000 + rows // 10)}),
        ("run", {"run": f"run{rows // 20_000:06d}"}),
        ("connector + field", {"connector": "salesforce", "field": "lifecyclestage"}),
        ("outcome failed (1 in 1,000)", {"outcome": "failed"}),
        ("one hour in the middle", {"since": middle.isoformat(),
                                    "until": (middle + timedelta(hours=1)).isoformat()}),
        ("connector, page at row N/2", {"connector": "hubspot", "before": str(rows // 2)}),
        ("outcome matching no row", {"outcome": "discarded"}),
        ("field matching no row", {"field": "no_such_field"}),
        ("person matching no row", {"person": "nobody@example.com"}),
    ]


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    fn()  # warm-up: the first query pays for the pages it reads from disk
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, max(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the database here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    try:
        run(args, folder)
    finally:
        shutil.rmtree(folder)


def run(args: argparse.Namespace, folder: Path) -> None:
    path = args.keep or folder / "state.db"
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["state"] = {"url": f"sqlite:///{path}"}
    data["model"] = str(EXAMPLE_CONFIG.with_name("model.example.yaml"))
    (folder / "syncer.yaml").write_text(yaml.safe_dump(data))
    loaded = load_config(folder / "syncer.yaml")
    store = Store.open(loaded.state_url)
    filled = fill(store, args.rows)
    if user_count(store) == 0:
        add_user(store, "bench", "viewer", hash_password("bench password"), START)
    client = TestClient(create_app(loaded, store, secret="b" * 40), follow_redirects=False)
    form = client.get("/login").text
    token = form.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/login", data={"name": "bench", "password": "bench password",
                                       "csrf": token}).status_code == 303
    print(f"web audit page, {args.rows:,} audit rows in SQLite ({path.stat().st_size >> 20} "
          f"MiB; filled in {filled:.0f} s); Python {platform.python_version()}, "
          f"{os.cpu_count()} cores; median / worst of {args.repeat}")
    print(f"{'filter':<30} {'rows':>5} {'GET /audit':>18} {'store query':>18}")
    for name, params in filters(args.rows):
        response = client.get("/audit", params=params)
        assert response.status_code == 200, response.text[:300]
        shown = response.text.count('<td class="outcome-')
        where = AuditFilter(person=params.get("person"), run_id=params.get("run"),
                            connector=params.get("connector"), field=params.get("field"),
                            outcome=params.get("outcome"),
                            since=datetime.fromisoformat(params["since"])
                            if "since" in params else None,
                            until=datetime.fromisoformat(params["until"])
                            if "until" in params else None)
        before = int(params["before"]) if "before" in params else None
        web = timed(lambda p=params: client.get("/audit", params=p), args.repeat)  # type: ignore[misc]
        query = timed(lambda w=where, b=before: audit_page(store.audit_log, w, before=b),  # type: ignore[misc]
                      args.repeat)
        print(f"{name:<30} {shown:>5} {web[0]:>8.1f} / {web[1]:>5.1f} ms "
              f"{query[0]:>8.1f} / {query[1]:>5.1f} ms")
    store.close()


if __name__ == "__main__":
    main()
