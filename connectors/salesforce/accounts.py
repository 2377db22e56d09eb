"""Salesforce Accounts as syncer's `Account` (issue 20): the pull, and what a record maps to.

An incremental pull is one REST query of the Accounts whose SystemModstamp is at or after
the cursor, oldest first (`ORDER BY SystemModstamp, Id`, so a cursor taken from the last
page is never ahead of a record not yet read), paged by nextRecordsUrl: N changed Accounts
cost ceil(N / 2000) queries. A full pull reads every Account, by a Bulk API 2.0 job above
the connector's `bulk_query_threshold` as the people pull does (bulk.py). The owner's
email comes in the same query (Owner.Email), so routing needs no request per Account, and
the account writeback fields (settings.account_writeback_fields) are read into
`Account.crm_values` so the pipeline can diff against what the CRM holds now.

Writes to Accounts are RecordUpdates with object_type "Account", pushed by the connector's
one sObject Collections path with the people's (connector.push). Their answers carry no
stamp, so the echo window of a run's Account writes (syncer/run/echo.py) is closed by one
query for the newest SystemModstamp after them (`newest_stamp`), and an incremental pull
leaves such windows out of its time range, as echo_reads.py does for people.

The accounts' reconciliation sweep (syncer/run/account_sweep.py) reads every Account in
Id order, one REST query of 2,000 a page from the last Id read (`Id > :last ORDER BY Id`,
so each page is a query of its own and a pass stopped by its call budget resumes by Id).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from connectors.salesforce import echo_reads, mapping
from connectors.salesforce import soql_values as soql
from connectors.salesforce.answers import AnswerShapeError, Row, query_page
from connectors.salesforce.bulk import BulkQueries
from connectors.salesforce.creation import website_domain
from syncer.domain.accounts import Account
from syncer.domain.connector import ConnectorError

#: the sObject syncer reads accounts from and writes them to (in ACCOUNT_OBJECT_TYPES)
ACCOUNT_OBJECT = "Account"
#: Fields read for every Account, before the account writeback fields.
ACCOUNT_FIELDS: tuple[str, ...] = (
    "Id", "Name", "Website", "Industry", "NumberOfEmployees", "BillingCountry",
    "AnnualRevenue", "OwnerId", "Owner.Email", "SystemModstamp")
#: Accounts per sweep page: one REST query page, the API's largest
SWEEP_PAGE = 2000


def account_fields(writeback_fields: Sequence[str]) -> list[str]:
    """The SELECT list of an Account pull: ACCOUNT_FIELDS, then the writeback fields not
    already among them (SOQL refuses a field named twice, in any case)."""
    fields = list(ACCOUNT_FIELDS)
    seen = {name.lower() for name in fields}
    for name in writeback_fields:
        if name.lower() not in seen:
            fields.append(name)
            seen.add(name.lower())
    return fields


def _number(value: object, field: str, record_id: str) -> float | None:
    """A currency or number field (AnnualRevenue) as a float; None when empty. Another
    type (a query answer syncer cannot read) names the field and the Account."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise AnswerShapeError(f"Salesforce answered Account {record_id}'s {field} with "
                           f"{value!r}, not a number")


def to_account(source: str, record: Row, writeback_fields: Sequence[str]) -> Account:
    """One Account query record (REST, or a Bulk CSV row typed back) as an Account; each
    value read through mapping.py's accessors, which narrow what they use."""
    get = mapping._get
    record_id = mapping._text(get(record, "Id"))
    if record_id is None:
        raise AnswerShapeError("Salesforce answered an Account query with a record without "
                               "Id; the SELECT list must name Id (accounts.ACCOUNT_FIELDS)")
    stamp = mapping._text(get(record, "SystemModstamp"))
    email = mapping._text(get(record, "Owner.Email"))
    return Account(
        source=source, record_id=record_id, name=mapping._text(get(record, "Name")),
        domain=website_domain(mapping._text(get(record, "Website"))),
        industry=mapping._text(get(record, "Industry")),
        employees=mapping._whole(get(record, "NumberOfEmployees")),
        country=mapping._text(get(record, "BillingCountry")),
        annual_revenue=_number(get(record, "AnnualRevenue"), "AnnualRevenue", record_id),
        owner_id=mapping._text(get(record, "OwnerId")),
        owner_email=email.lower() if email else None,
        updated_at=mapping.parse_datetime(stamp) if stamp else None,
        crm_values={name: mapping.crm_value(get(record, name)) for name in writeback_fields})


