"""The `syncer` command line. Thin: parse arguments, call the library, print.

Errors an admin can fix (config, model, secrets, an unreachable CRM) print one clear
message to stderr and exit 2; they never print a traceback or a secret.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from connectors.base import ConnectorError
from syncer.config import EXAMPLE_CONFIG, ConfigError, load_config
from syncer.logs import configure_logging
from syncer.qualify import ModelError
from syncer.qualify.explain import breakdown
from syncer.ratelimit import RetriesExhausted
from syncer.store.repository import Store

def _config_path(arg: str | None) -> Path:
    """--config, else $SYNCER_CONFIG, else ./syncer.yaml, else the shipped example."""
    for candidate in (arg, os.environ.get("SYNCER_CONFIG"), "syncer.yaml"):
        if candidate and (arg or Path(candidate).exists()):
            return Path(candidate)
    return EXAMPLE_CONFIG


def _state_url(args: argparse.Namespace) -> str:
    if getattr(args, "state", None):
        return str(args.state)
    return load_config(_config_path(args.config)).state_url


def cmd_check_config(args: argparse.Namespace) -> int:
    from syncer.runtime import Runtime

    loaded = load_config(_config_path(args.config))
    with Runtime(loaded, open_store=False) as runtime:
        print(f"{loaded.path}: OK")
        print(f"  model: {runtime.model.version} ({loaded.model_path})")
        for connector in loaded.config.connectors:
            where = "built-in sandbox" if connector.sandbox else connector.base_url
            print(f"  connector {connector.name} ({connector.kind}) -> {where}, every "
                  f"{connector.schedule.every_minutes:g} min")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from syncer.demo import format_summary
    from syncer.pipeline import run_sync
    from syncer.runtime import Runtime

    if not args.once:
        print("syncer sync runs one sync and needs --once; `syncer run` is the daemon.",
              file=sys.stderr)
        return 2
    loaded = load_config(_config_path(args.config))
    configure_logging(loaded.config.log_level, sys.stderr)
    with Runtime(loaded) as runtime:
        summary = run_sync(loaded, runtime.require_store(), runtime.connectors, runtime.model,
                           datetime.now(timezone.utc), dry_run=args.dry_run)
        print(format_summary(summary, loaded.state_url))
    return 0 if not summary.failures else 1


def cmd_run(args: argparse.Namespace) -> int:
    from syncer.runtime import Runtime
    from syncer.scheduler import Daemon

    loaded = load_config(_config_path(args.config))
    configure_logging(loaded.config.log_level)
    with Runtime(loaded) as runtime:
        Daemon(runtime).run_forever()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from syncer.demo import run_demo

    return run_demo(people=args.people, seed=args.seed, state_dir=Path(args.state_dir))


def cmd_sandbox(args: argparse.Namespace) -> int:
    from connectors import SANDBOX_KINDS, build_sandbox
    from connectors.sandbox_world import World

    world = World(args.seed, args.contacts, datetime.now(timezone.utc))
    ports = {"hubspot": args.hubspot_port, "salesforce": args.salesforce_port}
    sandboxes = [build_sandbox(kind, world, port=ports.get(kind, 0)) for kind in SANDBOX_KINDS]
    for sandbox in sandboxes:
        sandbox.start()
        print(json.dumps({"kind": sandbox.kind, "base_url": sandbox.base_url,
                          "credentials": dict(sandbox.credentials),
                          "ca_file": sandbox.ca_file}), flush=True)
    print(f"serving {args.contacts} people (seed {args.seed}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for sandbox in sandboxes:
            sandbox.stop()
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    store = Store.open(_state_url(args))
    try:
        key = args.email.strip().lower()
        decision = store.decisions([key]).get(key)
        if decision is None:
            print(f"no decision stored for {args.email}; run a sync first", file=sys.stderr)
            return 1
        records, activities = store.load_people([key])[key]
        print(f"{key}: stage {decision.stage.value}, score {decision.score} "
              f"(fit {decision.fit_points:g}, engagement {decision.engagement_points:g}), "
              f"grade {decision.fit_grade}, owner {decision.owner_email or '-'}")
        print(f"model {decision.model_version}; records: "
              + ", ".join(f"{r.source}:{r.object_type}:{r.record_id}" for r in records)
              + f"; {len(activities)} activities")
        for line in breakdown(decision):
            print(f"  {line}")
    finally:
        store.close()
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    store = Store.open(_state_url(args))
    try:
        rows = store.audit_rows(person_key=args.email.strip().lower())
    finally:
        store.close()
    if not rows:
        print(f"no audit rows for {args.email}")
        return 0
    for row in rows:
        print(f"{row['at']:%Y-%m-%d %H:%M:%S} run {row['run_id']} {row['connector']}:"
              f"{row['record_id']} {row['field']}: {row['old_value']!r} -> "
              f"{row['new_value']!r} [{row['outcome']}] model {row['model_version']}"
              + (f" error {row['error']}" if row["error"] else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help="path to syncer.yaml (default: $SYNCER_CONFIG, "
                                        "./syncer.yaml, then the shipped example)")
        return p

    demo = sub.add_parser("demo", help="run one full sync against the built-in sandboxes")
    demo.add_argument("--people", type=int, default=500)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--state-dir", default=".syncer")
    demo.set_defaults(func=cmd_demo)

    sync = with_config(sub.add_parser("sync", help="run one sync now"))
    sync.add_argument("--once", action="store_true", help="run one sync and exit")
    sync.add_argument("--dry-run", action="store_true", help="write nothing; show what would be")
    sync.set_defaults(func=cmd_sync)

    with_config(sub.add_parser("run", help="the daemon: scheduled syncs until SIGTERM")
                ).set_defaults(func=cmd_run)
    with_config(sub.add_parser("check-config", help="validate config, model and secrets")
                ).set_defaults(func=cmd_check_config)

    sandbox = sub.add_parser("sandbox", help="serve both sandbox CRMs until stopped")
    sandbox.add_argument("--contacts", type=int, default=1000)
    sandbox.add_argument("--seed", type=int, default=1)
    sandbox.add_argument("--hubspot-port", type=int, default=0)
    sandbox.add_argument("--salesforce-port", type=int, default=0)
    sandbox.set_defaults(func=cmd_sandbox)

    for name, func, text in (("explain", cmd_explain, "score, stage, owner and every reason"),
                             ("audit", cmd_audit, "one person's audit history")):
        p = with_config(sub.add_parser(name, help=text))
        p.add_argument("email") if name == "explain" else p.add_argument("--email", required=True)
        p.add_argument("--state", help="state database URL (default: the config's)")
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (ConfigError, ModelError) as error:
        print(str(error), file=sys.stderr)
        return 2
    except (ConnectorError, RetriesExhausted) as error:
        print(f"sync failed: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
