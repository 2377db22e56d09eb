"""Lead conversion and record merges in the sandbox org, as Salesforce does them.

Conversion (the API's convertLead): the Lead's person carries on as a Contact, new (its
fields copied from the Lead by the standard lead field mapping plus syncer's custom fields)
or an existing one (whose blank fields the Lead fills), under the given Account, the
contact's Account, or a new Account named after the Lead's Company. The Lead stays behind
with IsConverted = true, ConvertedContactId, ConvertedAccountId, ConvertedDate and Status
'Closed - Converted', locked for writes (CANNOT_UPDATE_CONVERTED_LEAD).

Merge: up to two duplicates of the master's type are deleted (IsDeleted = true,
MasterRecordId = the master): `query` no longer sees them, `queryAll` does, writes answer
ENTITY_IS_DELETED. The master keeps its own field values (the API's default).

In both, the old record's activities move along as in a real org: its Tasks' WhoId and its
CampaignMember rows' ContactId (conversion: LeadId stays) or LeadId/ContactId (merge) point
to the record that carries on, and their SystemModstamp moves. Generated activity rows are
changed through the org's overlay, so queries by time, counts and pages see the move.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from connectors.sandbox.salesforce.org import SalesforceOrg, StagedWrite
from connectors.sandbox.salesforce.rows import FieldValue, Row, text, text_or_none
from connectors.sandbox.salesforce.schema import (
    ACCOUNT,
    CAMPAIGN_MEMBER,
    CONTACT,
    LEAD,
    TASK,
    ObjectSchema,
    id_number,
)
from connectors.sandbox.salesforce.seed import OrgSeeder

CONVERTED_STATUS = "Closed - Converted"
#: Lead field -> Contact field: the standard lead field mapping and syncer's custom fields.
CONTACT_MAPPING: tuple[tuple[str, str], ...] = (
    ("FirstName", "FirstName"), ("LastName", "LastName"), ("Email", "Email"),
    ("Title", "Title"), ("LeadSource", "LeadSource"), ("Country", "MailingCountry"),
    *((name, name) for name in (spec.name for spec in LEAD.fields if spec.custom)))
#: Lead field -> Account field, for the Account a conversion creates.
ACCOUNT_MAPPING: tuple[tuple[str, str], ...] = (
    ("Company", "Name"), ("Industry", "Industry"),
    ("NumberOfEmployees", "NumberOfEmployees"), ("Country", "BillingCountry"))
MERGEABLE = ("Lead", "Contact")
MAX_DUPLICATES = 2


class OrgSuccessions:
    """Converts leads and merges records in one org. Callers hold `org.lock`.

    `moved` remembers, per record id, the activity ids moved to it, so a record that
    received activities (a merge master) hands them on when it is converted or merged.
    """

    def __init__(self, org: SalesforceOrg, seeder: OrgSeeder) -> None:
        self.org = org
        self.seeder = seeder
        self.moved: dict[str, set[str]] = {}

    def convert_lead(self, lead_id: str, now: datetime, *, account_id: str | None = None,
                     contact_id: str | None = None) -> tuple[str, str]:
        """(contact id, account id) the Lead was converted into. ValueError for what the
        API would refuse: an unknown, deleted or converted Lead, an unknown Account or
        Contact, or a Contact under another Account than the one given."""
        lead = self._live(lead_id, LEAD)
        if lead.get("IsConverted"):
            raise ValueError(f"Lead {lead_id} is already converted (to Contact "
                             f"{lead.get('ConvertedContactId')})")
        contact = self._live(contact_id, CONTACT) if contact_id else None
        account = self._live(account_id, ACCOUNT) if account_id else None
        if contact is not None and contact.get("AccountId"):
            if account is not None and account["Id"] != contact["AccountId"]:
                raise ValueError(f"Contact {contact_id} belongs to Account "
                                 f"{contact['AccountId']}, not {account_id}")
            account = account or self._live(text_or_none(contact, "AccountId"), ACCOUNT)
        owner = text(lead, "OwnerId") if str(lead.get("OwnerId") or "").startswith("005") \
            else self.org.running_user  # a queue cannot own a Contact: the converting user
        if account is None:
            values = {target: lead.get(source) for source, target in ACCOUNT_MAPPING}
            account = self.org.apply(self.org.new_row(ACCOUNT, {**values, "OwnerId": owner}),
                                     now)
        mapped = {target: lead.get(source) for source, target in CONTACT_MAPPING}
        if contact is None:
            contact = self.org.apply(self.org.new_row(CONTACT, {
                **mapped, "AccountId": account["Id"], "OwnerId": owner}), now)
        else:
            filled: dict[str, FieldValue] = {name: value for name, value in mapped.items()
                      if value not in (None, "") and contact.get(name) in (None, "")}
            if not contact.get("AccountId"):
                filled["AccountId"] = account["Id"]
            contact = self.org.apply(StagedWrite(CONTACT, contact, filled), now)
        self.org.apply(StagedWrite(LEAD, lead, {
            "IsConverted": True, "ConvertedContactId": contact["Id"],
            "ConvertedAccountId": account["Id"], "ConvertedDate": now.date(),
            "Status": CONVERTED_STATUS}), now)
        contact_id, account_id = text(contact, "Id"), text(account, "Id")
        self._move_activities(LEAD, text(lead, "Id"), contact_id, now, converting=True)
        return contact_id, account_id

    def merge(self, master_id: str, duplicate_ids: Sequence[str], now: datetime) -> None:
        """Merge one or two duplicates into the master (Leads or Contacts). ValueError for
        what Salesforce refuses: other types, mixed types, more than two duplicates, the
        master among them, a deleted record or a converted lead."""
        if not 1 <= len(duplicate_ids) <= MAX_DUPLICATES:
            raise ValueError(f"a merge takes one or two duplicates, not {len(duplicate_ids)}")
        found = self.org.lookup(master_id)
        if found is None or found[0].name not in MERGEABLE:
            raise ValueError(f"{master_id} is no Lead or Contact (the sandbox merges those)")
        schema = found[0]
        master = self._live(master_id, schema)
        duplicates = [self._live(record_id, schema) for record_id in duplicate_ids]
        ids = [master["Id"], *(row["Id"] for row in duplicates)]
        if len(set(ids)) != len(ids):
            raise ValueError("a merge needs distinct records; the master is no duplicate")
        for row in (master, *duplicates):
            if row.get("IsConverted"):
                raise ValueError(f"converted Lead {row['Id']} cannot be merged")
        for row in duplicates:
            self.org.apply(StagedWrite(schema, row, {
                "IsDeleted": True, "MasterRecordId": master["Id"]}), now)
            self._move_activities(schema, text(row, "Id"), text(master, "Id"), now,
                                  converting=False)
        self.org.apply(StagedWrite(schema, master, {}), now)

    def _live(self, record_id: str | None, schema: ObjectSchema) -> Row:
        """The current row of a record that exists and is not deleted, else ValueError."""
        found = self.org.lookup(record_id) if record_id else None
        if found is None or found[0] is not schema:
            raise ValueError(f"no {schema.name} with id {record_id}")
        if found[1].get("IsDeleted"):
            raise ValueError(f"{schema.name} {record_id} is deleted")
        return found[1]

    def _move_activities(self, schema: ObjectSchema, old_id: str, new_id: str, now: datetime,
                         *, converting: bool) -> None:
        """Point the activities of `old_id` to `new_id` (see the module docstring)."""
        moved = self.moved.setdefault(new_id, set())
        for activity_schema, row in self._activities_of(schema, old_id):
            if activity_schema is TASK:
                changes: dict[str, FieldValue] = {"WhoId": new_id}
            elif converting or schema is CONTACT:
                changes = {"ContactId": new_id}
            else:
                changes = {"LeadId": new_id}
            self.org.apply(StagedWrite(activity_schema, row, changes), now)
            moved.add(text(row, "Id"))
        self.moved.pop(old_id, None)

    def _activities_of(self, schema: ObjectSchema, record_id: str
                       ) -> Iterator[tuple[ObjectSchema, Row]]:
        """(table, current row) of every Task and CampaignMember row of the record: its
        generated ones (a world person's record) and those moved to it since."""
        candidates: list[tuple[ObjectSchema, Row]] = []
        number = id_number(record_id) or 0
        if 1 <= number <= self.seeder.world.size and \
                self.seeder.record_id(number - 1) == record_id:
            candidates = [(table, self.org.current(row)) for table, _, row
                          in self.seeder.activity_rows(number - 1)]
        for activity_id in sorted(self.moved.get(record_id, ())):
            found = self.org.lookup(activity_id)
            if found is not None:
                candidates.append(found)
        for table, row in candidates:
            who = row.get("WhoId") if table is TASK else (
                row.get("ContactId") or row.get("LeadId"))
            if table in (TASK, CAMPAIGN_MEMBER) and who == record_id:
                yield table, row
