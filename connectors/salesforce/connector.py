"""The Salesforce connector: people, activities and owners in, field values and new
people out, successions (converted and merged-away records) reported.

Everything goes through SalesforceClient (client.py): one counted session, sign-in, and
the one retry layer. Writes (push, create) use sObject Collections in chunks of 200 with
allOrNone false, so one bad record fails alone; per-record errors come back as results,
with the fields Salesforce names. A converted lead (CANNOT_UPDATE_CONVERTED_LEAD) or a
merged-away record (ENTITY_IS_DELETED) never takes a write again: those are final, and
successions() tells the pipeline where the person carries on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import structlog
from simple_salesforce.api import Salesforce

from connectors.salesforce import activity_pages, creation, echo_reads, full_pull, mapping
from connectors.salesforce import soql_values as soql
from connectors.salesforce.accounts import account_pages
from connectors.salesforce.accounts import newest_stamp as newest_account_stamp
from connectors.salesforce.accounts import sweep_page as account_sweep_page
from connectors.salesforce.answers import SaveResult, save_results
from connectors.salesforce.bulk import BulkQueries
from connectors.salesforce.by_ids import read_by_ids
from connectors.salesforce.client import RETRYABLE_RECORD_CODES
from connectors.salesforce.composite import paged_together
from syncer.domain.accounts import Account
from syncer.domain.connector import ConnectorError, mapped_person_fields
from syncer.domain.json_values import as_object
from syncer.domain.types import (
    Activity,
    CreateResult,
    NewPerson,
    Owner,
    Person,
    PushResult,
    RecordUpdate,
    Succession,
)

log = structlog.get_logger(__name__)
#: syncer routes owners itself: an org's active assignment rule must not undo its choice
#: (the REST API runs the rules unless a request says FALSE).
NO_ASSIGNMENT_RULES = {"Sforce-Auto-Assign": "FALSE"}
#: per-record codes that fail the same way however often the write is tried: the record
#: is locked for good (converted) or gone (merged away); successions() says where to go.
FINAL_RECORD_CODES = frozenset({"CANNOT_UPDATE_CONVERTED_LEAD", "ENTITY_IS_DELETED"})


class SalesforceConnector(BulkQueries):
    """Reads Leads, Contacts, Accounts, campaign and web activity; writes fields back in
    batches (people and Accounts); creates people as Leads or Contacts; reports
    conversions and merges."""

    max_batch = 200

    # -- reading -----------------------------------------------------------------------

    def people(self, since: datetime | None = None,
               skip: Sequence[tuple[datetime, datetime]] = ()) -> Iterator[list[Person]]:
        """Leads (not converted) and Contacts; with `since`, only those whose
        SystemModstamp is at or after it and in no (start, end] of `skip`, the stretches
        of syncer's own writes (incremental pulls, echo_reads.py: one queryAll per object
        that also meets the successions). Never a deleted record. A full pull of more than
        `bulk_query_threshold` records of a type reads them by a Bulk API 2.0 job
        (bulk.py)."""
        if since is not None:
            return echo_reads.changed_people(self, since, skip)
        return self._all_people()

    def _all_people(self) -> Iterator[list[Person]]:
        writeback = self.settings.writeback_fields
        mapped = mapped_person_fields(mapping.DEFAULT_PERSON_FIELDS, self.settings)
        for object_type in mapping.PERSON_OBJECTS:
            self._check_writeback(object_type)
            problems = self._missing_person_fields(object_type, mapped)
            if problems:  # the describe is the one _check_writeback read: no extra call
                raise ConnectorError("; ".join(problems))
            fields = ", ".join(mapping.person_fields(object_type, writeback,
                                                     list(mapped.values())))
            where = " WHERE IsConverted = false" if object_type == "Lead" else ""
            query = f"SELECT {fields} FROM {object_type}{where}"
            for records in self._people_pages(object_type, query, full=True):
                yield [mapping.to_person(self.name, object_type, record, writeback, mapped)
                       for record in records]

    def full_pages(self, position: str | None) -> Iterator[tuple[list[Person], str | None]]:
        """Every live Lead, then Contact, from `position`, each page with the position
        after it, which a later process can go on from (full_pull.py)."""
        return full_pull.full_pages(self, position)

    def person_field_problems(self) -> list[str]:
        """The mapped person fields Lead or Contact lacks (their describes, cached)."""
        mapped = mapped_person_fields(mapping.DEFAULT_PERSON_FIELDS, self.settings)
        return [problem for object_type in mapping.PERSON_OBJECTS
                for problem in self._missing_person_fields(object_type, mapped)]

    def activities(self, since: datetime) -> Iterator[list[Activity]]:
        """Campaign members, Tasks, Events and Opportunities at or after `since`: the four
        queries' first pages in one Composite call (composite.py), then query-more."""
        for page, _ in activity_pages.activity_pages(self, since, None):
            if page:
                yield page

    def activity_pages(self, since: datetime, position: str | None
                       ) -> Iterator[tuple[list[Activity], str | None]]:
        """As `activities(since)`, from `position`, each page with the (stamp, Id) it ends
        at: a killed full sync's activities go on there (activity_pages.py)."""
        return activity_pages.activity_pages(self, since, position)

    def read_by_ids(self, record_ids: Sequence[str], activities_since: datetime
                    ) -> tuple[list[Person], list[Activity]]:
        """Named Leads and Contacts now and their activities (connectors/salesforce/by_ids.py)."""
        return read_by_ids(self, record_ids, activities_since)

    def accounts(self, since: datetime | None = None,
                 skip: Sequence[tuple[datetime, datetime]] = ()) -> Iterator[list[Account]]:
        """Accounts with their owner's email and the account writeback fields: all of
        them (Bulk 2.0 above bulk_query_threshold), or with `since` those whose
        SystemModstamp is at or after it and in no (start, end] of `skip` (syncer's own
        writes), oldest first (connectors/salesforce/accounts.py)."""
        return account_pages(self, since, skip)

    def account_sweep_page(self, position: str | None) -> tuple[list[Account], str | None]:
        """One page (one query) of Accounts in Id order from `position`, and where the
        next page starts (None: the listing is done): the accounts' reconciliation sweep
        (syncer/run/account_sweep.py, accounts.py)."""
        return account_sweep_page(self, position)

    def newest_account_stamp(self) -> datetime | None:
        """The newest SystemModstamp of any Account (one query, accounts.py)."""
        return newest_account_stamp(self)

    def owners(self) -> list[Owner]:
        """Standard users, except the API user syncer signs in as: an integration user is
        no rep, so records it owns (created through the API) count as not yet routed."""
        query = ("SELECT Id, Email, Name, IsActive FROM User WHERE UserType = "
                 f"{soql.quote('Standard')} ORDER BY Id")
        return [Owner(source=self.name, owner_id=str(r["Id"]), email=str(r.get("Email") or ""),
                      name=str(r.get("Name") or ""), active=bool(r.get("IsActive")))
                for page in self._pages("owners", query) for r in page
                if r["Id"] != self._api_user_id]

    def successions(self, since: datetime) -> Iterator[list[Succession]]:
        """Leads converted, and Leads and Contacts merged away, at or after `since`
        (by SystemModstamp, which both bump), a page at a time. Merged-away records are
        deleted, so both queries go to queryAll; conversions and Lead merges share one,
        so a run with nothing to follow spends one Composite call (both first pages),
        none when an incremental people() of the same `since` already met them."""
        met = self.met_successions.pop(since, None)
        if met is not None:
            if met:
                yield met
            return
        after = soql.datetime_literal(since)
        queries: list[tuple[str, bool]] = []
        for object_type in mapping.PERSON_OBJECTS:
            fields = mapping.SUCCESSION_FIELDS[object_type]
            followed = "IsDeleted = true AND MasterRecordId != null"
            if object_type == "Lead":
                followed = f"(IsConverted = true OR ({followed}))"
            queries.append((f"SELECT {', '.join(fields)} FROM {object_type} WHERE "
                            f"{followed} AND SystemModstamp >= {after}", True))
        pages = paged_together(self, "successions", queries)  # one Composite call
        for object_type, object_pages in zip(mapping.PERSON_OBJECTS, pages, strict=True):
            for records in object_pages:
                page = [s for s in (mapping.to_succession(self.name, object_type, r)
                                    for r in records) if s is not None]
                if page:
                    yield page

    # -- echo and reconciliation sweep (syncer/run/echo.py, syncer/run/sweep.py) -------

    def newest_stamp(self) -> datetime | None:
        """The newest Lead or Contact SystemModstamp (one query per object, both in one
        Composite call)."""
        return echo_reads.newest_stamp(self)

    def sweep_page(self, position: str | None) -> tuple[list[Person], str | None]:
        """One page (one query) of live Leads, then Contacts, in id order from `position`,
        and where the next page starts (None: the listing is done)."""
        return echo_reads.sweep_page(self, position)

    # -- writing -----------------------------------------------------------------------

    def push(self, updates: Sequence[RecordUpdate]) -> list[PushResult]:
        """Leads, Contacts and Accounts alike, by sObject Collections PATCH: each type's
        fields checked by describe first (an Account's against account_writeback_fields),
        one result per update in order, failures per record."""
        results: list[PushResult | None] = [None] * len(updates)
        bodies: list[tuple[int, dict[str, object]]] = []
        types = {u.object_type: self._check_writeback(u.object_type) for u in updates}
        for index, update in enumerate(updates):
            unknown = [n for n in update.values if n.lower() not in types[update.object_type]]
            try:
                if unknown:
                    raise ValueError(f"no field {unknown} on {update.object_type}")
                bodies.append((index, mapping.api_record(update, types[update.object_type])))
            except ValueError as error:
                results[index] = PushResult(update.record_id, ok=False,
                                            error_code="INVALID_VALUE", message=str(error))
        # Group by type: one request may hold at most 10 runs of consecutive types.
        bodies.sort(key=lambda item: updates[item[0]].object_type)
        for start in range(0, len(bodies), self.max_batch):
            self._push_chunk(updates, bodies[start:start + self.max_batch], results)
        failed = sum(1 for r in results if r is not None and not r.ok)
        log.info("salesforce.push", connector=self.name, records=len(updates), failed=failed)
        return [r for r in results if r is not None]

    def _push_chunk(self, updates: Sequence[RecordUpdate],
                    chunk: list[tuple[int, dict[str, object]]],
                    results: list[PushResult | None]) -> None:
        payload = {"allOrNone": False, "records": [body for _, body in chunk]}
        saved = save_results(self._call("push", lambda sf: sf.restful(
            "composite/sobjects", method="PATCH", json=payload, headers=NO_ASSIGNMENT_RULES)),
            "push")
        if saved is None or len(saved) != len(chunk):
            raise ConnectorError(f"connector '{self.name}': Salesforce answered "
                                 f"{len(saved) if saved is not None else 'no'} results "
                                 f"for {len(chunk)} records")
        for (index, _), outcome in zip(chunk, saved, strict=True):
            record_id = updates[index].record_id
            if outcome["success"]:
                results[index] = PushResult(record_id, ok=True)
                continue
            code, message, fields = _save_errors(outcome)
            codes = {e["statusCode"] for e in outcome["errors"]}
            results[index] = PushResult(
                record_id, ok=False, error_code=code, message=message, fields=fields,
                retryable=code in RETRYABLE_RECORD_CODES and not codes & FINAL_RECORD_CODES)

    def create(self, people: Sequence[NewPerson]) -> list[CreateResult]:
        """Create these people as Leads or Contacts by the `create_as` rule (see
        creation.py: "account_match" and "contact" make a Contact under a matching
        Account, else a Lead; "lead" always a Lead), one result per person in order.

        A person Salesforce already holds as a Contact or an unconverted Lead with the same
        email is linked (existed=True), not created again: the check runs in the same
        attempt as the insert, so an insert retried after a lost answer links what the
        first try made instead of duplicating it. Decided `values` are set at creation,
        converted by describe() types as push does; a writeback field the integration user
        may update but not create is a ConnectorError before anything is written.
        """
        try:
            rule = creation.create_rule(self.settings.options, self.name)
        except ValueError as error:
            raise ConnectorError(str(error)) from None
        index = creation.AccountIndex(()) if rule == "lead" else self._accounts_for(people)
        results: list[CreateResult | None] = [None] * len(people)
        bodies: list[tuple[int, dict[str, object]]] = []
        targets = [(p, index.match(p)) for p in people]
        self._check_creatable(targets)
        for position, (person, account_id) in enumerate(targets):
            object_type = "Contact" if account_id else "Lead"
            try:
                bodies.append((position, creation.new_record(
                    person, object_type, account_id, self._describe(object_type))))
            except ValueError as error:
                results[position] = CreateResult(person.key, ok=False,
                                                 error_code="INVALID_VALUE", message=str(error))
        # Group by type, as push does: a request may hold at most 10 runs of one type.
        bodies.sort(key=lambda item: creation.record_type(item[1]))
        for start in range(0, len(bodies), self.max_batch):
            self._create_chunk(people, bodies[start:start + self.max_batch], results)
        made = [r for r in results if r is not None]
        log.info("salesforce.create", connector=self.name, people=len(people), rule=rule,
                 created=sum(1 for r in made if r.ok and not r.existed),
                 linked=sum(1 for r in made if r.existed),
                 failed=sum(1 for r in made if not r.ok))
        return made

    def _check_creatable(self, targets: Sequence[tuple[NewPerson, str | None]]) -> None:
        """Every decided field the people carry can be set on insert (a config error
        before anything is written otherwise); the writeback fields exist."""
        for object_type in sorted({"Contact" if a else "Lead" for _, a in targets}):
            self._check_writeback(object_type)
            chosen = [p for p, a in targets if ("Contact" if a else "Lead") == object_type]
            refused = creation.not_createable(chosen, self._describe(object_type))
            if refused:
                raise ConnectorError(
                    f"connector '{self.name}': Salesforce {object_type} fields {refused} "
                    "can be updated but not set on insert. Fix: grant create access to "
                    "the integration user, or leave them out of writeback_fields")

    def _accounts_for(self, people: Sequence[NewPerson]) -> creation.AccountIndex:
        """The Accounts the people's companies or email domains may match."""
        found = [record for query in creation.account_queries(people)
                 for page in self._pages("create", query) for record in page]
        return creation.AccountIndex(found)

    def _create_chunk(self, people: Sequence[NewPerson],
                      chunk: list[tuple[int, dict[str, object]]],
                      results: list[CreateResult | None]) -> None:
        """One attempt: look the chunk's emails up, insert the people not found."""
        headers = self._query_headers

        def attempt(sf: Salesforce) -> tuple[dict[str, tuple[str, str]],
                                             list[tuple[int, dict[str, object]]],
                                             list[SaveResult] | None]:
            existing: dict[str, tuple[str, str]] = {}
            for object_type, query in creation.email_queries(
                    [people[i].email for i, _ in chunk]):
                for found in sf.query_all_iter(query, headers=headers):
                    record = as_object(found, f"{object_type} by email")
                    key = str(record.get("Email") or "").strip().casefold()
                    existing.setdefault(key, (str(record["Id"]), object_type))
            todo = [(i, body) for i, body in chunk
                    if people[i].email.strip().casefold() not in existing]
            payload = {"allOrNone": False, "records": [body for _, body in todo]}
            saved = save_results(sf.restful("composite/sobjects", method="POST", json=payload,
                                            headers=NO_ASSIGNMENT_RULES), "create") \
                if todo else []
            return existing, todo, saved
        existing, todo, saved = self._call("create", attempt)
        if saved is None or len(saved) != len(todo):
            raise ConnectorError(f"connector '{self.name}': Salesforce answered "
                                 f"{len(saved) if saved is not None else 'no'} results "
                                 f"for {len(todo)} new records")
        for index, _ in chunk:
            known = existing.get(people[index].email.strip().casefold())
            if known is not None:
                results[index] = CreateResult(people[index].key, ok=True, record_id=known[0],
                                              object_type=known[1], existed=True)
        for (index, body), outcome in zip(todo, saved, strict=True):
            key, object_type = people[index].key, creation.record_type(body)
            if outcome["success"]:
                results[index] = CreateResult(key, ok=True, record_id=str(outcome["id"]),
                                              object_type=object_type)
            else:
                code, message, _ = _save_errors(outcome)
                results[index] = CreateResult(key, ok=False, object_type=object_type,
                                              error_code=code, message=message)


def _save_errors(outcome: SaveResult) -> tuple[str, str, tuple[str, ...]]:
    """(first statusCode, every message, every field named) of a failed SaveResult."""
    errors = outcome["errors"]
    code = errors[0]["statusCode"] if errors else "UNKNOWN"
    message = "; ".join(e["message"] for e in errors)
    fields = tuple(dict.fromkeys(f for e in errors for f in e["fields"]))
    return code, message, fields
