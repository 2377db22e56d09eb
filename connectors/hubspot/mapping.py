"""How HubSpot contacts and events translate into syncer's domain.

Plain functions over plain values (no client objects), so the rules a revops admin cares
about (which form counts as a demo request, what a pricing page view is) are readable in
one place and testable without a server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from syncer.domain.types import Activity, ActivityType, Person, PropertyValue, Succession

#: The contact property naming its primary company: Person.account_id.
PRIMARY_COMPANY = "associatedcompanyid"
#: Contact properties the domain Person is built from (read on every pull).
MODEL_PROPERTIES: tuple[str, ...] = (
    "email", "firstname", "lastname", "jobtitle", "company", "industry", "numemployees",
    "country", "lastmodifieddate", PRIMARY_COMPANY,
)

#: syncer person field -> contact property read into Person.properties out of the box
#: (config `connectors[].person_fields` adds to and overrides these).
DEFAULT_PERSON_FIELDS: Mapping[str, str] = {
    "source": "hs_analytics_source", "latest_source": "hs_latest_source",
    "visits": "hs_analytics_num_visits", "page_views": "hs_analytics_num_page_views",
    # when the contact reached the outcome stages: what dates a won outcome in the
    # history syncer learns from (syncer/run/outcome_history.py), never a feature there
    "opportunity_at": "hs_lifecyclestage_opportunity_date",
    "customer_at": "hs_lifecyclestage_customer_date"}

#: HubSpot-defined number properties. HubSpot sends every property value as text; these
#: are read as numbers (a custom property stays text: the core parses numbers where a
#: rule compares them).
NUMBER_PROPERTIES: frozenset[str] = frozenset({
    "hs_analytics_num_visits", "hs_analytics_num_page_views",
    "hs_analytics_num_event_completions", "hs_analytics_average_page_views",
    "num_conversion_events", "num_unique_conversion_events", "num_associated_deals",
    "hubspotscore"})

#: HubSpot datetime properties: read as ISO 8601 UTC text whatever form HubSpot sends.
DATETIME_PROPERTIES: frozenset[str] = frozenset({
    "hs_lifecyclestage_opportunity_date", "hs_lifecyclestage_customer_date",
    "hs_lifecyclestage_lead_date", "hs_lifecyclestage_marketingqualifiedlead_date",
    "hs_lifecyclestage_salesqualifiedlead_date", "createdate", "lastmodifieddate"})

#: The ids merged into a contact, semicolon-separated; they accumulate over merges.
MERGED_IDS = "hs_merged_object_ids"

#: HubSpot event type -> activity type (before the refinements below).
EVENT_TYPES: Mapping[str, ActivityType] = {
    "e_visited_page": ActivityType.PAGE_VIEW,
    "e_submitted_form": ActivityType.FORM_FILL,
    "e_registered_marketing_event": ActivityType.WEBINAR_REGISTRATION,
    "e_attended_marketing_event": ActivityType.WEBINAR_ATTENDANCE,
    "e_opened_email": ActivityType.EMAIL_OPEN,
    "e_clicked_email": ActivityType.EMAIL_CLICK,
    "e_bounced_email": ActivityType.EMAIL_BOUNCE,
    "e_unsubscribed_email": ActivityType.UNSUBSCRIBE,
}

#: Form title fragment (case-insensitive) -> what submitting that form means. First match
#: wins; any other form is a plain form_fill.
FORM_TITLE_RULES: tuple[tuple[str, ActivityType], ...] = (
    ("request a demo", ActivityType.DEMO_REQUEST),
    ("contact sales", ActivityType.CONTACT_SALES),
    ("pricing request", ActivityType.PRICING_REQUEST),
    ("newsletter", ActivityType.NEWSLETTER_SIGNUP),
    ("content download", ActivityType.CONTENT_DOWNLOAD),
)

#: A page view whose URL contains this is a pricing page view.
PRICING_URL_FRAGMENT = "/pricing"

#: Event property -> Activity attribute kept for reasons and audit.
EVENT_ATTRIBUTES: Mapping[str, str] = {
    "hs_url": "url", "hs_form_title": "form", "hs_email_name": "email",
    "hs_asset_title": "asset", "hs_marketing_event_name": "campaign",
    # numbers, kept as the numeric text HubSpot sends (rules read them as numbers):
    # seconds on a page, minutes attended at a marketing event
    "hs_time_on_page": "duration", "hs_attendance_duration": "duration",
}


def activity_type(event_type: str, properties: Mapping[str, str | None]) -> ActivityType | None:
    """The activity an event means, or None for event types syncer does not score."""
    base = EVENT_TYPES.get(event_type)
    if base is ActivityType.PAGE_VIEW:
        url = (properties.get("hs_url") or "").lower()
        return ActivityType.PRICING_PAGE_VIEW if PRICING_URL_FRAGMENT in url else base
    if base is ActivityType.FORM_FILL:
        title = (properties.get("hs_form_title") or "").lower()
        for fragment, kind in FORM_TITLE_RULES:
            if fragment in title:
                return kind
    return base


def to_activity(source: str, event_id: str, contact_id: str, event_type: str,
                occurred_at: datetime,
                properties: Mapping[str, str | None] | None) -> Activity | None:
    """One HubSpot event as a domain Activity (None when the type is not mapped)."""
    props = dict(properties or {})
    kind = activity_type(event_type, props)
    if kind is None:
        return None
    attributes = {name: str(props[key]) for key, name in EVENT_ATTRIBUTES.items()
                  if props.get(key)}
    return Activity(source=source, source_id=event_id, record_id=contact_id, type=kind,
                    occurred_at=as_utc(occurred_at), attributes=attributes)


def employees_from_range(value: str | None) -> int | None:
    """Head count from `numemployees`: the lower bound of a range ("25-50" -> 25,
    "10000+" -> 10000); a plain number is taken as is; anything else is unknown."""
    if not value:
        return None
    head = value.strip().rstrip("+").split("-")[0].replace(",", "").strip()
    return int(head) if head.isdigit() else None


def parse_timestamp(value: str | None) -> datetime | None:
    """HubSpot datetimes arrive as ISO strings (with Z) or epoch milliseconds."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _text(properties: Mapping[str, str | None], name: str) -> str | None:
    value = properties.get(name)
    return value.strip() or None if isinstance(value, str) else None


