"""How Salesforce records map to syncer's domain, and field values back to Salesforce.

People: Leads carry their company facts themselves (Company, Industry, NumberOfEmployees,
Country); Contacts get them from their Account (Account.Name, ...) and MailingCountry, and
their AccountId is the person's account (Person.account_id; a Lead has none).

Activities: marketing engagement lives in CampaignMember rows, where the Campaign's Type
says the channel and the member Status says what the person did; website page views are
Tasks of Type "Web Activity" with the URL in the Subject. Website forms are told apart by
campaign name keywords (a "Request a demo" form is a hand raise, "Contact us" is a plain
form fill). Rows that mean nothing to scoring (an email merely "Sent") map to None.

Successions: a converted Lead carries on as its ConvertedContactId, a merged-away Lead or
Contact (deleted, seen through queryAll) as its MasterRecordId.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, time, timezone
from urllib.parse import urlparse

from syncer.domain.types import (
    ACTOR,
    ACTOR_ID,
    Activity,
    ActivityType,
    Person,
    PropertyValue,
    RecordUpdate,
    Succession,
)

#: Fields read for every person, before the configured writeback fields.
LEAD_FIELDS: tuple[str, ...] = (
    "Id", "Email", "FirstName", "LastName", "Title", "Company", "Industry",
    "NumberOfEmployees", "Country", "OwnerId", "CreatedDate", "LastModifiedDate",
    "SystemModstamp")
CONTACT_FIELDS: tuple[str, ...] = (
    "Id", "Email", "FirstName", "LastName", "Title", "AccountId", "Account.Name",
    "Account.Industry", "Account.NumberOfEmployees", "MailingCountry", "OwnerId",
    "CreatedDate", "LastModifiedDate", "SystemModstamp")
PERSON_OBJECTS: tuple[str, ...] = ("Lead", "Contact")

CAMPAIGN_MEMBER_FIELDS: tuple[str, ...] = (
    "Id", "LeadId", "ContactId", "Status", "CreatedDate", "Campaign.Name", "Campaign.Type")
TASK_FIELDS: tuple[str, ...] = ("Id", "WhoId", "Subject", "Type", "TaskSubtype",
                                "CreatedDate", "CallDurationInSeconds", "OwnerId",
                                "Owner.Email")
#: syncer person field -> Lead and Contact field read into Person.properties out of the box
#: (config `connectors[].person_fields` adds to and overrides these).
DEFAULT_PERSON_FIELDS: Mapping[str, str] = {"source": "LeadSource"}
#: what successions() reads: a Lead may be converted or merged away, a Contact merged away.
SUCCESSION_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Lead": ("Id", "IsDeleted", "MasterRecordId", "IsConverted", "ConvertedContactId",
             "ConvertedDate", "SystemModstamp"),
    "Contact": ("Id", "IsDeleted", "MasterRecordId", "SystemModstamp")}

_MEMBER_STATUS: Mapping[tuple[str, str], ActivityType] = {
    ("webinar", "registered"): ActivityType.WEBINAR_REGISTRATION,
    ("webinar", "attended"): ActivityType.WEBINAR_ATTENDANCE,
    ("content", "responded"): ActivityType.CONTENT_DOWNLOAD,
    ("content", "downloaded"): ActivityType.CONTENT_DOWNLOAD,
    ("email", "opened"): ActivityType.EMAIL_OPEN,
    ("email", "clicked"): ActivityType.EMAIL_CLICK,
    ("email", "bounced"): ActivityType.EMAIL_BOUNCE,
    ("email", "unsubscribed"): ActivityType.UNSUBSCRIBE,
}
#: Website form campaigns by name keyword, first match wins; anything else is a form fill.
_FORM_KEYWORDS: tuple[tuple[str, ActivityType], ...] = (
    ("demo", ActivityType.DEMO_REQUEST),
    ("contact sales", ActivityType.CONTACT_SALES),
    ("talk to sales", ActivityType.CONTACT_SALES),
    ("pricing", ActivityType.PRICING_REQUEST),
    ("quote", ActivityType.PRICING_REQUEST),
    ("newsletter", ActivityType.NEWSLETTER_SIGNUP),
)
_WEBSITE_TYPES = frozenset({"website", "web", "web form"})
_RESPONDED = frozenset({"responded", "submitted", "completed"})
PAGE_VIEW_PREFIX = "Visited page:"
NUMBER_TYPES = frozenset({"double", "currency", "percent"})


#: a field value as the REST API takes it
ApiValue = str | int | float | bool | None


def parse_datetime(text: str) -> datetime:
    """A Salesforce datetime ("2026-05-01T12:00:00.000+0000") as an aware UTC datetime.
    The shape every API answer uses is read by fromisoformat (strptime cost more than the
    rest of mapping an activity); anything else goes through strptime as before."""
    if len(text) == 28 and text[10] == "T" and text[19] == "." and text[23] in "+-":
        return datetime.fromisoformat(text).astimezone(timezone.utc)
    value = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z") if "." in text else \
        datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    return value.astimezone(timezone.utc)


def crm_value(value: object) -> str | None:
    """A field value as the string syncer compares: 42.0 -> "42", True -> "true"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def person_fields(object_type: str, writeback_fields: Sequence[str],
                  mapped: Sequence[str] = ()) -> list[str]:
    """The SELECT list for people of `object_type`, without duplicates (SOQL refuses them):
    the model's fields, the writeback fields, then the mapped person fields."""
    base = LEAD_FIELDS if object_type == "Lead" else CONTACT_FIELDS
    fields = list(base)
    seen = {name.lower() for name in fields}
    for name in [*writeback_fields, *mapped]:
        if name.lower() not in seen:
            fields.append(name)
            seen.add(name.lower())
    return fields


