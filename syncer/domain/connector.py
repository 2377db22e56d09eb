"""The Connector protocol every CRM connector implements.

Connectors only translate: they read records and activities into domain objects and write
RecordUpdates back, in the API's largest batch. They make no qualification decisions and
keep no state between runs; the pipeline owns cursors, retries of parked records and audit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from syncer.domain.accounts import Account
from syncer.domain.failures import RunFailed
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


@dataclass(frozen=True)
class ConnectorSettings:
    """Everything a connector needs, resolved from the config (secrets already read).

    `writeback_fields` are the CRM field names syncer writes; connectors read their current
    values into `Person.crm_values` so the pipeline can diff against the CRM.
    `credentials` must never be logged: it holds the resolved secrets.
    """

    name: str
    kind: str
    base_url: str
    credentials: Mapping[str, str] = field(repr=False)
    writeback_fields: tuple[str, ...] = ()
    #: the account (company) fields syncer writes; read into `Account.crm_values`
    account_writeback_fields: tuple[str, ...] = ()
    ca_file: str | None = None
    timeout_seconds: float = 30.0
    options: Mapping[str, Any] = field(default_factory=dict)
    #: syncer person field -> CRM field (config `person_fields`), over the connector's
    #: defaults; None drops a default. Read into `Person.properties`.
    person_fields: Mapping[str, str | None] = field(default_factory=dict)


class ConnectorError(RunFailed):
    """A failure talking to a CRM that retrying will not fix (auth, bad request, config)."""


class Connector(Protocol):
    """What the pipeline relies on. Every method may raise ConnectorError."""

    name: str
    #: the most records one write call accepts (HubSpot 100, Salesforce 200).
    max_batch: int

    def people(self, since: datetime | None = None) -> Iterator[list[Person]]:
        """Yield person records a page at a time: all of them, or with `since` those
        modified at or after it (an incremental pull; the same record may come twice)."""
        ...

    def activities(self, since: datetime) -> Iterator[list[Activity]]:
        """Yield the activities that occurred at or after `since`, a page at a time."""
        ...

    def accounts(self, since: datetime | None = None) -> Iterator[list[Account]]:
        """Yield company records (HubSpot companies, Salesforce Accounts) a page at a
        time: all of them, or with `since` those modified at or after it."""
        ...

    def owners(self) -> list[Owner]:
        """Every user who can own records, with whether they are active."""
        ...

    def read_by_ids(self, record_ids: Sequence[str], activities_since: datetime
                    ) -> tuple[list[Person], list[Activity]]:
        """These records as they are now (ids the CRM no longer has are left out) and
        their activities at or after `activities_since`: the focused re-read of a webhook."""
        ...

    def push(self, updates: Sequence[RecordUpdate]) -> list[PushResult]:
        """Write the updates in batches of at most `max_batch`; one result per update,
        in order. Transient failures of a whole call are retried inside; per-record
        failures are reported, not raised."""
        ...

    def successions(self, since: datetime) -> Iterator[list[Succession]]:
        """Yield, a page at a time, the records that stopped taking writes at or after
        `since` because the person carries on as another record of this CRM (a converted
        Salesforce lead, a merged-away duplicate). The pipeline moves identity, score and
        history along; without this, writes would keep going to a locked or deleted record."""
        ...

    def person_field_problems(self) -> list[str]:
        """The mapped person fields (defaults and `person_fields`) this CRM does not have,
        one actionable line each; empty when all exist. Asks the CRM (check-config);
        a pull refuses the same fields without spending a request on it."""
        ...

    def create(self, people: Sequence[NewPerson]) -> list[CreateResult]:
        """Create these people in the API's largest batch; one result per person, in order.
        Salesforce decides Lead or Contact by the connector's `create_as` rule (default:
        a Contact under a matching Account, else a Lead). A person the CRM already holds
        (same email) is linked, not duplicated. Per-record failures are reported, not
        raised."""
        ...

    @property
    def api_calls(self) -> int:
        """HTTP requests made so far by this connector instance (for the run summary)."""
        ...

    def close(self) -> None:
        """Release connections; the instance is not used afterwards."""
        ...


class Sandbox(Protocol):
    """A local emulator of one CRM's API: a real HTTP(S) server on 127.0.0.1.

    Built as `SandboxClass(world, port=0)`; port 0 picks a free port. After `start()`,
    `base_url`, `credentials` and `ca_file` are what a ConnectorSettings needs to reach it.
    """

    kind: str
    base_url: str
    credentials: Mapping[str, str]
    ca_file: str | None

    def start(self) -> None:
        """Serve in a background thread until stop()."""
        ...

    def stop(self) -> None:
        ...

    def records(self) -> list[dict[str, object]]:
        """Current field values of every person record, bypassing API limits (tests)."""
        ...

    def edit(self, record_id: str, field: str, value: str | None) -> None:
        """Change a field as a person in the CRM UI would (bumps its modification time)."""
        ...


def mapped_person_fields(defaults: Mapping[str, str], settings: ConnectorSettings
                         ) -> dict[str, str]:
    """syncer person field -> CRM field: the connector's defaults with the config's
    `person_fields` over them (a None there drops the default)."""
    merged: dict[str, str | None] = {**defaults, **settings.person_fields}
    return {name: crm.strip() for name, crm in merged.items() if crm and crm.strip()}