def property_value(name: str, value: str | None) -> PropertyValue:
    """A mapped property's value: None when unset or blank, a float for a known number
    property (text that is not a number stays text), ISO 8601 UTC text for a known
    datetime property, else the text."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if name in DATETIME_PROPERTIES:
        moment = parse_timestamp(text)
        return moment.isoformat() if moment is not None else text
    if name in NUMBER_PROPERTIES:
        try:
            return float(text)
        except ValueError:
            return text
    return text


def to_person(source: str, contact_id: str, properties: Mapping[str, str | None],
              updated_at: datetime | None, writeback_fields: Sequence[str],
              person_fields: Mapping[str, str] | None = None) -> Person:
    """One contact as a domain Person; `crm_values` holds the writeback fields as they are,
    `properties` the mapped person fields (syncer name -> property)."""
    mapped = {name: property_value(crm, properties.get(crm))
              for name, crm in (person_fields or {}).items()}
    modified = parse_timestamp(properties.get("lastmodifieddate"))
    return Person(
        source=source, record_id=contact_id, object_type="contact",
        email=_text(properties, "email"), first_name=_text(properties, "firstname"),
        last_name=_text(properties, "lastname"), title=_text(properties, "jobtitle"),
        company=_text(properties, "company"), industry=_text(properties, "industry"),
        employees=employees_from_range(properties.get("numemployees")),
        country=_text(properties, "country"),
        updated_at=modified or (as_utc(updated_at) if updated_at else None),
        crm_values={name: properties.get(name) for name in writeback_fields},
        properties=mapped, account_id=_text(properties, PRIMARY_COMPANY),
    )


def missing_properties(person_fields: Mapping[str, str], returned: Mapping[str, object]
                       ) -> list[tuple[str, str]]:
    """(syncer field, property) of each mapped property absent from a record HubSpot
    returned when asked for it: HubSpot answers null for a property that is unset and
    leaves out one the portal does not have."""
    return [(name, crm) for name, crm in person_fields.items() if crm not in returned]


def missing_property_problem(connector: str, name: str, crm: str) -> str:
    """What to tell the admin about a mapped property the portal does not have."""
    return (f"connector '{connector}': HubSpot has no contact property '{crm}' (person "
            f"field '{name}'). Fix: correct connectors[].person_fields.{name}, create the "
            f"property in HubSpot, or set `{name}: null` to drop a default mapping")


def missing_problems(connector: str, person_fields: Mapping[str, str],
                     writeback_fields: Sequence[str], returned: Mapping[str, object]
                     ) -> list[str]:
    """What to tell the admin about mapped properties a returned record shows the portal
    lacks: one line per person field, one for all the fields syncer writes (a fresh
    portal lacks every one of syncer's)."""
    problems = [missing_property_problem(connector, *item)
                for item in missing_properties(person_fields, returned)]
    missing = [crm for crm in writeback_fields if crm not in returned]
    if missing:
        problems.append(f"connector '{connector}': HubSpot has no contact properties "
                        f"{', '.join(missing)} (connectors[].fields, named scores or shared "
                        "fields map them). Fix: `syncer setup` creates them, or correct "
                        "the names")
    return problems


def error_code(category: str | None, message: str | None) -> str:
    """The most specific code in a HubSpot error: the first per-property `error` named in
    a "Property values were not valid: [...]" message, else the error's category."""
    if message and "[" in message:
        try:
            details = json.loads(message[message.index("["):])
        except ValueError:
            details = None
        if isinstance(details, list) and details and isinstance(details[0], dict):
            code = details[0].get("error")
            if isinstance(code, str) and code:
                return code
    return category or "UNKNOWN"


def to_successions(source: str, contact_id: str, properties: Mapping[str, str | None],
                   updated_at: datetime | None) -> list[Succession]:
    """One Succession per id merged into this contact (`hs_merged_object_ids`)."""
    raw = properties.get(MERGED_IDS) or ""
    at = parse_timestamp(properties.get("lastmodifieddate")) or (
        as_utc(updated_at) if updated_at else None)
    old_ids = dict.fromkeys(part.strip() for part in raw.split(";"))
    return [Succession(source=source, old_id=old_id, new_id=contact_id, cause="merged",
                       new_object_type="contact", at=at)
            for old_id in old_ids if old_id and old_id != contact_id]