def changed_query(fields: Sequence[str], since: datetime,
                  skip: Sequence[tuple[datetime, datetime]] = ()) -> str:
    """The incremental pull's SOQL: Accounts modified at or after `since` but in none of
    the (start, end] ranges of `skip` (syncer's own writes), oldest first."""
    left_out = "".join(f" AND {condition}" for condition in soql.outside("SystemModstamp", skip))
    return (f"SELECT {', '.join(fields)} FROM {ACCOUNT_OBJECT} WHERE SystemModstamp >= "
            f"{soql.datetime_literal(since)}{left_out} ORDER BY SystemModstamp, Id")


def newest_stamp(connector: BulkQueries) -> datetime | None:
    """The newest SystemModstamp of any Account (one query): it closes the echo window
    of a run's Account writes, as Salesforce's write answers carry no stamp."""
    return echo_reads.newest_stamp(connector, (ACCOUNT_OBJECT,), include_deleted=False)


def account_pages(connector: BulkQueries, since: datetime | None,
                  skip: Sequence[tuple[datetime, datetime]] = ()) -> Iterator[list[Account]]:
    """Every Account (since None) or those modified at or after `since` outside the
    `skip` ranges, a page at a time. A full pull checks the writeback fields by describe
    first (one call, cached); an incremental one spends the describe only to explain a
    query that failed."""
    writeback = connector.settings.account_writeback_fields
    fields = account_fields(writeback)
    if since is None:
        connector._check_writeback(ACCOUNT_OBJECT)
        query = f"SELECT {', '.join(fields)} FROM {ACCOUNT_OBJECT}"
        pages = connector._people_pages(ACCOUNT_OBJECT, query, full=True,
                                        operation="accounts")
    else:
        pages = _explained(connector, connector._pages("accounts",
                                                       changed_query(fields, since, skip)))
    for records in pages:
        if records:
            yield [to_account(connector.name, record, writeback) for record in records]


def sweep_query(fields: Sequence[str], last: str | None) -> str:
    """The sweep's SOQL: the next SWEEP_PAGE Accounts in Id order after the Id `last`
    (None: from the first)."""
    after = f" WHERE Id > {soql.quote(last)}" if last else ""
    return (f"SELECT {', '.join(fields)} FROM {ACCOUNT_OBJECT}{after} ORDER BY Id "
            f"LIMIT {SWEEP_PAGE}")


def sweep_page(connector: BulkQueries, position: str | None
               ) -> tuple[list[Account], str | None]:
    """One query: Accounts in Id order after `position` (the last Id read; None: from
    the first), and where the next page starts (None: the listing is done). A failed
    query is explained as the incremental pull's is (the describe is spent only then)."""
    writeback = connector.settings.account_writeback_fields
    query = sweep_query(account_fields(writeback), position)
    try:
        records = query_page(connector._call("accounts.sweep", lambda sf: sf.query(query)),
                             "accounts.sweep")["records"]
    except ConnectorError:
        connector._check_writeback(ACCOUNT_OBJECT)
        raise
    found = [to_account(connector.name, record, writeback) for record in records]
    return found, found[-1].record_id if len(records) == SWEEP_PAGE else None


def _explained(connector: BulkQueries, pages: Iterator[list[Row]]
               ) -> Iterator[list[Row]]:
    """The pages; when the query fails, a missing or read-only account writeback field
    (the usual cause: `syncer setup` not run) is named instead of the raw API error."""
    try:
        yield from pages
    except ConnectorError:
        connector._check_writeback(ACCOUNT_OBJECT)
        raise
