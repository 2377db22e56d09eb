"""The summary `syncer sync` and `syncer demo` print after a run.

Its own module so that a sync imports only this, not the demo (its world generator and
learning loop): a scheduled `syncer sync --once` starts faster.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy.engine import make_url

from syncer.domain.errors import by_cause, failure_lines
from syncer.run.pipeline import RunSummary


def format_summary(summary: RunSummary, state_url: str) -> str:
    """The run summary as aligned text lines."""
    stages = summary.stages
    lines = [
        f"run {summary.run_id}{' (dry run: nothing written)' if summary.dry_run else ''}",
        f"  people qualified : {summary.people}",
        "  stages           : " + ", ".join(f"{k} {v}" for k, v in sorted(stages.items())),
        f"  MQLs / SQLs      : {stages.get('mql', 0)} / {stages.get('sql', 0)}",
        f"  owners assigned  : {summary.owners_assigned}",
    ]
    verb = "would write" if summary.dry_run else "wrote"
    for name in sorted(set(summary.api_calls) | set(summary.records_pulled)):
        if summary.dry_run:
            planned = [p for p in summary.planned if p.connector == name]
            fields, records = len(planned), len({p.record_id for p in planned})
        else:
            fields, records = summary.fields_written[name], summary.records_written[name]
        lines.append(
            f"  {name:<17}: pulled {summary.records_pulled[name]} records and "
            f"{summary.activities_pulled[name]} activities; {verb} {fields} fields on "
            f"{records} records; {summary.failures[name]} failed; "
            f"{summary.api_calls[name]} API calls")
    created = summary.creation
    to_create = Counter(name for name, _ in created.planned_creations)
    for name in sorted(set(created.created) | set(created.gated) | set(created.linked)
                       | set(to_create)):
        made = (f"would create {to_create[name]} qualified people in {name}" if summary.dry_run
                else f"{created.created[name]} qualified people in {name} "
                     f"({created.linked[name]} linked to an existing record)")
        lines.append(f"  created          : {made}; {created.gated[name]} held back by the "
                     "gate")
    for event, count in sorted(summary.identity.items()):
        lines.append(f"  identity         : {count} {event.replace('.', ' ')}")
    if summary.failures_by_code:
        causes = by_cause(summary.failures_by_code.elements())
        lines.append("  failures by cause: " + ", ".join(
            f"{count} {cause}" for cause, count in causes.most_common()))
        lines += [f"    {line}" for line in failure_lines(summary.failures_by_field)]
    url = make_url(state_url)
    lines.append(f"  state and audit  : {url.render_as_string(hide_password=True)}")
    return "\n".join(lines)