def _get(record: Mapping[str, object], name: str) -> object:
    """A field of a query record by case-insensitive name, following Relationship.Field."""
    current: object = record
    for part in name.split("."):
        if not isinstance(current, Mapping):
            return None
        if part in current:  # as Salesforce spells it: no scan (mapping every page)
            current = current[part]
            continue
        lowered = part.lower()
        current = next((v for k, v in current.items() if k.lower() == lowered), None)
    return current


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def property_value(value: object) -> PropertyValue:
    """A mapped field's JSON value as Person.properties keeps it: numbers and booleans as
    Salesforce types them, text stripped, blank text and anything else None."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value.strip() or None
    return None


def missing_fields(person_fields: Mapping[str, str], described: Collection[str]
                   ) -> list[tuple[str, str]]:
    """(syncer field, CRM field) of each mapped field `described` (lower-case field names
    of the object) lacks. A relationship path (Account.Industry) is checked by its first
    part, the relationship's field (AccountId)."""
    missing = []
    for name, crm in person_fields.items():
        head, dot, _ = crm.partition(".")
        wanted = (head + ("__c" if head.endswith("__r") else "Id")) if dot else crm
        wanted = wanted.replace("__r__c", "__c").lower()
        if wanted not in described:
            missing.append((name, crm))
    return missing


def to_person(source: str, object_type: str, record: Mapping[str, object],
              writeback_fields: Sequence[str],
              person_fields: Mapping[str, str] | None = None) -> Person:
    """One Lead or Contact query record as a Person; `person_fields` (syncer name ->
    field) fill its properties."""
    if object_type == "Lead":
        company, industry = _get(record, "Company"), _get(record, "Industry")
        employees, country = _get(record, "NumberOfEmployees"), _get(record, "Country")
    else:
        company, industry = _get(record, "Account.Name"), _get(record, "Account.Industry")
        employees = _get(record, "Account.NumberOfEmployees")
        country = _get(record, "MailingCountry")
    stamp = _get(record, "SystemModstamp") or _get(record, "LastModifiedDate")
    return Person(
        source=source, record_id=str(record["Id"]), object_type=object_type,
        email=_text(_get(record, "Email")), first_name=_text(_get(record, "FirstName")),
        last_name=_text(_get(record, "LastName")), title=_text(_get(record, "Title")),
        company=_text(company), industry=_text(industry),
        employees=_whole(employees),
        country=_text(country), updated_at=parse_datetime(str(stamp)) if stamp else None,
        account_id=_text(_get(record, "AccountId")) if object_type == "Contact" else None,
        crm_values={name: crm_value(_get(record, name)) for name in writeback_fields},
        properties={name: property_value(_get(record, crm))
                    for name, crm in (person_fields or {}).items()})


