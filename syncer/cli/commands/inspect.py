"""`syncer explain`, `syncer audit` and `syncer runs`: why a person is where they are,
what changed, and what each run did."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from syncer.cli.commands.common import (
    add_config_option,
    load_args_config,
    open_state,
    open_writable,
    read_state,
)
from syncer.domain.failures import BadInput
from syncer.domain.when import parse_when

if TYPE_CHECKING:
    from syncer.store.audit import AuditFilter
    from syncer.store.runs import RunRecord

#: The formats of `audit --export`: equal to syncer.store.audit_archive.EXPORT_FORMATS,
#: written out so that building the parser imports no store (tests/test_bad_inputs.py).
EXPORT_FORMATS = ("csv", "jsonl")


def cmd_explain(args: argparse.Namespace) -> int:
    from syncer.qualify.explain import breakdown, card_lines, explain_json
    from syncer.store import identity as identity_store
    from syncer.store import stage_history

    store = read_state(args)
    try:
        # The person a record with this email belongs to (their email may have changed
        # since syncer first met them), else the key as given.
        key = store.person_key_for_email(args.email) or args.email.strip().lower()
        decision = store.decisions([key]).get(key)
        if decision is None:
            print(f"no decision stored for {args.email}; run a sync first", file=sys.stderr)
            return 1
        records, activities = store.load_people([key])[key]
        history = stage_history.history(store, key)
        with store.engine.connect() as connection:
            retired = identity_store.retired_records(connection, key)
    finally:
        store.close()
    if args.json:
        out = explain_json(decision, records, len(activities))
        out["history"] = [{"from": c.from_stage.value if c.from_stage else None,
                           "to": c.to_stage.value, "at": c.at.isoformat(), "cause": c.cause,
                           "model_version": c.model_version, "detail": c.detail}
                          for c in history]
        out["retired_records"] = [{"connector": r.connector, "record_id": r.record_id,
                                   "object_type": r.object_type, "cause": r.cause,
                                   "successor_id": r.successor_id} for r in retired]
        print(json.dumps(out, sort_keys=True))
        return 0
    print(f"{key}: stage {decision.stage.value}, score {decision.score} "
          f"(fit {decision.fit_points:g}, engagement {decision.engagement_points:g}), "
          f"grade {decision.fit_grade}, owner {decision.owner_email or '-'}")
    print(f"model {decision.model_version}; records: "
          + ", ".join(f"{r.source}:{r.object_type}:{r.record_id}" for r in records)
          + f"; {len(activities)} activities")
    for line in breakdown(decision):
        print(f"  {line}")
    if not decision.scores:
        print("scores: no ledger stored for this decision (decided before syncer kept "
              "them); the next sync stores it")
    for card in decision.scores:
        print("score " + "\n  ".join(card_lines(card)))
    for record in retired:
        print(f"followed: {record.connector}:{record.object_type}:{record.record_id} "
              f"{record.cause} into {record.successor_id} (never written again)")
    if history:
        print("stage history:")
    for change in history:
        start = change.from_stage.value if change.from_stage else "(new)"
        print(f"  {change.at:%Y-%m-%d %H:%M} {start} -> {change.to_stage.value} "
              f"[{change.cause}] {change.detail or ''}".rstrip())
    return 0


def at_least_one(text: str) -> int:
    """A count of rows: a whole number, 1 or more."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not 1 or more")
    return number


def _filter(args: argparse.Namespace) -> AuditFilter:
    from syncer.store.audit import AuditFilter

    person = args.person or args.email
    return AuditFilter(person=person, record_id=args.record, field=args.field,
                       run_id=args.run, connector=args.connector, outcome=args.outcome,
                       since=args.since, until=args.until)


def _audit_line(row: Mapping[str, object]) -> str:
    return (f"{row['at']:%Y-%m-%d %H:%M:%S} #{row['id']} run {row['run_id']} "
            f"{row['connector']}:{row['record_id']} {row['field']}: {row['old_value']!r} -> "
            f"{row['new_value']!r} [{row['outcome']}] model {row['model_version']}"
            + (f" error {row['error']}" if row["error"] else ""))


