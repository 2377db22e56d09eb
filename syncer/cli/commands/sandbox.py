"""`syncer sandbox`: serve both sandbox CRMs until stopped, with limits and faults.

Prints one JSON line per sandbox (kind, base_url, credentials, ca_file), then a `ready`
line, an `index_ready` line once the activity index is built (in the background), and a
`stopped` line with the faults injected when SIGINT or SIGTERM stops it. Stdout carries
only JSON lines, so scripts and tests can read it; the human summary goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.sandbox.faults import FaultConfig, SandboxLimits
    from connectors.sandbox.world import World

#: HubSpot account tiers (the keys of connectors.sandbox.faults.HUBSPOT_TIERS), written
#: out so that building the parser imports no sandbox.
HUBSPOT_TIER_NAMES = ("free", "starter", "professional", "enterprise")

#: flag name -> FaultConfig field, for the flags that map one to one.
FAULT_FLAGS = {
    "fault_seed": "seed", "fault_5xx_rate": "error_rate", "latency_ms": "latency_ms",
    "latency_jitter_ms": "latency_jitter_ms", "timeout_rate": "timeout_rate",
    "timeout_seconds": "timeout_seconds", "drop_rate": "drop_rate",
    "record_failure_rate": "record_failure_rate", "record_lock_share": "record_lock_share",
    "editor_rate": "editor_rate", "session_expiry_rate": "session_expiry_rate",
}
_print_lock = threading.Lock()


def _emit(data: Mapping[str, object]) -> None:
    with _print_lock:
        print(json.dumps(data), flush=True)


def settings_from(args: argparse.Namespace) -> tuple[FaultConfig, SandboxLimits]:
    """The faults and limits of a `syncer sandbox` invocation: --faults FILE first, then
    each flag given overrides it."""
    from connectors.sandbox.faults import (
        FaultConfig,
        HubSpotLimits,
        SandboxLimits,
        load_sandbox_file,
        parse_burst,
    )

    faults, limits = (load_sandbox_file(args.faults) if args.faults
                      else (FaultConfig(), SandboxLimits()))
    changes: dict[str, object] = {field: getattr(args, flag) for flag, field in FAULT_FLAGS.items()
                               if getattr(args, flag) is not None}
    if args.fault_429_burst is not None:
        changes["burst_every"], changes["burst_length"] = parse_burst(args.fault_429_burst)
    faults = FaultConfig.from_mapping({**faults.as_dict(), **changes}, "flags")
    hubspot, salesforce = limits.hubspot, limits.salesforce
    if args.hubspot_tier is not None:
        hubspot = HubSpotLimits.for_tier(args.hubspot_tier)
    if args.salesforce_daily_limit is not None:
        salesforce = replace(salesforce, daily=args.salesforce_daily_limit)
    if args.session_ttl is not None:
        salesforce = replace(salesforce, session_ttl_seconds=args.session_ttl)
    return faults, SandboxLimits(hubspot, salesforce)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cmd_sandbox(args: argparse.Namespace) -> int:
    from connectors.sandbox import SANDBOX_KINDS
    from connectors.sandbox.faults import SandboxConfigError
    from connectors.sandbox.world import World, activity_scale_for

    try:
        faults, limits = settings_from(args)
    except SandboxConfigError as error:
        print(f"syncer sandbox: {error}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    world = World(args.seed, args.contacts, datetime.now(timezone.utc),
                  activity_scale=activity_scale_for(args.activities),
                  syncer_fields=not args.no_syncer_fields,
                  hubspot_companies=args.hubspot_companies,
                  salesforce_accounts=args.salesforce_accounts)
    ports = {"hubspot": args.hubspot_port, "salesforce": args.salesforce_port}
    sandboxes = []
    for kind, target in SANDBOX_KINDS.items():
        module_name, _, factory = target.partition(":")
        made = getattr(importlib.import_module(module_name), factory)(
            world, port=ports.get(kind, 0), limits=limits, faults=faults)
        sandboxes.append(made)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Explicitly, too: a process started in the background of a non-interactive shell (CI,
    # nohup) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt for it.
    previous_int = signal.signal(signal.SIGINT, _stop_on_sigterm)
    try:
        for sandbox in sandboxes:
            sandbox.start()
            _emit({"kind": sandbox.kind, "base_url": sandbox.base_url,
                   "credentials": dict(sandbox.credentials), "ca_file": sandbox.ca_file,
                   "control_token": getattr(sandbox, "control_token", None)})
        _emit({"event": "ready", "people": args.contacts, "seed": args.seed,
               "activities_per_person": args.activities,
               "faults": faults.as_dict() if faults.enabled else None,
               "hubspot_tier": limits.hubspot.tier,
               "startup_seconds": round(time.perf_counter() - began, 3)})
        print(f"serving {args.contacts} people (seed {args.seed}); Ctrl-C to stop",
              file=sys.stderr, flush=True)
        if not args.no_index:
            threading.Thread(target=_build_index, args=(world,), name="sandbox-index",
                             daemon=True).start()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for sandbox in sandboxes:
            sandbox.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    _emit({"event": "stopped",
           "faults_injected": {s.kind: dict(s.faults.counts()) for s in sandboxes}})
    return 0


def _build_index(world: World) -> None:
    """Build the activity index now, so the first activity page does not wait for it."""
    began = time.perf_counter()
    try:
        stats = world.index().stats()
    except Exception as error:  # reported, not raised: the sandbox still serves
        print(f"syncer sandbox: building the activity index failed: {error}",
              file=sys.stderr, flush=True)
        return
    _emit({"event": "index_ready", "seconds": round(time.perf_counter() - began, 3),
           "activities": stats.activities, "index_bytes": stats.approx_bytes})


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sandbox = sub.add_parser(
        "sandbox", help="serve both sandbox CRMs until stopped",
        description="Serve the HubSpot and Salesforce sandboxes on 127.0.0.1 with their "
                    "documented limits and, if asked, injected faults (docs/sandbox.md).")
    sandbox.add_argument("--contacts", type=int, default=1000, help="people in the world")
    sandbox.add_argument("--seed", type=int, default=1, help="seed of the synthetic world")
    sandbox.add_argument("--activities", type=float, default=10.0, metavar="MEAN",
                         help="about how many activities each person has (default 10)")
    sandbox.add_argument("--hubspot-port", type=int, default=0)
    sandbox.add_argument("--salesforce-port", type=int, default=0)
    sandbox.add_argument("--hubspot-tier", choices=HUBSPOT_TIER_NAMES,
                         help="HubSpot request limits of this tier (default enterprise)")
    sandbox.add_argument("--salesforce-daily-limit", type=int, metavar="N",
                         help="Salesforce daily API request allocation (default 100000)")
    sandbox.add_argument("--session-ttl", type=float, metavar="SECONDS",
                         help="Salesforce sessions expire this long after they are issued")
    sandbox.add_argument("--no-syncer-fields", action="store_true",
                         help="start as a new portal and org: without the fields syncer "
                              "writes, for `syncer setup` to create")
    sandbox.add_argument("--hubspot-companies", action="store_true",
                         help="the HubSpot portal holds the world's companies, each contact "
                              "at its company's domain associated with it")
    sandbox.add_argument("--salesforce-accounts", action="store_true",
                         help="the org's Accounts sit at their company's web domain (their "
                              "people's email domain), each owned by a rep")
    sandbox.add_argument("--no-index", action="store_true",
                         help="do not build the activity index at start (it is built on "
                              "the first activity request instead)")
    faults = sandbox.add_argument_group(
        "faults", "injected failures, reproducible from --fault-seed (rates are 0..1)")
    faults.add_argument("--faults", type=Path, metavar="FILE.yaml",
                        help="faults: and limits: from a YAML file; flags override it")
    faults.add_argument("--fault-seed", type=int, metavar="N")
    faults.add_argument("--fault-5xx-rate", type=float, metavar="RATE")
    faults.add_argument("--fault-429-burst", metavar="EVERY:LENGTH",
                        help="the last LENGTH of every EVERY requests are rate limited")
    faults.add_argument("--latency-ms", type=float, metavar="MS")
    faults.add_argument("--latency-jitter-ms", type=float, metavar="MS")
    faults.add_argument("--timeout-rate", type=float, metavar="RATE",
                        help="requests that hang --timeout-seconds before answering")
    faults.add_argument("--timeout-seconds", type=float, metavar="SECONDS",
                        help="how long a timed-out request hangs (default 35)")
    faults.add_argument("--drop-rate", type=float, metavar="RATE",
                        help="connections closed without an answer")
    faults.add_argument("--record-failure-rate", type=float, metavar="RATE",
                        help="records of a write that fail on their own")
    faults.add_argument("--record-lock-share", type=float, metavar="SHARE",
                        help="share of record failures that are lock errors (default 0.5)")
    faults.add_argument("--editor-rate", type=float, metavar="RATE",
                        help="requests before which a person edits a record by hand")
    faults.add_argument("--session-expiry-rate", type=float, metavar="RATE",
                        help="Salesforce requests whose session is revoked (401)")
    sandbox.set_defaults(func=cmd_sandbox)
