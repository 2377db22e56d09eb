"""`syncer sandbox`: serve both sandbox CRMs until stopped."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone


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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sandbox = sub.add_parser("sandbox", help="serve both sandbox CRMs until stopped")
    sandbox.add_argument("--contacts", type=int, default=1000)
    sandbox.add_argument("--seed", type=int, default=1)
    sandbox.add_argument("--hubspot-port", type=int, default=0)
    sandbox.add_argument("--salesforce-port", type=int, default=0)
    sandbox.set_defaults(func=cmd_sandbox)
