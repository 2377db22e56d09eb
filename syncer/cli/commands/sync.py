"""`syncer demo`, `sync --once`, `run` and `check-config`: running syncs."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from syncer.cli.commands.common import add_config_option, load_args_config
from syncer.domain.failures import BadInput

if TYPE_CHECKING:
    from sqlalchemy.exc import SQLAlchemyError

    from syncer.domain.config import LoadedConfig
    from syncer.run.publication import ActiveModel
    from syncer.store.locks import LockHeld


def cmd_check_config(args: argparse.Namespace) -> int:
    from syncer.cli.runtime import Runtime
    from syncer.domain.config_base import ConfigError

    loaded = load_args_config(args)
    with Runtime(loaded, open_store=False) as runtime:
        # Mapped person fields a CRM lacks (one request each; a sync would stop on them).
        problems = [problem for connector in runtime.connectors.values()
                    for problem in connector.person_field_problems()]
        if problems:
            raise ConfigError(problems)
        if loaded.config.webhooks.enabled:  # every source's secret readable
            from syncer.web.webhook_server import source_secrets

            source_secrets(loaded)
        print(f"{loaded.path}: OK")
        print(f"  model: {runtime.model.version} ({loaded.model_path})")
        for connector in loaded.config.connectors:
            where = "built-in sandbox" if connector.sandbox else connector.base_url
            print(f"  connector {connector.name} ({connector.kind}) -> {where}, every "
                  f"{connector.schedule.every_minutes:g} min")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from syncer.cli.run_summary import format_summary
    from syncer.cli.runtime import Runtime
    from syncer.observe.logs import configure_logging
    from syncer.run.dry_run_report import report_lines
    from syncer.run.pipeline import LOST_LOCK, run_sync
    from syncer.store.runs import SKIPPED

    if not args.once:
        raise BadInput("`syncer sync` runs one sync and needs --once. Fix: add --once "
                       "(`syncer run` is the daemon that syncs on a schedule)")
    loaded = load_args_config(args)
    configure_logging(loaded.config.log_level, sys.stderr)
    from syncer.cli.progress_display import display_for

    try:
        runtime = Runtime(loaded)
    except SQLAlchemyError as error:
        return state_unreachable(loaded, error)
    out = sys.stderr if args.json else sys.stdout  # --json: stdout holds JSON lines only
    with runtime:
        for line in model_lines(runtime.active, loaded.model_path.name):
            print(line, file=out)
        try:
            with display_for(sys.stderr):  # a live display on a terminal, else nothing
                summary = run_sync(loaded, runtime.require_store(), runtime.connectors,
                                   runtime.model, args.as_of or datetime.now(timezone.utc),
                                   dry_run=args.dry_run, full=args.full, wait=args.wait,
                                   on_wait=announce_wait)
        except SQLAlchemyError as error:
            return state_unreachable(loaded, error, recorded=True)
        if summary.status == SKIPPED:
            print(summary.error, file=out)
            if args.json:  # scripts get their summary object, status "skipped"
                print("\n".join(report_lines(summary, as_json=True)))
            return 0
        print(format_summary(summary, loaded.state_url), file=out)
        for line in report_lines(summary, args.json):  # a dry run's writes, one by one
            print(line)
        if summary.status == LOST_LOCK:
            print(f"sync stopped: {summary.error}", file=sys.stderr)
            return 1
        if summary.status in STOPPED_EARLY:  # a clean stop: cursors kept, the next run goes on
            print(f"sync stopped early ({summary.status}): {summary.error}", file=sys.stderr)
    return 0 if not summary.failures else 1


#: run statuses of a sync that stopped cleanly before the end (exit 0, the reason on stderr):
#: the day's API budget spent, or the run's allowance of rate-limit waiting used up
STOPPED_EARLY = ("budget_exhausted", "rate_limited")


def announce_wait(busy: LockHeld) -> None:
    """`sync --once --wait` says what it waits for before it blocks."""
    print(f"{busy}; waiting for it to finish (--wait)", flush=True)


def state_unreachable(loaded: LoadedConfig, error: SQLAlchemyError, *,
                      recorded: bool = False) -> int:
    """The state database could not be reached: the run is kept in the local spool
    (syncer/run/ledger.py) and shows in `syncer runs` once the database is back."""
    from syncer.domain.failures import EXIT_UNREACHABLE
    from syncer.run.ledger import record_unreachable, spool_path
    from syncer.store.location import unreachable

    if not recorded:
        record_unreachable(loaded, [c.name for c in loaded.config.connectors], error)
    print(f"syncer: sync failed: {unreachable(loaded.state_url, error)}. The run is kept in "
          f"{spool_path(loaded)} and appears in `syncer runs` once the database is "
          "reachable again.", file=sys.stderr)
    return EXIT_UNREACHABLE


def model_lines(active: ActiveModel | None, file_name: str) -> list[str]:
    """What a sync says about its model when it is news: it published the file, or a
    rollback pins another version."""
    if active is None:
        return []
    if active.rollback is not None:
        note = active.rollback
        return [f"model {note.to_version}: a rollback pins it (rolled back from "
                f"{note.from_version} at {note.at:%Y-%m-%d %H:%M} UTC); {file_name} is not "
                "published until `syncer model publish`"]
    if active.published is not None:
        was = active.published.previous_version
        return [f"model {active.model.version}: published from {file_name} by this sync"
                + (f" (was {was}); everyone is re-decided" if was else "")]
    return []


def cmd_run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from syncer.cli.runtime import Runtime
    from syncer.observe.logs import configure_logging
    from syncer.ops.scheduler import Daemon

    loaded = load_args_config(args)
    configure_logging(loaded.config.log_level)
    try:
        runtime = Runtime(loaded)
    except SQLAlchemyError as error:
        return state_unreachable(loaded, error)
    with runtime:
        web = None
        if loaded.config.web.enabled:  # the admin beside the syncs, on the daemon's store
            from syncer.web.in_daemon import WebThread

            web = WebThread(loaded, runtime.require_store(), Runtime)
            web.start()
        daemon = Daemon(runtime)
        inbound = None
        if loaded.config.webhooks.enabled:  # hand-raises in, re-qualified at once
            from syncer.web.webhook_server import InboundService

            inbound = InboundService(runtime, daemon.metrics, daemon.stop_event)
            inbound.start()
        try:
            daemon.run_forever()
        finally:
            if inbound is not None:
                inbound.stop()
            if web is not None:
                web.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from syncer.cli.demo import run_demo

    return run_demo(people=args.people, seed=args.seed, state_dir=Path(args.state_dir))


def _instant(text: str) -> datetime:
    """An ISO 8601 instant; a time without an offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO time; use e.g. 2026-11-20T12:00:00+00:00") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="run one full sync against the built-in sandboxes")
    demo.add_argument("--people", type=int, default=500)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--state-dir", default=".syncer")
    demo.set_defaults(func=cmd_demo)

    sync = add_config_option(sub.add_parser("sync", help="run one sync now"))
    sync.add_argument("--once", action="store_true", help="run one sync and exit")
    sync.add_argument("--dry-run", action="store_true",
                      help="write nothing; list each write it would make, then a summary")
    sync.add_argument("--json", action="store_true",
                      help="JSON lines on stdout: each planned write and creation of a dry "
                           "run, then a summary object (other output goes to stderr)")
    sync.add_argument("--as-of", type=_instant, default=None, metavar="ISO_TIME",
                      help="score as of this instant instead of now (replays, tests)")
    sync.add_argument("--wait", action="store_true",
                      help="if another sync holds a connector's lock, wait for it instead of "
                           "skipping this run")
    sync.add_argument("--full", action="store_true",
                      help="pull every record (not only those changed since the last run) "
                           "and re-score everyone")
    sync.set_defaults(func=cmd_sync)

    add_config_option(sub.add_parser("run", help="the daemon: scheduled syncs until SIGTERM")
                      ).set_defaults(func=cmd_run)
    add_config_option(sub.add_parser("check-config", help="validate config, model and secrets")
                      ).set_defaults(func=cmd_check_config)
