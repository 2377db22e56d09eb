"""`syncer report`: speed to lead per team, MQLs and MQL -> SQL per owner."""

from __future__ import annotations

import argparse

from syncer.commands.common import add_config_option, state_url
from syncer.report import format_report, owner_funnel, speed_to_lead
from syncer.store import routing as routing_store
from syncer.store.repository import Store


def cmd_report(args: argparse.Namespace) -> int:
    store = Store.open(state_url(args))
    try:
        rows = routing_store.assignment_rows(store)
        decisions = store.decisions(sorted({str(r["person_key"]) for r in rows}))
    finally:
        store.close()
    stages = {key: decision.stage for key, decision in decisions.items()}
    print(format_report(speed_to_lead(rows), owner_funnel(rows, stages)))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = add_config_option(sub.add_parser(
        "report", help="speed to lead per team; MQLs and MQL -> SQL ratio per owner"))
    report.add_argument("--state", help="state database URL (default: the config's)")
    report.set_defaults(func=cmd_report)
