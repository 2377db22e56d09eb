"""How big the SQLite state gets: per table and index, per audit field row, per run.

    python -m bench.bench_state_size --people 20000 [--runs 3] [--keep FILE]
    python -m bench.bench_state_size --postgres URL --from FILE

The second form copies the audit of a kept SQLite state (every row read back, appended in
transactions of 1,000 in id order, as syncer would have) into a fresh schema of that
PostgreSQL and reports its bytes per audit field row from pg_total_relation_size (the
table with its indexes and TOAST; the stamps, subjects, names, texts and reasons apart).

Sandboxes in this process (as bench/bench_sync.py); each sync is a `syncer sync --once`
child process on a SQLite state. Measured after a full sync, after an incremental one
(1% of the people edited in each CRM), then after each of `--runs` more incremental runs
(1% edited again), first without archiving, then with `archive_older_than` (the code
`syncer audit archive` runs) cutting every row older than the run just made. Each run
gets its own `--as-of` (an hour apart), which is the time its audit rows carry. Sizes come
from SQLite's dbstat (pages each table and index uses); the audit's bytes per field row
count the audit table with all its indexes, and the tables it references.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bench.bench_sync import write_config
from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.salesforce.server import SalesforceSandbox
from connectors.sandbox.world import World
from syncer.store.audit_archive import archive_older_than
from syncer.store.repository import Store

#: the audit's own tables: the field rows and what they reference (schema 18: stamps,
#: subjects, names and long values besides the reasons)
AUDIT_TABLES = ("audit", "audit_reasons", "audit_stamps", "audit_subjects", "audit_names",
                "audit_texts")
MB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    """One look at the state: file bytes, bytes per table and index, audit rows."""

    file_bytes: int
    free_bytes: int
    objects: dict[str, tuple[str, int]]  # name -> (table it belongs to, bytes)
    audit_rows: int

    def table_bytes(self, table: str) -> int:
        return sum(size for owner, size in self.objects.values() if owner == table)

    @property
    def audit_bytes(self) -> int:
        return sum(self.table_bytes(name) for name in AUDIT_TABLES)

    @property
    def audit_field_table_bytes(self) -> int:
        return self.table_bytes("audit")


def measure(path: Path) -> Sizes:
    """Pages per table and index from dbstat (the file's free pages are counted apart)."""
    with sqlite3.connect(path) as db:
        owners = dict(db.execute("SELECT name, tbl_name FROM sqlite_schema "
                                 "WHERE type IN ('table', 'index')").fetchall())
        used = db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        page = int(db.execute("PRAGMA page_size").fetchone()[0])
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0]) * page
        rows = int(db.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
    objects = {str(name): (str(owners.get(name, name)), int(size)) for name, size in used}
    return Sizes(path.stat().st_size, free, objects, rows)


def column_bytes(path: Path) -> list[tuple[str, float]]:
    """Average stored bytes of each audit column (length of its value, as SQLite keeps
    text and blobs; integers and NULLs count as their text length, an estimate)."""
    with sqlite3.connect(path) as db:
        names = [row[1] for row in db.execute("PRAGMA table_info(audit)")]
        parts = ", ".join(f"AVG(COALESCE(LENGTH({n}), 0))" for n in names)
        averages = db.execute(f"SELECT {parts} FROM audit").fetchone()
    return list(zip(names, (float(a or 0) for a in averages), strict=True))


def breakdown(sizes: Sizes, people: int) -> list[str]:
    lines = [f"  file {sizes.file_bytes / MB:,.1f} MB (free pages {sizes.free_bytes / MB:,.1f}"
             f" MB), {sizes.file_bytes / people:,.0f} bytes per person; audit rows "
             f"{sizes.audit_rows:,}"]
    if sizes.audit_rows:
        lines.append(f"  audit field rows with their indexes: "
                     f"{sizes.audit_field_table_bytes / sizes.audit_rows:,.0f} bytes per row; "
                     f"with all they reference: "
                     f"{sizes.audit_bytes / sizes.audit_rows:,.0f} bytes per row")
    for name, (owner, size) in sorted(sizes.objects.items(), key=lambda item: -item[1][1]):
        if size >= 64 * 1024:
            kind = "table" if name == owner else f"index of {owner}"
            lines.append(f"    {name:<32} {kind:<26} {size / MB:>9,.1f} MB")
    return lines


def patient(config: Path) -> None:
    """Each connector waits up to 300 s for an answer: on a loaded machine the sandboxes
    in this process answer a 100,000-person bulk query slower than the default 30 s, and a
    sync that gives up measures nothing (the sizes do not depend on it)."""
    data = yaml.safe_load(config.read_text())
    for connector in data["connectors"]:
        connector["timeout_seconds"] = 300
    config.write_text(yaml.safe_dump(data))


def run_sync(config: Path, as_of: datetime) -> float:
    """Wall seconds of one `syncer sync --once` child; a failed sync stops the bench with
    its error (sizes after a failed run would mislead)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "syncer.cli", "--debug", "sync", "--once",
                           "--as-of", as_of.isoformat(), "--config", str(config)],
                          check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"sync failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return time.monotonic() - started


def edit_some(hubspot: HubSpotSandbox, salesforce: SalesforceSandbox, rng: random.Random,
              round_: int) -> None:
    """1% of the people edited in each CRM (a new title), so the next run has work."""
    title = f"VP Marketing {round_}"
    hub = hubspot.records()
    for record in rng.sample(hub, max(1, len(hub) // 100)):
        hubspot.edit(str(record["id"]), "jobtitle", title)
    sf = salesforce.records()
    for record in rng.sample(sf, max(1, len(sf) // 100)):
        salesforce.edit(str(record["Id"]), "Title", title)
    time.sleep(1.1)


def report(label: str, path: Path, people: int, wall: float, previous: Sizes | None) -> Sizes:
    sizes = measure(path)
    grew = "" if previous is None else \
        f"; grew {(sizes.file_bytes - previous.file_bytes) / MB:+,.1f} MB"
    print(f"{label}: sync {wall:.0f} s{grew}", flush=True)
    print("\n".join(breakdown(sizes, people)), flush=True)
    return sizes


#: the tables of the audit on PostgreSQL: the field rows and what they cite
PG_AUDIT_TABLES = ("audit", "audit_stamps", "audit_subjects", "audit_names", "audit_texts",
                   "audit_reasons")


def postgres_sizes(source: Path, url: str) -> None:
    """Copy the audit of the SQLite state `source` into a fresh schema of `url` and print
    pg_total_relation_size of each audit table, per field row."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    copy = Store.open(f"{url}{separator}options=-csearch_path%3D{schema}")
    origin = Store.open(f"sqlite:///{source}")
    try:
        began, batch, rows = time.monotonic(), [], 0
        for row in origin.audit_log.iter_rows():
            batch.append(row)
            if len(batch) == 1_000:
                rows += _append(copy, batch)
        rows += _append(copy, batch)
        print(f"copied {rows:,} audit rows in {time.monotonic() - began:.0f} s; "
              f"verify {'OK' if copy.audit_log.verify().ok else 'BROKEN'}", flush=True)
        with copy.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
            sizes = {name: int(connection.execute(text(
                f"SELECT pg_total_relation_size('{name}')")).scalar_one())
                for name in PG_AUDIT_TABLES}
        for name, size in sizes.items():
            print(f"    {name:<16} {size / MB:>9,.1f} MB  {size / rows:>7,.1f} B per field row")
        print(f"  audit field rows with their indexes: {sizes['audit'] / rows:,.0f} bytes per "
              f"row; with all they cite: {sum(sizes.values()) / rows:,.0f}", flush=True)
    finally:
        copy.close()
        origin.close()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _append(store: Store, batch: list[dict[str, object]]) -> int:
    """Append `batch` (rows read back: their id and hashes are the copy's own again)."""
    if not batch:
        return 0
    fresh = [{k: v for k, v in row.items() if k not in ("id", "prev_hash", "row_hash")}
             for row in batch]
    with store.transaction() as tx:
        store.append_audit(tx, fresh)
    count = len(batch)
    batch.clear()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="with --from: copy that state's audit here")
    parser.add_argument("--from", dest="source", help="a SQLite state kept by --keep")
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="copy the state after the incremental here")
    args = parser.parse_args()
    if args.postgres:
        if not args.source:
            raise SystemExit("--postgres needs --from STATE.db (a state kept with --keep)")
        postgres_sizes(Path(args.source), args.postgres)
        return
    now = datetime.now(UTC).replace(microsecond=0)
    world = World(args.seed, args.people, now)
    hubspot, salesforce = HubSpotSandbox(world), SalesforceSandbox(world)
    hubspot.start()
    salesforce.start()
    rng = random.Random(args.seed)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = write_config(folder, hubspot, salesforce)
            patient(config)
            state = folder / "state.db"
            wall = run_sync(config, now)
            sizes = report("full sync", state, args.people, wall, None)
            edit_some(hubspot, salesforce, rng, 0)
            wall = run_sync(config, now + timedelta(hours=1))
            sizes = report("incremental (1% edited)", state, args.people, wall, sizes)
            print("  audit columns, average stored bytes: " + ", ".join(
                f"{name} {size:.0f}" for name, size in column_bytes(state)), flush=True)
            if args.keep:
                shutil.copy(state, args.keep)
            hours = 1
            for archive in (False, True):
                for round_ in range(1, args.runs + 1):
                    edit_some(hubspot, salesforce, rng, round_ + (100 if archive else 0))
                    hours += 1  # each run's rows carry its own time (--as-of)
                    as_of = now + timedelta(hours=hours)
                    wall = run_sync(config, as_of)
                    label = "with archive" if archive else "without archive"
                    if archive:  # what `syncer audit archive` does: all but this run
                        store = Store.open(f"sqlite:///{state}")
                        began = time.monotonic()
                        try:
                            done = archive_older_than(store.audit_log, as_of,
                                                      folder / "archive")
                        finally:
                            store.close()
                        moved = done.rows if done else 0
                        label += f" ({moved:,} rows archived in {time.monotonic() - began:.1f} s)"
                    sizes = report(f"run {round_} {label}", state, args.people, wall, sizes)
    finally:
        hubspot.stop()
        salesforce.stop()


if __name__ == "__main__":
    main()
