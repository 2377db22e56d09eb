"""The second half of `syncer demo`: what happens after the first sync, told in a few lines.

A rep converts a qualified Salesforce lead and syncer follows the person to the new
Contact; an admin publishes a stricter model, sees what it did, and rolls it back, and
syncer writes the previous decisions back, each audit row citing the rollback. Each step
is a real sync against the sandboxes, and each line states what the store and the
sandbox CRMs hold afterwards.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from connectors.sandbox.salesforce.server import SalesforceSandbox
from syncer.cli.demo_config import config_flag
from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.domain.types import Stage
from syncer.run.pipeline import RunSummary, run_sync
from syncer.run.publication import rollback
from syncer.store.repository import Store

#: The looser MQL threshold the demo publishes by mistake, then rolls back.
LOOSER_MQL_SCORE = 20


def _sync(loaded: LoadedConfig, runtime: Runtime) -> RunSummary:
    return run_sync(loaded, runtime.require_store(), runtime.connectors, runtime.model,
                    datetime.now(timezone.utc))


def _mqls(store: Store) -> int:
    return sum(1 for d in store.decisions(store.person_keys(), scores=False).values()
               if d.stage is Stage.MQL)


def _number(value: object) -> str:
    return f"{float(str(value)):g}" if value not in (None, "") else "-"


def lead_conversion(loaded: LoadedConfig, runtime: Runtime) -> list[str]:
    """Convert the best-scoring qualified Salesforce lead as a rep would, sync, and say
    where syncer's values went."""
    name = next((c.name for c in loaded.config.connectors if c.kind == "salesforce"), None)
    sandbox = runtime.sandboxes.get(name or "")
    if name is None or not isinstance(sandbox, SalesforceSandbox):
        return []
    store = runtime.require_store()
    decisions = store.decisions(store.person_keys(), scores=False)
    qualified = sorted((d for d in decisions.values() if d.stage.rank >= Stage.MQL.rank),
                       key=lambda d: (-d.score, d.key))
    people = store.load_people([d.key for d in qualified])
    pick = next(((d, r) for d in qualified for r in people[d.key][0]
                 if r.source == name and r.object_type == "Lead"), None)
    if pick is None:
        return []
    decision, lead = pick
    contact_id, _ = sandbox.convert_lead(lead.record_id)
    summary = _sync(loaded, runtime)
    after = store.decisions([decision.key])[decision.key]
    contact = sandbox.record(contact_id)
    to_lead = store.audit_rows(run_id=summary.run_id, record_id=lead.record_id,
                               outcome="written")
    return [
        "",
        f"Lead conversion: a rep converted Salesforce lead {lead.record_id} "
        f"({decision.key}, {decision.stage.value.upper()}, score {decision.score}).",
        f"  the next sync (run {summary.run_id}) followed "
        f"{summary.identity[f'{name}.converted']} conversion: contact {contact_id} carries "
        f"score {_number(contact.get('Syncer_Score__c'))} and stage "
        f"{contact.get('Syncer_Stage__c')} "
        f"(syncer: {after.score}, {after.stage.value}); writes to the locked lead: "
        f"{len(to_lead)}; failures: {sum(summary.failures.values())}",
        f"  see: syncer audit --record {lead.record_id} --field identity"
        f"{config_flag(loaded.path)}",
    ]


def model_rollback(loaded: LoadedConfig, runtime: Runtime, model_file: Path) -> list[str]:
    """Publish a looser MQL threshold (the classic mistake that floods sales with MQLs),
    sync, roll it back, sync; say what each did. The rollback undoes the promotions too."""
    store = runtime.require_store()
    before_version, before_mqls = runtime.model.version, _mqls(store)
    text = model_file.read_text(encoding="utf-8")
    looser = re.sub(r"(?m)^(\s*mql_score:\s*)\d+", rf"\g<1>{LOOSER_MQL_SCORE}", text,
                    count=1)
    model_file.write_text(looser, encoding="utf-8")
    runtime.refresh_model(strict=True)  # the file changed: published by this sync
    looser_version = runtime.model.version
    changed = _sync(loaded, runtime)
    looser_mqls = _mqls(store)
    rollback(store, datetime.now(timezone.utc), note="demo: too few MQLs for sales")
    model_file.write_text(text, encoding="utf-8")  # the admin reverts the file too
    runtime.refresh_model()
    restored = _sync(loaded, runtime)
    rows = store.audit_rows(run_id=restored.run_id, outcome="written")
    cited = sum(1 for row in rows
                if any(r["rule_id"] == "model.rollback" for r in row["reasons"]))
    return [
        "",
        f"Model change: MQL threshold lowered to {LOOSER_MQL_SCORE}, published as "
        f"{looser_version}: MQLs {before_mqls} -> {looser_mqls}; "
        f"{sum(changed.fields_written.values())} fields written (run {changed.run_id}).",
        f"Rollback to {before_version} (syncer model rollback): MQLs back to "
        f"{_mqls(store)}; {sum(restored.fields_written.values())} fields written back, "
        f"{cited} of {len(rows)} audit rows cite the rollback (run {restored.run_id}).",
        f"  {model_file.name} is reverted to {before_version} too, so a later `syncer model "
        "publish` of it publishes nothing (the looser threshold stays rolled back).",
        f"  see: syncer model history{config_flag(loaded.path)}",
        f"       syncer audit --run {restored.run_id}{config_flag(loaded.path)}",
    ]
