"""The `syncer` command line. Thin: parse arguments, call the library, print.

Errors an admin can fix (config, model, secrets, an unreachable CRM, a state URL that is
not one or names no existing state) print one clear message to stderr and exit 2; they
never print a traceback or a secret. A state database migrated by a newer syncer exits 3.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connectors.base import ConnectorError
from syncer.commands import dead_letters, inspect, model, report, sandbox, sync
from syncer.config import ConfigError
from syncer.qualify import ModelError
from syncer.ratelimit import RetriesExhausted
from syncer.store.location import StateUnavailable
from syncer.store.migrations import SchemaTooNew

#: Command modules, in the order their commands appear in --help.
COMMANDS = (sync, sandbox, inspect, report, dead_letters, model)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncer", description="Lead-qualification sync daemon for HubSpot and Salesforce.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (ConfigError, ModelError, StateUnavailable) as error:
        print(str(error), file=sys.stderr)
        return 2
    except (ConnectorError, RetriesExhausted) as error:
        print(f"sync failed: {error}", file=sys.stderr)
        return 2
    except SchemaTooNew as error:
        print(str(error), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
