"""`syncer explain` and `syncer audit`: why a person is where they are, and what changed."""

from __future__ import annotations

import argparse
import sys

from syncer.commands.common import add_config_option, state_url
from syncer.qualify.explain import breakdown
from syncer.store.repository import Store


def cmd_explain(args: argparse.Namespace) -> int:
    store = Store.open(state_url(args))
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
    store = Store.open(state_url(args))
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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain = add_config_option(sub.add_parser(
        "explain", help="score, stage, owner and every reason for one person"))
    explain.add_argument("email")
    explain.add_argument("--state", help="state database URL (default: the config's)")
    explain.set_defaults(func=cmd_explain)

    audit = add_config_option(sub.add_parser("audit", help="one person's audit history"))
    audit.add_argument("--email", required=True)
    audit.add_argument("--state", help="state database URL (default: the config's)")
    audit.set_defaults(func=cmd_audit)
