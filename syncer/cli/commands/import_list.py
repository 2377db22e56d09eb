"""`syncer import FILE.csv --source NAME`: a list of people and what they did (a webinar's
attendees, a trade show's badge scans), re-qualified at once.

Rows are checked one by one (syncer/domain/hand_raise_list.py): bad ones are listed by
line, field and fix and left out, good ones are kept. They are stored as inbound events of
source NAME, exactly as the generic webhook stores them, then consumed by one focused run
(syncer/run/focused.py) under the run lock: the people become records of NAME joined to
their CRM records by email, and their new stage, score, owner and reasons are written to
the CRMs. Importing the same file again finds every event known and changes nothing.
Exit status: 0, or 1 when a row was bad (the good ones are imported all the same).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from syncer.cli.commands.common import add_config_option, load_args_config
from syncer.domain.failures import BadInput

SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file. Fix: give the path of the CSV file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"{path}: cannot be read as UTF-8 text ({type(error).__name__}). Fix: "
                       "export the list as CSV (UTF-8)") from None


def cmd_import(args: argparse.Namespace) -> int:
    import threading
    from datetime import datetime, timezone

    from syncer.cli.runtime import Runtime
    from syncer.domain.hand_raise_list import parse_mapping, read_list, unique
    from syncer.domain.types import ActivityType
    from syncer.observe.logs import configure_logging
    from syncer.observe.metrics import SyncMetrics
    from syncer.ops.inbound import InboundProcessor
    from syncer.store import inbound_events
    from syncer.store.inbound_events import NewEvent, Replayed

    loaded = load_args_config(args)
    configure_logging(loaded.config.log_level, sys.stderr)
    if not SOURCE.match(args.source) or args.source in {c.name for c in
                                                        loaded.config.connectors}:
        raise BadInput(f"--source {args.source!r}: a source is named in lowercase letters, "
                       "digits, '-' or '_' and is not a connector's name. Fix: e.g. "
                       "--source webinar_2026_12")
    activity = None
    if args.activity:
        try:
            activity = ActivityType(args.activity)
        except ValueError:
            raise BadInput(f"--activity {args.activity!r} is not an activity syncer scores. "
                           f"Fix: one of {', '.join(t.value for t in ActivityType)}") from None
    now = datetime.now(timezone.utc)
    parsed = read_list(_read(args.file), args.source, mapping=parse_mapping(args.map),
                       activity=activity, now=now)
    for line in parsed.bad:
        print(f"{args.file}: {line}", file=sys.stderr)
    good = unique(parsed.good)
    print(f"{args.file}: {parsed.rows} rows, {len(good)} good, "
          f"{parsed.rows - len(parsed.good)} bad")
    if args.dry_run:
        print("dry run: nothing stored, nothing written")
        return 1 if parsed.bad else 0
    with Runtime(loaded) as runtime:
        store = runtime.require_store()
        events = [NewEvent(h.event_id, "person", args.source, h.email, h.as_json())
                  for h in good]
        try:
            new = inbound_events.accept(store, args.source, None, events, now) if events \
                else 0
        except Replayed:
            new = 0
        print(f"{new} new, {len(good) - new} already imported")
        processor = InboundProcessor(runtime, SyncMetrics(), threading.Event(), 1.0)
        summary = processor.process_pending()
        if summary is not None:
            print(f"run {summary.run_id}: {summary.status}, {summary.people} people "
                  f"re-qualified, fields written: {dict(summary.fields_written)}")
            if summary.status == "skipped":
                print("another run holds the lock: the events stay pending; the daemon "
                      "runs them (webhooks.enabled) or the next `syncer import` does")
    return 1 if parsed.bad else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_config_option(sub.add_parser(
        "import", help="import people and activities from a CSV list and re-qualify them"))
    parser.add_argument("file", help="the CSV file (header on line 1)")
    parser.add_argument("--source", required=True,
                        help="who the list comes from (its people are kept as records of "
                             "this source), e.g. webinar_2026_12")
    parser.add_argument("--map", default=None, metavar="COL=field,...",
                        help="column -> field: email, first_name, last_name, title, company, "
                             "industry, employees, country, activity, occurred_at, event_id, "
                             "attr.<name>")
    parser.add_argument("--activity", default=None,
                        help="the activity every row means when the file has no activity "
                             "column, e.g. webinar_attendance")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the rows and report; store and write nothing")
    parser.set_defaults(func=cmd_import)