def cmd_audit(args: argparse.Namespace) -> int:
    """List or export audit rows matching the filters."""
    from syncer.store.audit_archive import export

    if args.export and not args.output:
        raise BadInput("--export needs --output. Fix: add --output FILE (or - for stdout)")
    where = _filter(args)
    store = read_state(args)
    try:
        if args.export:
            if args.output == "-":
                count = export(store.audit_log, where, args.export, sys.stdout)
            else:
                with open(args.output, "w", encoding="utf-8", newline="") as stream:
                    count = export(store.audit_log, where, args.export, stream)
            print(f"exported {count} audit rows ({where.describe()}) to {args.output}",
                  file=sys.stderr)
            return 0
        rows = store.audit_log.rows(where, limit=args.limit)
    finally:
        store.close()
    if not rows:
        print(f"no audit rows for {where.describe()}")
        return 0
    for row in rows:
        print(_audit_line(row))
    if args.limit is not None and len(rows) == args.limit:
        print(f"(the newest {args.limit} rows; --limit N for more, --export for all)",
              file=sys.stderr)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check the hash chain; exit 1 and name the first broken row when it does not hold."""
    from syncer.store.audit_archive import verify_with_archives

    store = read_state(args)
    try:
        report = (verify_with_archives(store.audit_log) if args.archives
                  else store.audit_log.verify())
    finally:
        store.close()
    start = (f"from the archive cut at row {report.anchor_id}" if report.anchor_id
             else "from the first row")
    archives = f" and {report.archives_checked} archive files" if args.archives else ""
    span = f" (rows {report.first_id}..{report.last_id})" if report.checked else ""
    if report.ok:
        print(f"audit chain OK: {report.checked} rows{span}{archives} verified {start}; "
              f"chain head {report.head_hash}")
        return 0
    first = report.problems[0]
    print(f"audit chain BROKEN at row {first.row_id} ({first.kind}): {first.message}")
    for problem in report.problems[1:20]:
        print(f"  also row {problem.row_id} ({problem.kind}): {problem.message}")
    hidden = len(report.problems) - 20 + report.more_problems
    if hidden > 0:
        print(f"  ... and {hidden} more")
    print(f"checked {report.checked} rows{span}{archives} {start}")
    return 1


def cmd_audit_archive(args: argparse.Namespace) -> int:
    """Archive rows older than N days to a gzip JSON Lines file, then remove them."""
    from syncer.store.audit import AuditError
    from syncer.store.audit_archive import apply_retention
    from syncer.store.location import require_existing

    loaded = load_args_config(args)
    days = args.older_than_days or loaded.config.audit.retention_days
    if days is None:
        raise BadInput("audit archive needs an age. Fix: pass --older-than-days N or set "
                       "audit.retention_days in the config")
    folder = Path(args.archive_path or loaded.config.audit.archive_path)
    url = args.state or loaded.state_url
    require_existing(url)  # nothing to archive in a database that is not there
    store = open_writable(url)
    try:
        result = apply_retention(store.audit_log, days, folder)
    except AuditError as error:
        print(str(error), file=sys.stderr)
        return 1
    finally:
        store.close()
    if result is None:
        print(f"no audit rows older than {days} days; nothing archived")
        return 0
    print(f"archived {result.rows} audit rows (ids {result.first_id}..{result.last_id}, "
          f"before {result.cutoff:%Y-%m-%d %H:%M} UTC) to {result.path}\n"
          f"  sha256 {result.file_sha256}; chain hash at the cut {result.cut_hash}")
    return 0


def _per_connector(values: Mapping[str, object]) -> str:
    return " ".join(f"{name}:{value}" for name, value in sorted(values.items())) or "-"


def run_line(run: RunRecord) -> str:
    """One run as a line of `syncer runs`."""
    from syncer.store.runs import SKIPPED

    if run.status == SKIPPED:  # it did nothing: say who held the lock instead
        return (f"{run.run_id}  {run.started_at:%Y-%m-%d %H:%M:%S}  {'-':>8}  "
                f"{run.status:<9}  {','.join(run.connectors)}\n    {run.error or ''}")
    duration = f"{run.duration_seconds:.1f}s" if run.duration_seconds is not None else "-"
    calls = "; ".join(
        f"{name} " + ",".join(f"{status}x{count}" for status, count in sorted(statuses.items()))
        for name, statuses in sorted(run.nested_counts("api_calls_by_status").items())) or \
        _per_connector(run.per_connector("api_calls"))
    headroom = " ".join(
        f"{name}:{h['remaining_min']}/{h['limit'] if h.get('limit') is not None else '?'}"
        for name, h in sorted(run.objects("rate_limit_headroom").items())) or "-"
    return (f"{run.run_id}  {run.started_at:%Y-%m-%d %H:%M:%S}  {duration:>8}  "
            f"{run.status:<9}  {','.join(run.connectors)}{' (dry run)' if run.dry_run else ''}"
            f"\n    pulled {_per_connector(run.per_connector('records_pulled'))}; "
            f"decisions changed {run.total('decisions_changed')}; fields written "
            f"{_per_connector(run.per_connector('fields_written'))}; failures "
            f"{_per_connector(run.per_connector('failures'))}; retries "
            f"{run.total('api_retries')}; 429s {run.total('api_rate_limited')}"
            f"\n    API calls {calls}; lowest rate-limit headroom {headroom}"
            + (f"\n    error: {run.error}" if run.error else ""))


def cmd_runs(args: argparse.Namespace) -> int:
    """The run history, newest first; runs kept in the local spool while the state
    database was unreachable are written to it first (syncer/run/ledger.py)."""
    from syncer.run.ledger import RunSpool, spool_path

    store = open_state(args)
    try:
        if not getattr(args, "state", None):
            RunSpool(spool_path(load_args_config(args))).replay(store)
        runs = store.runs(args.limit, connector=args.connector, status=args.status)
    finally:
        store.close()
    if args.json:
        for run in runs:
            print(json.dumps({**asdict(run), "started_at": run.started_at.isoformat(),
                              "finished_at": run.finished_at.isoformat()
                              if run.finished_at else None,
                              "duration_seconds": run.duration_seconds}, sort_keys=True))
        return 0
    if not runs:
        print("no runs recorded yet; `syncer sync --once` or `syncer run` records them")
        return 0
    print("RUN               STARTED (UTC)        DURATION  STATUS     CONNECTORS")
    for run in runs:
        print(run_line(run))
    return 0


def _state_option(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    helptext = "state database URL (default: the config's)"
    if suppress:  # a sub-command's default must not overwrite the parent's --state
        parser.add_argument("--state", help=helptext, default=argparse.SUPPRESS)
    else:
        parser.add_argument("--state", help=helptext)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain = add_config_option(sub.add_parser(
        "explain", help="score, stage, owner and every reason for one person"))
    explain.add_argument("email")
    explain.add_argument("--json", action="store_true",
                         help="one JSON object: the decision, reasons and score ledgers")
    _state_option(explain)
    explain.set_defaults(func=cmd_explain)

    audit = add_config_option(sub.add_parser(
        "audit", help="what syncer wrote: filter, export, verify the chain, archive",
        description="List audit rows matching every filter given (newest --limit), or "
                    "export them. `audit verify` checks the hash chain; `audit archive` "
                    "moves old rows to an archive file."))
    audit.add_argument("--email", help="a person's email (same as --person EMAIL)")
    audit.add_argument("--person", help="a person: email or CRM record id (all their records)")
    audit.add_argument("--record", help="one CRM record id")
    audit.add_argument("--field", help="a CRM field name, e.g. lifecyclestage")
    audit.add_argument("--run", help="a run id (see `syncer runs`)")
    audit.add_argument("--connector", help="a connector name from the config")
    audit.add_argument("--outcome", help="written, failed, kept_manual_edit, ...")
    audit.add_argument("--since", type=parse_when, help="from this time (ISO, or 7d ago)")
    audit.add_argument("--until", type=parse_when, help="before this time (ISO, or 1d ago)")
    audit.add_argument("--limit", type=at_least_one, default=200,
                       help="rows to show (default 200)")
    audit.add_argument("--export", choices=EXPORT_FORMATS, help="write every match as CSV "
                                                                "or JSON Lines")
    audit.add_argument("--output", help="file for --export (- for stdout)")
    _state_option(audit)
    audit.set_defaults(func=cmd_audit)
    actions = audit.add_subparsers(dest="audit_action", metavar="{verify,archive}")
    verify = actions.add_parser("verify", help="check the hash chain; exit 1 on a break")
    verify.add_argument("--archives", action="store_true",
                        help="also check every archive file and its link to the next")
    verify.add_argument("--config", default=argparse.SUPPRESS, help="path to syncer.yaml")
    _state_option(verify, suppress=True)
    verify.set_defaults(func=cmd_audit_verify)
    archive = actions.add_parser("archive", help="move rows older than N days to an archive")
    archive.add_argument("--older-than-days", type=int,
                         help="default: audit.retention_days from the config")
    archive.add_argument("--archive-path", help="default: audit.archive_path from the config")
    archive.add_argument("--config", default=argparse.SUPPRESS, help="path to syncer.yaml")
    _state_option(archive, suppress=True)
    archive.set_defaults(func=cmd_audit_archive)

    runs = add_config_option(sub.add_parser("runs", help="the run history, newest first"))
    runs.add_argument("--limit", type=at_least_one, default=20)
    runs.add_argument("--connector", help="only runs that included this connector")
    runs.add_argument("--status", help="succeeded, partial, failed, stopped, running, ...")
    runs.add_argument("--json", action="store_true", help="one JSON object per run")
    _state_option(runs)
    runs.set_defaults(func=cmd_runs)
