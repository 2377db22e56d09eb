"""`syncer setup`: the CRM fields a config needs, and creating the missing ones.

Why: before the first real sync an admin had to create 4 to 14 fields by hand from a
README paragraph; a typo there failed the first sync. Setup reads the same config the sync
reads, so what it creates is exactly what the sync will write. It never creates a
standard field (OwnerId, lifecyclestage, LeadSource): a missing one is a typo to fix.
Idempotent: a field that exists is left alone, whatever its definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from syncer.domain.config import LoadedConfig
from syncer.domain.connector_config import ConnectorConfig
from syncer.domain.field_setup import FieldAdmin, FieldKind, FieldNeed, NoRight
from syncer.domain.types import Stage


def _label(name: str) -> str:
    """'syncer_fit_grade' / 'Syncer_Fit_Grade__c' -> 'Syncer fit grade'."""
    words = name.removesuffix("__c").replace("_", " ").strip()
    return words[:1].upper() + words[1:].lower()


def _stage_label(stage: Stage) -> str:
    """What a rep sees in the picklist: MQL, SAL, SQL; Lead, Opportunity, ..."""
    return stage.value.upper() if len(stage.value) <= 3 else stage.value.capitalize()


def field_needs(loaded: LoadedConfig, connector: ConnectorConfig) -> list[FieldNeed]:
    """Every CRM field the config maps on this connector, each once, with its kind."""
    fields = connector.fields
    wanted: list[tuple[str, FieldKind, str]] = []
    if fields.stage:
        wanted.append((fields.stage, "picklist", "Lifecycle stage decided by syncer"))
    if fields.score:
        wanted.append((fields.score, "number", "Lead score written by syncer"))
    if fields.fit_grade:
        wanted.append((fields.fit_grade, "text", "Fit grade written by syncer"))
    if fields.owner:
        wanted.append((fields.owner, "text", "Owner chosen by syncer's routing"))
    if fields.reasons:
        wanted.append((fields.reasons, "long_text", "Why syncer scored the person as it did"))
    if fields.owner_reason:
        wanted.append((fields.owner_reason, "text", "Which routing rule chose the owner"))
    for score, parts in fields.scores.items():
        for part, crm in (("score", parts.score), ("fit", parts.fit),
                          ("engagement", parts.engagement), ("grade", parts.grade)):
            if crm:
                kind: FieldKind = "text" if part == "grade" else "number"
                wanted.append((crm, kind, f"{score} score: {part}, written by syncer"))
    for name, crm in connector.person_fields.items():
        if crm:
            wanted.append((crm, "text", f"Person field {name}, read by syncer's model"))
    for shared in loaded.config.shared_fields:
        crm = shared.fields.get(connector.name)
        if crm:
            wanted.append((crm, "text", f"{shared.name}, kept in step by syncer "
                                        f"({shared.policy})"))
    stage_options = tuple((connector.stage_values[s], _stage_label(s)) for s in Stage
                          if s in connector.stage_values)
    needs: dict[str, FieldNeed] = {}
    for crm, kind, description in wanted:
        length = connector.reasons_max_length if kind == "long_text" else (
            8 if crm in (fields.fit_grade, *(p.grade for p in fields.scores.values()))
            else 255)
        scale = 2 if kind == "number" and crm not in (
            fields.score, *(p.score for p in fields.scores.values())) else 0
        needs.setdefault(crm.lower(), FieldNeed(
            crm, kind, _label(crm), description,
            stage_options if kind == "picklist" else (), length, scale))
    return list(needs.values())


@dataclass
class SetupReport:
    """What setup did (or would do) on one connector."""

    connector: str
    lines: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    #: object.field -> the definition an admin must deploy (the user may not create it)
    for_admin: dict[str, str] = field(default_factory=dict)
    #: standard fields the config names that the CRM lacks (a typo: setup cannot fix it)
    problems: list[str] = field(default_factory=list)


def missing_fields(admin: FieldAdmin, needs: Sequence[FieldNeed],
                   objects: Sequence[str] | None = None) -> list[tuple[str, FieldNeed]]:
    """(object, need) of each needed field an object (`objects`, else the admin's person
    objects) lacks (one request per object)."""
    missing = []
    for obj in admin.objects if objects is None else objects:
        present = admin.present(obj)
        missing += [(obj, need) for need in needs if need.name.lower() not in present]
    return missing


def set_up(admin: FieldAdmin, name: str, needs: list[FieldNeed], *,
           dry_run: bool, account_needs: Sequence[FieldNeed] = ()) -> SetupReport:
    """Create the fields of `needs` the CRM lacks on its person objects, and those of
    `account_needs` on its account objects (`admin.account_objects`: HubSpot companies,
    Salesforce Account), or list them, with `dry_run`."""
    report = SetupReport(name)
    missing = missing_fields(admin, needs)
    if account_needs:
        missing += missing_fields(admin, account_needs, admin.account_objects)
        needs = [*needs, *account_needs]
    report.problems = [f"{name}: {obj} has no field {need.name}, and it is not a custom field "
                       "setup may create. Fix: check its spelling in the config"
                       for obj, need in missing if not admin.creatable(need.name)]
    to_create = [(obj, need) for obj, need in missing if admin.creatable(need.name)]
    if not to_create:
        report.lines.append(f"{name}: all {len(needs)} fields present" if not missing
                            else f"{name}: nothing setup can create")
        return report
    try:
        report.lines += [f"{name}: {line}" for line in admin.prepare(dry_run)]
    except NoRight as refused:  # no group, no properties: all of it is the admin's
        report.lines.append(f"{name}: {refused}")
        report.for_admin["property group"] = refused.definition
        report.for_admin.update({f"{obj}.{need.name}": admin.definition(obj, need)
                                 for obj, need in to_create})
        return report
    for obj, need in to_create:
        where = f"{obj}.{need.name}"
        if dry_run:
            report.lines.append(f"{name}: would create {where} ({need.kind})")
            continue
        try:
            admin.create(obj, need)
        except NoRight as refused:
            report.for_admin[where] = refused.definition
            report.lines.append(f"{name}: not allowed to create {where}: {refused}")
            continue
        report.created.append(where)
        report.lines.append(f"{name}: created {where} ({need.kind})")
    return report