def _whole(value: object) -> int | None:
    """A number field (NumberOfEmployees) as an int; None when empty."""
    if value is None:
        return None
    if isinstance(value, int | float | str):
        return int(value)
    raise TypeError(f"not a number: {type(value).__name__}")


def campaign_activity_type(campaign_type: str | None, status: str | None,
                           campaign_name: str | None) -> ActivityType | None:
    """What a campaign membership means, or None if it is not engagement."""
    kind = (campaign_type or "").strip().lower()
    state = (status or "").strip().lower()
    if kind in _WEBSITE_TYPES:
        if state not in _RESPONDED:
            return None
        name = (campaign_name or "").lower()
        return next((activity for keyword, activity in _FORM_KEYWORDS if keyword in name),
                    ActivityType.FORM_FILL)
    return _MEMBER_STATUS.get((kind, state))


def campaign_member_activity(source: str, record: Mapping[str, object]) -> Activity | None:
    """A CampaignMember row as an Activity of the Contact (if converted) or Lead."""
    campaign_type, name = _text(_get(record, "Campaign.Type")), _get(record, "Campaign.Name")
    status = _text(_get(record, "Status"))
    activity_type = campaign_activity_type(campaign_type, status, _text(name))
    record_id = _get(record, "ContactId") or _get(record, "LeadId")
    if activity_type is None or not record_id:
        return None
    attributes = {"campaign": str(name or ""), "campaign_type": str(campaign_type or ""),
                  "status": str(status or "")}
    if (campaign_type or "").lower() in _WEBSITE_TYPES:
        attributes["form"] = str(name or "")
    return Activity(source=source, source_id=str(record["Id"]), record_id=str(record_id),
                    type=activity_type, occurred_at=parse_datetime(str(record["CreatedDate"])),
                    attributes=attributes)


