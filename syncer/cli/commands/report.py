"""`syncer report`: the lifecycle funnel and time in stage (from the stage history), speed
to lead per team, MQLs and MQL -> SQL per owner; as text or --json."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from syncer.cli.commands.common import add_config_option, read_state
from syncer.domain.when import parse_when


def cmd_report(args: argparse.Namespace) -> int:
    from syncer.ops.funnel import format_funnel, funnel, funnel_json
    from syncer.ops.report import (
        format_report,
        in_period,
        overall_speed,
        owner_funnel,
        owners_json,
        speed_json,
        speed_to_lead,
    )
    from syncer.store import routing as routing_store
    from syncer.store import stage_history

    until: datetime = args.until or datetime.now(timezone.utc)
    since: datetime | None = args.since
    if since is not None and since >= until:
        print(f"syncer report: --since ({since.isoformat()}) must be before --until "
              f"({until.isoformat()}). Fix: swap them or widen the period", file=sys.stderr)
        return 2
    store = read_state(args)
    try:
        rows = in_period(routing_store.assignment_rows(store), since, until)
        decisions = store.decisions(sorted({str(r["person_key"]) for r in rows}))
        history = stage_history.period_rows(store, since, until)
        used = stage_history.stages_used(store)
    finally:
        store.close()
    result = funnel(history, since, until, used)
    stages = {key: decision.stage for key, decision in decisions.items()}
    speed, overall, owners = speed_to_lead(rows), overall_speed(rows), owner_funnel(rows, stages)
    if args.json:
        print(json.dumps({
            "period": {"since": since.isoformat() if since else None,
                       "until": until.isoformat()},
            "funnel": funnel_json(result), "speed_to_lead": speed_json(speed, overall),
            "owners": owners_json(owners)}, indent=2))
        return 0
    print(format_funnel(result))
    print()
    print(format_report(speed, owners, overall))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = add_config_option(sub.add_parser(
        "report", help="funnel and time in stage; speed to lead per team; MQL -> SQL per "
                       "owner",
        description="The lifecycle funnel of a period from the stage history (MQL entries "
                    "in the period and how many reached SAL, SQL, opportunity, customer), "
                    "time in each stage, speed to lead per team and the owners' MQL -> SQL "
                    "ratios (assignments of people who qualified in the period)."))
    report.add_argument("--since", type=parse_when,
                        help="period start (ISO, or 30d ago; default: the beginning)")
    report.add_argument("--until", type=parse_when,
                        help="period end, exclusive (ISO, or 1d ago; default: now)")
    report.add_argument("--json", action="store_true", help="one JSON document")
    report.add_argument("--state", help="state database URL (default: the config's)")
    report.set_defaults(func=cmd_report)
