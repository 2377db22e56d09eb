"""One connector's settings in the configuration: which CRM, where, with which secrets,
which fields syncer writes there and how (`connectors:` in syncer.yaml).

Validated with the rest of the config (syncer/domain/config.py), every problem at once.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from syncer.domain.config_base import Strict
from syncer.domain.secrets import SecretRef
from syncer.domain.types import Stage

#: Logical fields syncer writes; each connector maps them to its CRM's field names.
WRITEBACK_FIELDS: tuple[str, ...] = ("stage", "score", "fit_grade", "owner", "reasons",
                                     "owner_reason", "buying_role")


#: Person attributes every connector reads: not names for `person_fields`.
STANDARD_PERSON_FIELDS: frozenset[str] = frozenset({
    "email", "first_name", "last_name", "title", "company", "industry", "employees",
    "country"})
PERSON_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: seconds a run may wait for one CRM's rate limits (connectors.retry's default too)
RATE_LIMIT_DEADLINE_DEFAULT = 900.0

LogicalField = Literal["stage", "score", "fit_grade", "owner", "reasons", "owner_reason",
                       "buying_role"]
EditPolicy = Literal["keep", "overwrite"]


def _default_edit_policy() -> dict[LogicalField, EditPolicy]:
    """Stage and owner are where sales acts by hand; the rest is syncer's to recompute."""
    return {"stage": "keep", "owner": "keep"}


#: the connector kinds a config may name; connectors/__init__.py builds each (a test
#: keeps the two lists equal)
CONNECTOR_KIND_NAMES = ("hubspot", "salesforce")



class Schedule(Strict):
    every_minutes: float = Field(15, gt=0, le=24 * 60)


class ScoreFields(Strict):
    """CRM fields holding one named score (model `scores:`). Leave one out to not write it."""

    score: str | None = None
    fit: str | None = None
    engagement: str | None = None
    grade: str | None = None

    def names(self) -> list[str]:
        return [crm for crm in (self.score, self.fit, self.engagement, self.grade) if crm]


class FieldMap(Strict):
    """CRM field names holding what syncer decides. Leave one out to not write it."""

    stage: str | None = None
    score: str | None = None
    fit_grade: str | None = None
    owner: str | None = None
    reasons: str | None = None
    owner_reason: str | None = None
    #: the person's buying-group role from their title (model `accounts.buying_roles`)
    buying_role: str | None = None
    #: named score (as in the model's `scores:`) -> the CRM fields that hold it
    scores: dict[str, ScoreFields] = Field(default_factory=dict)

    def items(self) -> list[tuple[str, str]]:
        return [(name, crm) for name in WRITEBACK_FIELDS
                if (crm := getattr(self, name)) is not None]

    def decided(self) -> list[str]:
        """Every CRM field whose value syncer decides (the fields above and named scores)."""
        return [crm for _, crm in self.items()] + [
            crm for fields in self.scores.values() for crm in fields.names()]


#: The account fields a connector's `account_fields: {}` writes when it names none, by kind.
ACCOUNT_FIELD_DEFAULTS: dict[str, dict[str, str]] = {
    "hubspot": {"score": "syncer_account_score", "grade": "syncer_account_grade",
                "mqa": "syncer_account_mqa", "reasons": "syncer_account_reasons"},
    "salesforce": {"score": "Syncer_Account_Score__c", "grade": "Syncer_Account_Grade__c",
                   "mqa": "Syncer_Account_MQA__c", "reasons": "Syncer_Account_Reasons__c"},
}


class AccountFields(Strict):
    """CRM fields on the account record (HubSpot company, Salesforce Account) that hold
    the account's decision (model `accounts:`). A key left out takes the kind's default
    (ACCOUNT_FIELD_DEFAULTS); null: not written."""

    score: str | None = None
    grade: str | None = None
    mqa: str | None = None
    reasons: str | None = None

    def items(self) -> list[tuple[str, str]]:
        return [(name, crm) for name in ("score", "grade", "mqa", "reasons")
                if (crm := getattr(self, name)) is not None]

    def names(self) -> list[str]:
        return [crm for _, crm in self.items()]


