"""`syncer dead-letters [retry]`: writes a CRM refused for good, and replaying them."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from syncer.cli.commands.common import add_config_option, load_args_config, read_state


def cmd_list(args: argparse.Namespace) -> int:
    from syncer.store import dead_letters

    store = read_state(args)
    try:
        letters = dead_letters.open_letters(store, args.connector)
    finally:
        store.close()
    if not letters:
        print("no dead letters")
        return 0
    print(f"{len(letters)} dead letter{'s' if len(letters) != 1 else ''}:")
    for letter in letters:
        fields = ", ".join(f"{k}={v!r}" for k, v in sorted(letter.fields.items()))
        print(f"  #{letter.id} {letter.connector}:{letter.object_type}:{letter.record_id} "
              f"({letter.person_key}) {letter.error_code}: {letter.message} — "
              f"{letter.attempts} attempt{'s' if letter.attempts != 1 else ''}, last "
              f"{letter.last_failed_at:%Y-%m-%d %H:%M} — {fields}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from syncer.cli.runtime import Runtime
    from syncer.run.replay import replay_dead_letters
    from syncer.store.locks import LockHeld

    loaded = load_args_config(args)
    with Runtime(loaded) as runtime:
        try:
            run_id, tally = replay_dead_letters(loaded, runtime.require_store(),
                                                runtime.connectors,
                                                datetime.now(timezone.utc), args.connector)
        except LockHeld as busy:
            print(f"{busy}; retry the dead letters once it is done", file=sys.stderr)
            return 1
    written = sum(tally.records_written.values())
    failed = sum(tally.failures.values())
    print(f"replay {run_id}: {written} record{'s' if written != 1 else ''} written, "
          f"{failed} still failing")
    gone = sum(tally.left_for_sync.values())
    if gone:
        print(f"  {gone} left for the next sync: their record was converted, merged or "
              "deleted; the sync follows it to the record that carries on and closes them")
    return 0 if not failed else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_config_option(sub.add_parser(
        "dead-letters", help="list writes that failed for good; `retry` replays them"))
    parser.add_argument("action", nargs="?", choices=["list", "retry"], default="list")
    parser.add_argument("--connector", help="only this connector's letters")
    parser.add_argument("--state", help="state database URL (default: the config's)")
    parser.set_defaults(func=lambda args: cmd_retry(args) if args.action == "retry"
                        else cmd_list(args))
