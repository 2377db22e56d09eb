"""The standard fields of Task, Event and CampaignMember, as the Object Reference documents
them for API 59.0: https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/
object_reference/sforce_api_objects_task.htm (and _event.htm, _campaignmember.htm).

Task: nothing is required on insert (Status and Priority have defaults, the owner is the
API user). Event: a timed event needs its start (ActivityDateTime or StartDateTime) and its
length (DurationInMinutes or EndDateTime); an all-day one its ActivityDate (inserts.py).
A CampaignMember's copies of its Lead's or Contact's fields (Name, Email, CompanyOrAccount,
Type, LeadOrContactId, ...) are listed, read-only; the sandbox does not copy them (they
read null): a query reads the person through LeadId or ContactId.
"""

from __future__ import annotations

from connectors.sandbox.salesforce.field_spec import (
    FieldSpec,
    checkbox,
    reference,
    system_fields,
)
from connectors.sandbox.salesforce.field_spec import field_spec as _f
from connectors.sandbox.salesforce.picklists import (
    CALL_TYPES,
    CAMPAIGN_MEMBER_STATUSES,
    EVENT_SUBTYPES,
    EVENT_TYPES,
    LEAD_SOURCES,
    MONTHS,
    PRIORITIES,
    RECURRENCE_INSTANCES,
    RECURRENCE_TYPES,
    REGENERATED_TYPES,
    SALUTATIONS,
    SHOW_AS,
    TASK_STATUSES,
    TASK_SUBTYPES,
    TASK_TYPES,
)

#: what a Task's or Event's WhatId may point at (standard objects of a new org)
WHAT_TARGETS = ("Account", "Opportunity", "Campaign", "Case", "Contract", "Order", "Asset",
                "Solution", "Product2")


def _activity_common() -> tuple[FieldSpec, ...]:
    """What Tasks and Events share: who and what, subject, owner, dates, recurrence."""
    return (reference("WhoId", "Contact", "Lead"), reference("WhatId", *WHAT_TARGETS),
            _f("Subject", "combobox", 255, rw=True),
            _f("ActivityDate", "date", rw=True),
            _f("Description", "textarea", 32000, rw=True),
            reference("AccountId", "Account", rw=False),
            reference("OwnerId", "User", "Group", required=True, defaulted=True),
            checkbox("IsArchived", rw=False),
            _f("WhoCount", "int", precision=9), _f("WhatCount", "int", precision=9),
            _f("ReminderDateTime", "datetime", rw=True), checkbox("IsReminderSet"),
            checkbox("IsRecurrence", create=True),
            _f("RecurrenceStartDateOnly", "date", rw=True),
            _f("RecurrenceEndDateOnly", "date", rw=True),
            _f("RecurrenceTimeZoneSidKey", "picklist", 40, rw=True),
            _f("RecurrenceType", "picklist", 40, rw=True, picklist=RECURRENCE_TYPES,
               restricted=True),
            _f("RecurrenceInterval", "int", rw=True, precision=9),
            _f("RecurrenceDayOfWeekMask", "int", rw=True, precision=9),
            _f("RecurrenceDayOfMonth", "int", rw=True, precision=9),
            _f("RecurrenceInstance", "picklist", 40, rw=True, picklist=RECURRENCE_INSTANCES,
               restricted=True),
            _f("RecurrenceMonthOfYear", "picklist", 40, rw=True, picklist=MONTHS,
               restricted=True))


TASK_FIELDS: tuple[FieldSpec, ...] = (
    *system_fields(), *_activity_common(),
    _f("Status", "picklist", 40, rw=True, required=True, picklist=TASK_STATUSES,
       default=TASK_STATUSES[0]),
    _f("Priority", "picklist", 40, rw=True, required=True, picklist=PRIORITIES,
       default="Normal"),
    checkbox("IsHighPriority", rw=False), checkbox("IsClosed", rw=False),
    _f("Type", "picklist", 255, rw=True, picklist=TASK_TYPES),
    _f("TaskSubtype", "picklist", 40, picklist=TASK_SUBTYPES, restricted=True, create=True),
    _f("CallDurationInSeconds", "int", rw=True, precision=8),
    _f("CallType", "picklist", 40, rw=True, picklist=CALL_TYPES, restricted=True),
    _f("CallDisposition", "string", 255, rw=True),
    _f("CallObject", "string", 255, rw=True),
    _f("CompletedDateTime", "datetime"),
    reference("RecurrenceActivityId", "Task", rw=False),
    _f("RecurrenceRegeneratedType", "picklist", 40, rw=True, picklist=REGENERATED_TYPES,
       restricted=True))

EVENT_FIELDS: tuple[FieldSpec, ...] = (
    *system_fields(), *_activity_common(),
    _f("Location", "string", 255, rw=True),
    checkbox("IsAllDayEvent"),
    _f("ActivityDateTime", "datetime", rw=True),
    _f("StartDateTime", "datetime", rw=True), _f("EndDateTime", "datetime", rw=True),
    _f("EndDate", "date"),
    _f("DurationInMinutes", "int", rw=True, precision=8),
    _f("Type", "picklist", 255, rw=True, picklist=EVENT_TYPES),
    checkbox("IsPrivate"),
    _f("ShowAs", "picklist", 40, rw=True, picklist=SHOW_AS, restricted=True, default="Busy"),
    checkbox("IsChild", rw=False), checkbox("IsGroupEvent", rw=False),
    _f("GroupEventType", "picklist", 40, picklist=("0", "1", "2"), restricted=True),
    _f("EventSubtype", "picklist", 40, picklist=EVENT_SUBTYPES, restricted=True,
       create=True),
    reference("RecurrenceActivityId", "Event", rw=False),
    _f("RecurrenceStartDateTime", "datetime", rw=True))

CAMPAIGN_MEMBER_FIELDS: tuple[FieldSpec, ...] = (
    *system_fields(),
    reference("CampaignId", "Campaign", rw=False, required=True, create=True),
    reference("LeadId", "Lead", rw=False, create=True),
    reference("ContactId", "Contact", rw=False, create=True),
    _f("Status", "picklist", 40, rw=True, picklist=CAMPAIGN_MEMBER_STATUSES),
    checkbox("HasResponded", rw=False), _f("FirstRespondedDate", "date"),
    _f("Salutation", "picklist", 40, picklist=SALUTATIONS),
    _f("Name", "string", 121), _f("FirstName", "string", 40), _f("LastName", "string", 80),
    _f("Title", "string", 128), _f("Street", "textarea", 255), _f("City", "string", 40),
    _f("State", "string", 80), _f("PostalCode", "string", 20), _f("Country", "string", 80),
    _f("Email", "email", 80),
    *(_f(name, "phone", 40) for name in ("Phone", "Fax", "MobilePhone")),
    _f("Description", "textarea", 32000),
    checkbox("DoNotCall", rw=False), checkbox("HasOptedOutOfEmail", rw=False),
    checkbox("HasOptedOutOfFax", rw=False),
    _f("LeadSource", "picklist", 255, picklist=LEAD_SOURCES),
    _f("CompanyOrAccount", "string", 255),
    _f("Type", "string", 40),
    reference("LeadOrContactId", "Contact", "Lead", rw=False),
    reference("LeadOrContactOwnerId", "User", "Group", rw=False))