def task_activity(source: str, record: Mapping[str, object]) -> Activity | None:
    """A Task as a page view (Web Activity), a meeting, a rep's call, email or task (by
    its owner: connectors/salesforce/sales_activity.py), or None."""
    task_type = str(_get(record, "Type") or "").lower()
    subtype = str(_get(record, "TaskSubtype") or "").lower()
    subject = str(_get(record, "Subject") or "")
    who = _get(record, "WhoId")
    if not who:
        return None
    attributes: dict[str, str] = {}
    if task_type == "web activity" or subject.startswith(PAGE_VIEW_PREFIX):
        url = subject.removeprefix(PAGE_VIEW_PREFIX).strip()
        attributes["url"] = url
        path = urlparse(url).path if "//" in url else url
        activity_type = (ActivityType.PRICING_PAGE_VIEW if path.startswith("/pricing")
                         else ActivityType.PAGE_VIEW)
        seconds = _get(record, "CallDurationInSeconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            attributes["duration"] = str(int(seconds))  # seconds on the page
    else:
        kind = ActivityType.MEETING if task_type == "meeting" else task_kind(task_type,
                                                                             subtype)
        if kind is None:
            return None
        activity_type = kind
        attributes.update({"subject": subject, **actor(record)})
    return Activity(source=source, source_id=str(record["Id"]), record_id=str(who),
                    type=activity_type, occurred_at=parse_datetime(str(record["CreatedDate"])),
                    attributes=attributes)


#: Task Type / TaskSubtype (lower case) -> the sales activity it is
TASK_KINDS: Mapping[str, ActivityType] = {"call": ActivityType.CALL,
                                          "email": ActivityType.SALES_EMAIL}


def actor(record: Mapping[str, object]) -> dict[str, str]:
    """The actor attributes of a record with OwnerId and Owner.Email."""
    found: dict[str, str] = {}
    owner, email = _text(_get(record, "OwnerId")), _text(_get(record, "Owner.Email"))
    if owner:
        found[ACTOR_ID] = owner
    if email:
        found[ACTOR] = email.lower()
    return found


def task_kind(task_type: str, subtype: str) -> ActivityType | None:
    """The sales activity of a Task that is no page view or meeting, or None."""
    kind = TASK_KINDS.get(task_type) or TASK_KINDS.get(subtype)
    if kind is not None:
        return kind
    if subtype == "task" and task_type in ("", "other"):
        return ActivityType.TASK
    return None


def api_value(field_type: str, value: str | None) -> ApiValue:
    """A syncer string value as the JSON value a field of `field_type` takes.

    Raises ValueError for a value the field cannot hold (a score that is not a number).
    """
    if value is None:
        return None
    if field_type in NUMBER_TYPES or field_type == "int":
        number = float(value)
        if field_type == "int" and not number.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        return int(number) if number.is_integer() else number
    if field_type == "boolean":
        lowered = value.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError(f"{value!r} is not a boolean")
        return lowered in ("true", "1")
    return value


def api_record(update: RecordUpdate, field_types: Mapping[str, tuple[str, str]]
               ) -> dict[str, object]:
    """An sObject Collections record for one update. `field_types`: lower-case field name
    -> (canonical name, describe type). Raises ValueError for an unconvertible value."""
    record: dict[str, object] = {"attributes": {"type": update.object_type},
                              "id": update.record_id}
    for name, value in update.values.items():
        canonical, field_type = field_types[name.lower()]
        try:
            record[canonical] = api_value(field_type, value)
        except ValueError as error:
            raise ValueError(f"{canonical}: {error}") from error
    return record


def to_succession(source: str, object_type: str,
                  record: Mapping[str, object]) -> Succession | None:
    """A successions() record as the Succession it stands for: merged away (deleted with
    a MasterRecordId) or converted (with a ConvertedContactId); None if neither."""
    if _get(record, "IsDeleted") and _get(record, "MasterRecordId"):
        return merged_succession(source, object_type, record)
    if _get(record, "IsConverted"):
        return converted_succession(source, record)
    return None


def converted_succession(source: str, record: Mapping[str, object]) -> Succession | None:
    """A converted Lead as the Succession to its Contact (None without one).

    `at` is the SystemModstamp when it falls on the ConvertedDate (the exact moment of a
    conversion, since nothing writes to a converted lead), else the start of ConvertedDate
    (UTC), else the SystemModstamp.
    """
    contact = _get(record, "ConvertedContactId")
    if not contact:
        return None
    stamp_text = _get(record, "SystemModstamp")
    stamp = parse_datetime(str(stamp_text)) if stamp_text else None
    day_text = _get(record, "ConvertedDate")
    day = date.fromisoformat(str(day_text)[:10]) if day_text else None
    at = stamp
    if day is not None and (stamp is None or stamp.date() != day):
        at = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return Succession(source=source, old_id=str(record["Id"]), new_id=str(contact),
                      cause="converted", new_object_type="Contact", at=at)


def merged_succession(source: str, object_type: str,
                      record: Mapping[str, object]) -> Succession | None:
    """A merged-away (deleted) Lead or Contact as the Succession to its master."""
    master = _get(record, "MasterRecordId")
    if not master:
        return None
    stamp = _get(record, "SystemModstamp")
    return Succession(source=source, old_id=str(record["Id"]), new_id=str(master),
                      cause="merged", new_object_type=object_type,
                      at=parse_datetime(str(stamp)) if stamp else None)
