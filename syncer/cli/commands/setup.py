"""`syncer setup`: create the CRM fields the config maps (syncer/run/setup_fields.py).

Exit 0 when every field is there (or was created; with --dry-run: whatever is missing is
listed), 1 when a field is left for an admin (its definition is printed) or the config
names a standard field the CRM lacks.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from syncer.cli.commands.common import add_config_option

if TYPE_CHECKING:
    from syncer.cli.runtime import Runtime
    from syncer.domain.config import LoadedConfig
    from syncer.domain.connector import ConnectorSettings
    from syncer.domain.field_setup import FieldAdmin
    from syncer.run.setup_fields import SetupReport


def field_admin(settings: ConnectorSettings) -> FieldAdmin:
    """The FieldAdmin of a connector's kind (the command's wiring names the CRMs)."""
    if settings.kind == "hubspot":
        from connectors.hubspot.fields import HubSpotFields
        return HubSpotFields(settings)
    from connectors.salesforce.fields import SalesforceFields
    return SalesforceFields(settings)


def set_up_all(loaded: LoadedConfig, runtime: Runtime, *,
               dry_run: bool) -> list[SetupReport]:
    """Setup on every connector of the config (the sandboxes of `runtime` for those with
    `sandbox: true`)."""
    from syncer.domain.config import connector_settings
    from syncer.run.setup_fields import account_field_needs, field_needs, set_up

    reports = []
    for connector in loaded.config.connectors:
        sandbox = runtime.sandboxes.get(connector.name)
        admin = field_admin(connector_settings(loaded, connector, sandbox))
        try:
            reports.append(set_up(admin, connector.name, field_needs(loaded, connector),
                                  dry_run=dry_run,
                                  account_needs=account_field_needs(connector)))
        finally:
            admin.close()
    return reports


def report_lines(reports: list[SetupReport], dry_run: bool) -> list[str]:
    lines = [line for report in reports for line in [*report.problems, *report.lines]]
    for report in reports:
        for where, definition in report.for_admin.items():
            lines += ["", f"{report.connector}: an admin must create {where}:", definition]
    if not dry_run:
        created = sum(len(r.created) for r in reports)
        lines.append(f"setup: created {created} field{'s' if created != 1 else ''}")
    return lines


def setup_summary(reports: list[SetupReport]) -> str:
    """One line for the demo: what setup created on each CRM."""
    made = ", ".join(f"{len(r.created)} in {r.connector}" for r in reports)
    left = sum(len(r.for_admin) + len(r.problems) for r in reports)
    return (f"syncer setup: created the fields the config maps ({made})"
            + (f"; {left} left for an admin" if left else ""))


def cmd_setup(args: argparse.Namespace) -> int:
    from syncer.cli.commands.common import load_args_config
    from syncer.cli.runtime import Runtime
    from syncer.observe.logs import configure_logging

    loaded = load_args_config(args)
    configure_logging(loaded.config.log_level, sys.stderr)  # stdout: what setup did
    with Runtime(loaded, open_store=False) as runtime:
        reports = set_up_all(loaded, runtime, dry_run=args.dry_run)
    for line in report_lines(reports, args.dry_run):
        print(line, file=sys.stdout)
    left = any(r.for_admin or r.problems for r in reports)
    return 1 if left else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_config_option(sub.add_parser(
        "setup", help="create the CRM fields the config maps (HubSpot properties, "
                      "Salesforce custom fields)"))
    parser.add_argument("--dry-run", action="store_true",
                        help="create nothing; list the fields setup would create")
    parser.set_defaults(func=cmd_setup)