class CreateConfig(Strict):
    """Create people syncer knows from another CRM in this one, once they pass the gate.

    The gate is deliberately strict by default (MQL or further along): pushing every
    form-filler into Salesforce is what buries sales in junk leads.
    """

    enabled: bool = True
    min_stage: Stage = Stage.MQL
    min_score: int | None = None
    #: fit grades allowed through (empty: any grade)
    fit_grades: list[str] = Field(default_factory=list)
    #: Salesforce: what a new person becomes. account_match: a Contact under the Account
    #: whose name (or website domain) matches the person's company, else a Lead.
    create_as: Literal["account_match", "lead", "contact"] = "account_match"


class ConnectorConfig(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
    kind: str
    sandbox: bool = False
    base_url: str | None = None
    ca_file: str | None = None
    credentials: dict[str, SecretRef] = Field(default_factory=dict)
    schedule: Schedule = Schedule()
    fields: FieldMap
    stage_values: dict[Stage, str] = Field(default_factory=dict)
    reasons_max_length: int = Field(255, ge=20, le=65_536)
    #: CRM owner id for a person routed to someone who is not a user in this CRM (e.g. a
    #: Salesforce lead queue); without it the owner field is left alone there.
    fallback_owner_id: str | None = None
    #: per logical field: a value a person set in the CRM after syncer's last write is
    #: kept ("keep") or replaced by syncer's decision ("overwrite").
    manual_edits: dict[LogicalField, EditPolicy] = Field(default_factory=_default_edit_policy)
    #: API requests this connector may spend per UTC day (None: no budget of syncer's own).
    daily_api_budget: int | None = Field(None, ge=1)
    #: how long one run may wait, in all, for this CRM's rate-limit answers (429,
    #: REQUEST_LIMIT_EXCEEDED) before it stops cleanly; the next run goes on from there.
    rate_limit_deadline_seconds: float = RATE_LIMIT_DEADLINE_DEFAULT
    #: Salesforce: a full pull of more than this many Leads (or Contacts) reads them with
    #: one Bulk API 2.0 query job instead of REST pages (None: 10,000; 0: every full pull).
    bulk_query_threshold: int | None = None
    #: HubSpot: engagement types pulled as sales activity (true: calls, meetings, emails,
    #: notes, tasks; or a list of them; connectors/hubspot/engagements.py). None: none.
    engagements: bool | list[Literal["calls", "meetings", "emails", "notes", "tasks"]] | None \
        = None
    #: reconciliation sweep (syncer/run/sweep.py; with accounts on, the companies' too:
    #: syncer/run/account_sweep.py): a pass over every record starts when the last one is
    #: this many hours old (0: never; a full pull is a pass)
    sweep_every_hours: float = 24.0
    #: API calls one run may spend on each sweep (people's, accounts'); a pass goes on over
    #: as many runs as it needs
    sweep_calls_per_run: int = 50
    #: create qualified people from the other CRMs here (None: never create)
    create: CreateConfig | None = None
    #: syncer person field -> the CRM field read into Person.properties, merged over the
    #: connector's defaults (HubSpot: source, latest_source, visits, page_views;
    #: Salesforce: source); null drops a default.
    person_fields: dict[str, str | None] = Field(default_factory=dict)
    #: write each account's decision to this CRM's account records (None: never)
    account_fields: AccountFields | None = None

    @model_validator(mode="before")
    @classmethod
    def _account_field_defaults(cls, data: object) -> object:
        """`account_fields: {}` means the kind's default field names; a key given (even
        null) keeps what was written."""
        if not isinstance(data, dict) or not isinstance(data.get("account_fields"), dict):
            return data
        defaults = ACCOUNT_FIELD_DEFAULTS.get(str(data.get("kind")), {})
        return {**data, "account_fields": {**defaults, **data["account_fields"]}}

    def kept_crm_fields(self) -> frozenset[str]:
        """CRM field names whose manual edits are respected."""
        mapped = dict(self.fields.items())
        return frozenset(mapped[name] for name, policy in self.manual_edits.items()
                         if policy == "keep" and name in mapped)
    timeout_seconds: float = Field(30.0, gt=0, le=600)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in CONNECTOR_KIND_NAMES:
            known = ", ".join(sorted(CONNECTOR_KIND_NAMES))
            raise ValueError(f"unknown connector kind {value!r}; use one of: {known}")
        return value

    @field_validator("rate_limit_deadline_seconds")
    @classmethod
    def _usable_deadline(cls, value: float) -> float:
        if not 1 <= value <= 86_400:
            raise ValueError(f"{value:g} is not a usable number of seconds. Fix: from 1 to "
                             f"86400 (default {RATE_LIMIT_DEADLINE_DEFAULT:g}: a run waits up "
                             "to 15 minutes in all for this CRM's rate limits, then stops and "
                             "the next run goes on)")
        return value

    @field_validator("sweep_every_hours")
    @classmethod
    def _usable_sweep_interval(cls, value: float) -> float:
        if not 0 <= value <= 8_760:
            raise ValueError(f"{value:g} is not a usable number of hours. Fix: from 0 to 8760 "
                             "(default 24: a reconciliation sweep daily; 0: never sweep)")
        return value

    @field_validator("sweep_calls_per_run")
    @classmethod
    def _usable_sweep_budget(cls, value: int) -> int:
        if not 1 <= value <= 1_000_000:
            raise ValueError(f"{value} is not a usable number of calls. Fix: from 1 to "
                             "1000000 (default 50: each sweep spends at most 50 API calls per "
                             "run and goes on in the next); set sweep_every_hours: 0 to turn "
                             "the sweep off")
        return value

    @field_validator("bulk_query_threshold")
    @classmethod
    def _usable_bulk_threshold(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= 1_000_000_000:
            raise ValueError(f"{value} is not a usable record count. Fix: from 0 to "
                             "1000000000 (default 10000: a full pull of more than 10,000 "
                             "Leads or Contacts uses a Bulk API 2.0 query job; 0: every full "
                             "pull does), or leave it out")
        return value

    @model_validator(mode="after")
    def _bulk_threshold_on_salesforce(self) -> ConnectorConfig:
        if self.bulk_query_threshold is not None and self.kind != "salesforce":
            raise ValueError(f"`bulk_query_threshold` is a Salesforce setting (Bulk API "
                             f"2.0); this connector is {self.kind}. Fix: remove it here")
        if self.engagements not in (None, False) and self.kind != "hubspot":
            raise ValueError(f"`engagements` is a HubSpot setting (Salesforce Tasks, Events "
                             f"and Opportunities are always read); this connector is "
                             f"{self.kind}. Fix: remove it here")
        return self

    @field_validator("person_fields")
    @classmethod
    def _person_field_names(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        """Names a model rule can use (docs/model-language.md), never a standard field's."""
        problems = []
        for name, crm in value.items():
            if not PERSON_FIELD_NAME.fullmatch(name):
                problems.append(f"{name!r} is not a usable field name. Fix: lowercase "
                                "letters, digits and '_', starting with a letter "
                                "(e.g. lead_source)")
            elif name in STANDARD_PERSON_FIELDS:
                problems.append(f"{name!r} is a standard person field syncer always reads. "
                                f"Fix: use another name (e.g. crm_{name})")
            if crm is not None and not crm.strip():
                problems.append(f"{name}: the CRM field name is empty. Fix: name the CRM "
                                "field, or null to drop a default mapping")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _person_fields_not_decided(self) -> ConnectorConfig:
        """A rule reading a field syncer writes would score syncer's own output."""
        decided = {crm.lower() for crm in self.fields.decided()}
        taken = [f"{name}: {crm}" for name, crm in self.person_fields.items()
                 if crm is not None and crm.strip().lower() in decided]
        if taken:
            raise ValueError(f"person_fields {', '.join(taken)}: syncer writes that field "
                             "(`fields`), so a rule would read its own output. Fix: map "
                             "another CRM field")
        return self

    @model_validator(mode="after")
    def _reachable(self) -> ConnectorConfig:
        if not self.sandbox and not self.base_url:
            raise ValueError("set `base_url` to the CRM's API address, or `sandbox: true` to "
                             "use the built-in sandbox")
        if not self.sandbox and not self.credentials:
            raise ValueError("set `credentials` (each as `env:` or `file:`), or `sandbox: true`")
        if self.fields.stage and not self.stage_values:
            raise ValueError("`fields.stage` is set but `stage_values` is empty; map each "
                             "stage (lead, mql, sql, ...) to the CRM's value")
        return self
