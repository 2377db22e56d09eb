"""From a decision to the CRM field values it implies, and the diff against the CRM.

Pure functions: which value each configured CRM field should hold for a decision, which
owner a record already has, and which values really change. The pipeline calls them; they
know no CRM by name, only the connector's field map, stage values and owner directory.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from syncer.domain.config import LoadedConfig
from syncer.domain.connector_config import ConnectorConfig, ScoreFields
from syncer.domain.types import Decision, Owner, Person, RecordUpdate, Stage
from syncer.domain.values import canonical
from syncer.qualify.explain import summarize
from syncer.qualify.model import Model


@dataclass(frozen=True)
class OwnerDirectory:
    """One connector's users: owner id <-> email, and who is active."""

    email_by_id: Mapping[str, str]
    active_id_by_email: Mapping[str, str]

    @classmethod
    def build(cls, owners: Iterable[Owner]) -> OwnerDirectory:
        email_by_id: dict[str, str] = {}
        active: dict[str, str] = {}
        for owner in owners:
            email = owner.email.strip().lower()
            email_by_id[owner.owner_id] = email
            if owner.active:
                active.setdefault(email, owner.owner_id)
        return cls(email_by_id, active)

    def active_email(self, owner_id: str | None) -> str | None:
        """The email of an active user with this id; None for queues, unknown or inactive."""
        if not owner_id:
            return None
        email = self.email_by_id.get(owner_id)
        return email if email is not None and email in self.active_id_by_email else None


def stage_from_crm(connector: ConnectorConfig, person: Person) -> Stage | None:
    """The domain stage a record's CRM stage field holds, if it maps to one."""
    field = connector.fields.stage
    if field is None:
        return None
    value = canonical(person.crm_values.get(field))
    for stage, crm_value in connector.stage_values.items():
        if crm_value == value:
            return stage
    return None


def existing_owner(connector: ConnectorConfig, crm_values: Mapping[str, object],
                   directory: OwnerDirectory) -> str | None:
    """The email of the active human who owns a record with these CRM values now (set by
    syncer or by hand)."""
    field = connector.fields.owner
    if field is None:
        return None
    return directory.active_email(canonical(crm_values.get(field)))


def desired_values(connector: ConnectorConfig, decision: Decision,
                   directory: OwnerDirectory) -> dict[str, str | None]:
    """CRM field -> value the decision implies. A field is left out when there is nothing
    to write there (stage with no CRM value mapped, owner who is not a user in this CRM)."""
    fields = connector.fields
    values: dict[str, str | None] = {}
    if fields.stage is not None and decision.stage in connector.stage_values:
        values[fields.stage] = connector.stage_values[decision.stage]
    if fields.score is not None:
        values[fields.score] = str(decision.score)
    if fields.fit_grade is not None:
        values[fields.fit_grade] = decision.fit_grade
    if fields.reasons is not None:
        values[fields.reasons] = summarize(decision, connector.reasons_max_length)
    if fields.owner is not None and decision.owner_email is not None:
        owner_id = (directory.active_id_by_email.get(decision.owner_email.lower())
                    or connector.fallback_owner_id)
        if owner_id is not None:
            values[fields.owner] = owner_id
    if fields.owner_reason is not None:
        routing = [r.detail for r in decision.reasons if r.rule_id.startswith("routing.")]
        if routing:
            values[fields.owner_reason] = routing[-1][:connector.reasons_max_length]
    if fields.scores:
        values.update(score_values(fields.scores, decision))
    return values


def score_values(mapped: Mapping[str, ScoreFields], decision: Decision
                 ) -> dict[str, str | None]:
    """CRM field -> value for each named score the connector maps (`fields.scores`): the
    total as a whole number, fit and engagement as numbers (number_text), the grade as is.
    A score the decision does not have is left out (check_score_fields reports it at
    start-up, so that only happens for decisions made before the model had it)."""
    cards = {card.name: card for card in decision.scores}
    values: dict[str, str | None] = {}
    for name, crm in mapped.items():
        card = cards.get(name)
        if card is None:
            continue
        if crm.score is not None:
            values[crm.score] = str(card.total)
        if crm.fit is not None:
            values[crm.fit] = number_text(card.fit)
        if crm.engagement is not None:
            values[crm.engagement] = number_text(card.engagement)
        if crm.grade is not None:
            values[crm.grade] = card.grade
    return values


def number_text(value: float) -> str:
    """Points as a CRM number field holds them: two decimals at most, no trailing zeros,
    whole numbers without a point ("12", "8.4", "-3.25"), so that `canonical` compares
    what syncer wrote with what the CRM gives back, and float noise (8.399999999999999)
    never causes a write."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def check_score_fields(loaded: LoadedConfig, model: Model) -> list[str]:
    """Problems, in the config's terms with a Fix, with the named scores the connectors map
    (`fields.scores`): each must be a score of the model (its primary score or one listed
    under `scores:`). Empty when all is well; call it at start-up with the loaded model."""
    known = [model.primary_score, *(named.name for named in model.scores)]
    problems: list[str] = []
    for index, connector in enumerate(loaded.config.connectors):
        for name in connector.fields.scores:
            if name in known:
                continue
            guess = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            problems.append(
                f"{loaded.path}: connectors[{index}] (name: {connector.name}).fields.scores."
                f"{name}: the model {model.name} has no score named '{name}'{hint}. Fix: use "
                f"one of {', '.join(known)}, or add a score named '{name}' under `scores:` in "
                f"{loaded.model_path.name}")
    return problems


def record_update(person: Person, desired: Mapping[str, str | None]) -> RecordUpdate | None:
    """Only the fields whose value really changes; None when nothing does."""
    changed = {field: value for field, value in desired.items()
               if canonical(value) != canonical(person.crm_values.get(field))}
    if not changed:
        return None
    return RecordUpdate(person.record_id, person.object_type, changed)


def respect_manual_edits(update: RecordUpdate, record: Person,
                         written: Mapping[tuple[str, str], tuple[str | None, str]],
                         keep_fields: frozenset[str]
                         ) -> tuple[RecordUpdate | None, dict[str, str | None]]:
    """Take out of `update` the fields a person set by hand after syncer's last write.

    Only fields in `keep_fields` (the config's `manual_edits: keep`) are protected. A field
    is a new manual edit when syncer wrote it before and the CRM now holds something else;
    it stays held (quietly) while the CRM keeps that value, and is syncer's again once a
    person clears it. Returns the remaining update and the newly held {field: CRM value}.
    """
    remaining: dict[str, str | None] = {}
    held: dict[str, str | None] = {}
    for field, value in update.values.items():
        last = written.get((record.record_id, field))
        current = canonical(record.crm_values.get(field))
        if field in keep_fields and last is not None and current is not None:
            last_value, origin = last
            if current != canonical(last_value):
                held[field] = record.crm_values.get(field)
                continue
            if origin == "manual":
                continue
        remaining[field] = value
    if not remaining:
        return None, held
    return RecordUpdate(update.record_id, update.object_type, remaining), held
