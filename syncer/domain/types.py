"""The domain model every part of syncer speaks.

Connectors translate CRM records into these types and back; the qualification core reads
and returns them; the pipeline stores and diffs them. They are small frozen values so that
the core can be a pure function of its inputs and a decision can be compared and replayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ActivityType(StrEnum):
    """The ONE normalized activity vocabulary all connectors map into.

    Scoring rules are written against these names, so a HubSpot form submission and a
    Salesforce campaign response that mean the same thing score the same.

    The last seven are *sales* activities (SALES_ACTIVITIES): what a rep logged on the
    person (a call, an email sent by hand, a note, a task) and the opportunity outcomes.
    No rule scores them unless a model names them; the SLA reads them as "worked" and the
    outcome history counts them for learning. New members go at the end: the sandbox
    encodes a type by its position.
    """

    FORM_FILL = "form_fill"
    CONTENT_DOWNLOAD = "content_download"
    WEBINAR_REGISTRATION = "webinar_registration"
    WEBINAR_ATTENDANCE = "webinar_attendance"
    PRICING_PAGE_VIEW = "pricing_page_view"
    PAGE_VIEW = "page_view"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    EMAIL_BOUNCE = "email_bounce"
    UNSUBSCRIBE = "unsubscribe"
    NEWSLETTER_SIGNUP = "newsletter_signup"
    DEMO_REQUEST = "demo_request"
    PRICING_REQUEST = "pricing_request"
    CONTACT_SALES = "contact_sales"
    MEETING = "meeting"
    CALL = "call"
    SALES_EMAIL = "sales_email"
    NOTE = "note"
    TASK = "task"
    OPPORTUNITY_CREATED = "opportunity_created"
    OPPORTUNITY_WON = "opportunity_won"
    OPPORTUNITY_LOST = "opportunity_lost"


#: What a rep did to or for a person (logged in the CRM) rather than what the person did:
#: they show a person was worked, but are not the person engaging (an SLA recycle is not
#: undone by the rep's own call). MEETING is both: the person took part.
SALES_ACTIVITIES: frozenset[ActivityType] = frozenset({
    ActivityType.CALL, ActivityType.SALES_EMAIL, ActivityType.NOTE, ActivityType.TASK,
    ActivityType.OPPORTUNITY_CREATED, ActivityType.OPPORTUNITY_WON,
    ActivityType.OPPORTUNITY_LOST})
#: Activity.attributes keys of who did it: the CRM user id and, where the connector knows
#: it, that user's email (what routing and the SLA call an owner).
ACTOR_ID, ACTOR = "actor_id", "actor"


class Stage(StrEnum):
    """Lifecycle stages in funnel order; `rank` gives the order.

    The ladder is subscriber, lead, MQL, SAL, SQL, opportunity, customer. Two stages sit
    off the ladder and rank where they do so that "a higher rank is further along" stays
    true for everything that compares ranks (never-backwards, routing's `assign_at`, the
    pipeline's "furthest stage known"):

    - DISQUALIFIED ranks first (0): it is an exit, not progress; nothing routes it, and any
      other stage a CRM reports outranks it. The core puts a person there only by a
      disqualify rule (a person may also set it in a CRM that maps it).
    - RECYCLED ranks between LEAD and MQL: someone who was qualified once and went cold is
      further along than a fresh lead (scoring a LEAD does not undo it) but is not
      qualified (not routed); qualifying again moves them up to MQL. The core puts a person
      there only by a recycle rule.
    """

    DISQUALIFIED = "disqualified"
    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    RECYCLED = "recycled"
    MQL = "mql"
    SAL = "sal"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"

    @property
    def rank(self) -> int:
        return _STAGE_ORDER.index(self)


_STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)

#: Stages that belong to sales: scoring never moves a person out of them.
SALES_OWNED_STAGES: frozenset[Stage] = frozenset(
    {Stage.SAL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER}
)


@dataclass(frozen=True, slots=True)
class Activity:
    """One thing a person did, as seen by one connector.

    `record_id` links it to the connector's person record; `source_id` is the id of the
    activity in that system, so re-pulling the same activity never counts it twice.

    Who did it (a sales activity's rep) rides in `attributes` (ACTOR_ID, ACTOR), so the
    state keeps it with no schema change; `actor` reads it.
    """

    source: str
    source_id: str
    record_id: str
    type: ActivityType
    occurred_at: datetime
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def actor(self) -> str | None:
        """The email of the CRM user who logged it (lower case), if known."""
        value = self.attributes.get(ACTOR)
        return value.lower() if value else None

    @property
    def actor_id(self) -> str | None:
        """The CRM user id of who logged it, if known."""
        return self.attributes.get(ACTOR_ID) or None


@dataclass(frozen=True, slots=True)
class Person:
    """One person record in one CRM (a HubSpot contact, a Salesforce Lead or Contact).

    `crm_values` holds the current CRM values of the fields syncer writes, keyed by the
    CRM field name, so the pipeline can diff against what is really there now.

    `properties` holds every other person field the model may read, keyed by syncer's
    field name (lead source, occupation, a CRM-computed visit count, any custom field),
    as the connector config's `person_fields` maps them (or a history file's columns).
    Values stay as the CRM gives them (text, numbers, booleans); the core parses numbers
    where a rule compares numbers.
    """

    source: str
    record_id: str
    object_type: str
    email: str | None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    company: str | None = None
    industry: str | None = None
    employees: int | None = None
    country: str | None = None
    updated_at: datetime | None = None
    crm_values: Mapping[str, str | None] = field(default_factory=dict)
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    #: the CRM's own link to this person's account (syncer/domain/accounts.py): HubSpot's
    #: primary associated company id, a Salesforce Contact's AccountId; None for a Lead.
    account_id: str | None = None


#: The value of a mapped person property: as the CRM or the history file gives it.
PropertyValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Owner:
    """A CRM user who can own records. Reps are matched across CRMs by email."""

    source: str
    owner_id: str
    email: str
    name: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True)
class Profile:
    """One real person: every record of them across connectors and all their activities.

    `current_stage` is the furthest stage known for the person (from what syncer decided
    before or what the CRM says now): the core never moves a person back from it.
    `owner_email` is the owner already assigned, if any.
    """

    key: str
    records: tuple[Person, ...]
    activities: tuple[Activity, ...]
    current_stage: Stage | None = None
    owner_email: str | None = None

    def first(self, attribute: str) -> object | None:
        """The first non-empty value of a person attribute across the records.

        Records are in precedence order (see identity.merge_order), so the value from the
        most trusted source wins.
        """
        for record in self.records:
            value: object | None = getattr(record, attribute)
            if value not in (None, ""):
                return value
        return None

    @property
    def email(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class Reason:
    """Why points were given or a stage was chosen: shown to reps and in the audit log."""

    rule_id: str
    points: float
    detail: str
    evidence_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One line of a score's ledger: the points one rule gave (or took), on which activity,
    when, and by how much decay shrank them. A score is exactly the sum of its entries,
    so a rep or an admin can reconcile any number with its log."""

    rule_id: str
    points: float
    detail: str = ""
    activity_id: str | None = None
    at: datetime | None = None
    decay: float = 1.0


@dataclass(frozen=True, slots=True)
class ScoreCard:
    """One named score of a person (for example per product line): fit, engagement, the
    total written to the CRM, the fit grade, and the ledger the total is the sum of."""

    name: str
    fit: float
    engagement: float
    total: int
    grade: str
    ledger: tuple[LedgerEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """What the core decided for one profile at one instant under one model version.

    `score`, `fit_points`, `engagement_points` and `fit_grade` are the primary score (the
    one the lifecycle and routing read); `scores` holds every named score, the primary
    one first, each with its ledger.
    """

    key: str
    score: int
    fit_points: float
    engagement_points: float
    fit_grade: str
    stage: Stage
    owner_email: str | None
    reasons: tuple[Reason, ...]
    model_version: str
    scores: tuple[ScoreCard, ...] = ()


@dataclass(frozen=True, slots=True)
class Succession:
    """Record `old_id` no longer takes writes: the person carries on as `new_id` in the same
    CRM. A Salesforce lead conversion (cause "converted", the new record is the Contact), a
    Salesforce merge (MasterRecordId) or a HubSpot merge (hs_merged_object_ids) (cause
    "merged"). The pipeline moves the identity, score and history to the new record."""

    source: str
    old_id: str
    new_id: str
    cause: str
    new_object_type: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewPerson:
    """A person to create in a CRM where syncer has not seen them yet (they live in another
    one and passed the creation gate). `key` is syncer's person key; `values` are the CRM
    field values syncer decided (score, stage, owner, ...) to set at creation."""

    key: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    company: str | None = None
    industry: str | None = None
    employees: int | None = None
    country: str | None = None
    values: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreateResult:
    """The outcome of creating one NewPerson. `record_id`/`object_type` name the created
    record, or the existing one the CRM matched (`existed`: HubSpot answers 409 for an email
    it already has; that record is linked instead of failing)."""

    key: str
    ok: bool
    record_id: str | None = None
    object_type: str | None = None
    existed: bool = False
    error_code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class RecordUpdate:
    """Field values to write to one CRM record, keyed by CRM field name."""

    record_id: str
    object_type: str
    values: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class PushResult:
    """The outcome of writing one RecordUpdate.

    `retryable` says whether trying the same write again may succeed (a lock, a 5xx),
    as opposed to a validation error that will fail the same way every time.
    """

    record_id: str
    ok: bool
    error_code: str | None = None
    message: str | None = None
    retryable: bool = False
    #: the CRM fields the error names (Salesforce `fields`, HubSpot `propertyName`), so
    #: failures can be grouped as "37 bad picklist values on Industry"
    fields: tuple[str, ...] = ()
